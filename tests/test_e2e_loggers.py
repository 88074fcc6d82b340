"""``[logger.NAME]`` tables of ``medusa.toml`` (medusa-logging) used by servers' log options:
the real ``medusa serve -c`` sends its HTTP access log to a file and to a real rsyslog
(RFC 5424 over TCP), and an unknown logger name is refused at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import Runner, curl

from medusa.core.testing import require_tool, wait_until

testing = pytest.importorskip("medusa.logging.testing")


def _config(tmp_path: Path, loggers: str, access_log: str) -> Path:
    (tmp_path / "site").mkdir(exist_ok=True)
    (tmp_path / "site" / "page.txt").write_bytes(b"page\n")
    config = tmp_path / "medusa.toml"
    config.write_text(
        f"{loggers}\n"
        "[[server]]\n"
        'type = "http"\n'
        'listen = "127.0.0.1:0"\n'
        'root = "site"\n'
        f"access_log = {access_log}\n"
    )
    return config


def test_access_log_to_file_and_syslog(runner: Runner, tmp_path: Path) -> None:
    require_tool("rsyslogd", "apt-get install rsyslog")
    with testing.Rsyslog(tmp_path / "rsyslog") as rsyslog:
        loggers = (
            '[logger.disk]\ntype = "file"\npath = "logs/access.log"\n\n'
            f'[logger.remote]\ntype = "syslog"\ntransport = "tcp"\nhost = "127.0.0.1"\n'
            f'port = {rsyslog.tcp_port}\napp_name = "medusa-web"\n\n'
            '[logger.both]\ntype = "multi"\nloggers = [{ type = "file", path = "logs/all.log" }]\n'
        )
        (tmp_path / "logs").mkdir()
        config = _config(tmp_path, loggers, '"disk"')
        text = config.read_text().replace(
            'access_log = "disk"',
            'access_log = "disk"\n[[server]]\ntype = "http"\n'
            'listen = "127.0.0.1:0"\nroot = "site"\naccess_log = "remote"',
        )
        config.write_text(text)
        process = runner.start("serve", "-c", str(config), listening=2)
        first, second = process.endpoints
        assert curl(first.where + "page.txt").status == 200
        assert curl(second.where + "missing").status == 404
        wait_until(lambda: rsyslog.records(app="medusa-web"), what="the access line at rsyslog")
        [record] = rsyslog.records(app="medusa-web")
        assert '"GET /missing HTTP/1.1" 404' in record["msg"]
        assert process.stop() == 0  # closing the loggers writes what they queued
    lines = (tmp_path / "logs" / "access.log").read_text().splitlines()
    assert len(lines) == 1
    assert '"GET /page.txt HTTP/1.1" 200 5' in lines[0]


def test_unknown_logger_name_refused(runner: Runner, tmp_path: Path) -> None:
    config = _config(tmp_path, '[logger.disk]\ntype = "file"\npath = "a.log"\n', '"nope"')
    done = runner.run("serve", "-c", str(config))
    assert done.returncode == 2, done.stderr
    assert "access_log" in done.stderr or "nope" in done.stderr
    assert "no logger 'nope'" in done.stderr
    assert "Traceback" not in done.stderr


def test_file_logger_in_a_missing_directory_refused(runner: Runner, tmp_path: Path) -> None:
    """A typo in a file logger's directory stops the start with the key and the path (it
    used to start and lose every record)."""
    config = _config(tmp_path, '[logger.disk]\ntype = "file"\npath = "nologs/a.log"\n', '"disk"')
    done = runner.run("serve", "-c", str(config))
    assert done.returncode == 2, done.stderr
    assert "logger.disk: path" in done.stderr
    assert f"the directory {tmp_path / 'nologs'} does not exist" in done.stderr
    assert "Traceback" not in done.stderr
    assert "listening" not in done.stdout


def test_unknown_logger_type_refused(runner: Runner, tmp_path: Path) -> None:
    config = _config(tmp_path, '[logger.x]\ntype = "carrier-pigeon"\n', "true")
    done = runner.run("serve", "-c", str(config))
    assert done.returncode == 2, done.stderr
    assert "logger.x.type" in done.stderr
    assert "carrier-pigeon" in done.stderr
