"""The monitor's options in medusa.toml and for ``medusa serve --monitor``: a secret is
required on TCP, comes only from a file or the environment, and bad options are
ConfigErrors naming their key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from medusa.core.address import Address
from medusa.core.config import build_config
from medusa.core.options import ConfigError
from medusa.monitor.server import MonitorServer

SECRET = b"0123456789abcdef-monitor"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "monitor.secret"
    path.write_bytes(SECRET + b"\n")
    path.chmod(0o600)
    return path


def build(table: dict[str, Any], base_dir: Path) -> MonitorServer:
    config = build_config(
        {"server": [{"type": "monitor", **table}]},
        source="medusa.toml",
        base_dir=str(base_dir),
        server_types={"monitor": MonitorServer},
    )
    server = config.servers[0]
    assert isinstance(server, MonitorServer)
    return server


def test_full_table(tmp_path: Path, secret_file: Path) -> None:
    server = build(
        {
            "listen": "127.0.0.1:0",
            "secret_file": secret_file.name,  # relative to the file's directory
            "max_failures": 3,
            "lockout": 60,
            "failure_delay": 0.5,
            "max_delay": 4,
            "login_timeout": 5,
            "output_limit": 4096,
            "max_source": 10000,
            "audit_log": False,
            "max_connections": 4,
            "idle_timeout": 600,
        },
        tmp_path,
    )
    assert server.secret == SECRET
    assert server.throttle.max_failures == 3
    assert server.throttle.lockout == 60.0
    assert server.throttle.delay == 0.5
    assert server.throttle.max_delay == 4.0
    assert server.login_timeout == 5.0
    assert server.output_limit == 4096
    assert server.max_source == 10000
    assert server.audit_log is None
    assert server.max_connections == 4
    assert server.ssl is None


def test_unix_socket_without_secret(tmp_path: Path) -> None:
    server = build({"listen": "unix:run/monitor.sock"}, tmp_path)
    assert server.secret is None
    assert server.address.path == os.path.join(tmp_path, "run/monitor.sock")


@pytest.mark.parametrize(
    ("table", "key", "reason"),
    [
        ({"listen": "127.0.0.1:0"}, "server[0].secret_file", "needs a secret"),
        ({"secret_file": "missing"}, "server[0].secret_file", "No such file"),
        ({"secret_env": "MONITOR_TEST_UNSET"}, "server[0].secret_env", "not set"),
        ({"secret_env": "not a name"}, "server[0].secret_env", "variable name"),
        ({"secret": "inline secrets are refused"}, "server[0].secret", "unknown option"),
        ({"output_limit": 10}, "server[0].output_limit", "256 or more"),
        ({"max_failures": -1}, "server[0].max_failures", "0 or more"),
        ({"lockout": "long"}, "server[0].lockout", "expected"),
        ({"login_timeout": 0}, "server[0].login_timeout", "greater than 0"),
        ({"audit_log": 1}, "server[0].audit_log", "true or false"),
        ({"listen": "nowhere"}, "server[0].listen", "expected PORT"),
    ],
)
def test_bad_options(table: dict[str, Any], key: str, reason: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=reason) as info:
        build(table, tmp_path)
    assert info.value.key == key


def test_short_secret_file_refused(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_bytes(b"fifteen bytes!!")
    short.chmod(0o600)
    with pytest.raises(ConfigError, match="at least 16") as info:
        build({"secret_file": "short"}, tmp_path)
    assert info.value.key == "server[0].secret_file"


def test_two_secret_sources_refused(tmp_path: Path, secret_file: Path) -> None:
    with pytest.raises(ConfigError, match="only one"):
        build({"secret_file": secret_file.name, "secret_env": "X"}, tmp_path)


def test_tls_options_checked(tmp_path: Path, secret_file: Path) -> None:
    with pytest.raises(ConfigError, match="keyfile needs certfile"):
        build({"secret_file": secret_file.name, "keyfile": "k.pem"}, tmp_path)
    with pytest.raises(ConfigError, match="TLS is for TCP"):
        build({"listen": "unix:m.sock", "certfile": "c.pem"}, tmp_path)
    with pytest.raises(ConfigError, match="No such file"):
        build({"secret_file": secret_file.name, "certfile": "c.pem"}, tmp_path)


def test_for_serve_reads_the_environment(
    monkeypatch: pytest.MonkeyPatch, secret_file: Path
) -> None:
    tcp = Address("127.0.0.1", 0)
    monkeypatch.delenv("MEDUSA_MONITOR_SECRET", raising=False)
    monkeypatch.delenv("MEDUSA_MONITOR_SECRET_FILE", raising=False)
    with pytest.raises(ConfigError, match="MEDUSA_MONITOR_SECRET") as info:
        MonitorServer.for_serve(tcp, ".")
    assert info.value.key == "--monitor"
    unix = MonitorServer.for_serve(Address(None, 0, "/run/x/m.sock"), ".")
    assert unix.secret is None
    monkeypatch.setenv("MEDUSA_MONITOR_SECRET_FILE", str(secret_file))
    assert MonitorServer.for_serve(tcp, ".").secret == SECRET
    monkeypatch.setenv("MEDUSA_MONITOR_SECRET", "another secret of 16+ bytes")
    with pytest.raises(ConfigError, match="only one"):
        MonitorServer.for_serve(tcp, ".")
    monkeypatch.delenv("MEDUSA_MONITOR_SECRET_FILE")
    assert MonitorServer.for_serve(tcp, ".").secret == b"another secret of 16+ bytes"
    monkeypatch.setenv("MEDUSA_MONITOR_SECRET", "short")
    with pytest.raises(ConfigError, match="at least 16"):
        MonitorServer.for_serve(tcp, ".")
