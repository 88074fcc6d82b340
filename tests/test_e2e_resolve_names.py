"""``resolve_names = true``: the access log shows client host names looked up through the
shared resolver of ``[medusa.resolver]`` (medusa-dns against a real dnsmasq), and a name
server that never answers never delays a response; at shutdown the waiting line is written
with the address."""

from __future__ import annotations

import ftplib
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import Runner, curl

from medusa.core.testing import require_tool, wait_until

dnsmasq = pytest.importorskip("medusa.dns.dnsmasq")


def _config(tmp_path: Path, nameserver: str, extra: str = "") -> Path:
    (tmp_path / "site").mkdir(exist_ok=True)
    (tmp_path / "site" / "hello.txt").write_bytes(b"hello\n")
    config = tmp_path / "medusa.toml"
    config.write_text(
        "[medusa]\n"
        'log_level = "info"\n'
        "[medusa.resolver]\n"
        f'nameservers = ["{nameserver}"]\n'
        f"{extra}"
        "[[server]]\n"
        'type = "http"\n'
        'listen = "127.0.0.1:0"\n'
        'root = "site"\n'
        "resolve_names = true\n"
    )
    return config


@pytest.fixture
def name_server(tmp_path: Path) -> Iterator[str]:
    require_tool("dnsmasq", "apt-get install dnsmasq-base")
    (tmp_path / "dns").mkdir()
    with dnsmasq.Dnsmasq({"client.test": ["127.0.0.1"]}, directory=tmp_path / "dns") as server:
        yield server.nameserver


def test_access_log_shows_host_names(runner: Runner, tmp_path: Path, name_server: str) -> None:
    process = runner.start("serve", "-c", str(_config(tmp_path, name_server)))
    assert curl(process.endpoint.where + "hello.txt").body == b"hello\n"
    line = re.compile(r' client\.test - - \[.*\] "GET /hello\.txt HTTP/1\.1" 200 6$', re.M)
    wait_until(lambda: line.search(process.stderr()), what="the access-log line with the name")
    assert process.stop() == 0


def test_silent_name_server_never_delays_responses(runner: Runner, tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:  # bound, never read
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        config = _config(tmp_path, f"127.0.0.1:{port}", "timeout = 60\nattempts = 1\n")
        process = runner.start("serve", "-c", str(config))
        for _ in range(3):  # each within curl's 10 s, while the lookup waits for 60 s
            assert curl(process.endpoint.where + "hello.txt", timeout=10).status == 200
        assert '"GET /hello.txt' not in process.stderr()
        assert process.stop() == 0  # the resolver closes: the lines come out with the address
        assert process.stderr().count("127.0.0.1 - - [") == 3


def test_bad_resolver_options_refused(runner: Runner, tmp_path: Path) -> None:
    done = runner.run("serve", "-c", str(_config(tmp_path, "127.0.0.1:53", "bogus = 1\n")))
    assert done.returncode == 2, done.stderr
    assert "medusa.resolver.bogus" in done.stderr
    assert "Traceback" not in done.stderr


def test_ftp_transfer_log_shows_host_names(
    runner: Runner, tmp_path: Path, name_server: str
) -> None:
    (tmp_path / "pub").mkdir()
    (tmp_path / "pub" / "file.txt").write_bytes(b"over ftp\n")
    config = tmp_path / "ftp.toml"
    config.write_text(
        "[medusa]\n"
        'log_level = "info"\n'
        "[medusa.resolver]\n"
        f'nameservers = ["{name_server}"]\n'
        "[[server]]\n"
        'type = "ftp"\n'
        'listen = "127.0.0.1:0"\n'
        'anonymous_root = "pub"\n'
        "resolve_names = true\n"
    )
    process = runner.start("serve", "-c", str(config))
    endpoint = process.endpoint
    with ftplib.FTP() as ftp:  # noqa: S321 (the client under test)
        ftp.connect(endpoint.host, endpoint.port, timeout=10)
        ftp.login()
        chunks: list[bytes] = []
        ftp.retrbinary("RETR file.txt", chunks.append)
    assert b"".join(chunks) == b"over ftp\n"
    # xferlog: "... seconds host bytes path ..." with the name in place of 127.0.0.1.
    line = re.compile(r" \d+ client\.test 9 /file\.txt b _ o a ")
    wait_until(lambda: line.search(process.stderr()), what="the xferlog line with the name")
    assert process.stop() == 0
