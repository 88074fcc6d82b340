# ruff: noqa: S321  (ftplib is the client under test: these are FTP server tests)
"""FTP servers from medusa.toml tables (and ``medusa serve``'s for_serve): options,
virtual users, and every kind of configuration mistake (ConfigError naming the key)."""

from __future__ import annotations

import ftplib
from pathlib import Path
from typing import Any

import pytest

from medusa.core.address import Address
from medusa.core.config import build_config
from medusa.core.options import ConfigError
from medusa.core.passwords import hash_password, set_password
from medusa.core.testing import ServerThread
from medusa.ftp import FTPServer

TYPES = {"ftp": FTPServer}
HASH = hash_password("pw")


def build(tmp_path: Path, **table: Any) -> FTPServer:
    config = build_config(
        {"server": [{"type": "ftp", "listen": "127.0.0.1:0", **table}]},
        source="medusa.toml",
        base_dir=str(tmp_path),
        server_types=TYPES,
    )
    [server] = config.servers
    assert isinstance(server, FTPServer)
    return server


def test_full_configuration(tmp_path: Path) -> None:
    for name in ("pub", "alice", "bob"):
        (tmp_path / name).mkdir()
    (tmp_path / "pub" / "readme").write_bytes(b"r")
    set_password(tmp_path / "ftp.passwd", "bob", "bobpw")
    server = build(
        tmp_path,
        anonymous_root="pub",
        passwords="ftp.passwd",
        passive_ports=[60100, 60110],
        masquerade_address="192.0.2.1",
        max_login_attempts=5,
        login_failure_delay=0,
        listing_style="msdos",
        banner="Hi",
        user=[
            {"name": "alice", "password": HASH, "root": "alice", "permissions": "elradfmw"},
            {"name": "bob", "root": "bob", "permissions": ["read", "write"]},
        ],
    )
    assert server.passive_ports == range(60100, 60111)
    assert server.masquerade_address == "192.0.2.1"
    assert server.listing_style == "msdos"
    with ServerThread([server]):
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", server.port, timeout=10)
        assert ftp.getwelcome() == "220 Hi"
        ftp.login("alice", "pw")
        ftp.mkd("made")
        ftp.quit()
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", server.port, timeout=10)
        ftp.login("bob", "bobpw")
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            ftp.mkd("no")
        ftp.quit()
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", server.port, timeout=10)
        ftp.login()
        assert ftp.nlst() == ["readme"]
        ftp.quit()
    assert (tmp_path / "alice" / "made").is_dir()


BAD = [
    ({"bogus": 1}, "server[0].bogus", "unknown option"),
    ({"anonymous_root": "missing"}, "server[0].anonymous_root", "not a directory"),
    ({"passive_ports": [100, 200]}, "server[0].passive_ports", "1024"),
    ({"passive_ports": [60000]}, "server[0].passive_ports", "LOW, HIGH"),
    ({"masquerade_address": "::1"}, "server[0].masquerade_address", "IPv4"),
    ({"listing_style": "vms"}, "server[0].listing_style", "unix or msdos"),
    ({"max_login_attempts": 0}, "server[0].max_login_attempts", "greater than 0"),
    ({"data_timeout": "long"}, "server[0].data_timeout", "expected"),
    ({"user": {"name": "x"}}, "server[0].user", "list of tables"),
    ({"user": [{"root": "."}]}, "server[0].user[0].name", "required"),
    ({"user": [{"name": "x", "password": HASH}]}, "server[0].user[0].root", "required"),
    ({"user": [{"name": "x", "root": ".", "password": "plain"}]}, "password", "scrypt"),
    ({"user": [{"name": "x", "root": ".", "permissions": "xyz"}]}, "permissions", "unknown"),
    ({"user": [{"name": "a b", "root": "."}]}, "server[0].user[0].name", "valid user name"),
    ({"user": [{"name": "x", "root": "nowhere", "password": HASH}]}, "root", "not a directory"),
    ({"user": [{"name": "x", "root": "."}]}, "server[0].user", "no password"),
    (
        {"user": [{"name": "x", "root": ".", "password": HASH}] * 2},
        "server[0].user[1].name",
        "twice",
    ),
    ({"tls_data_required": True}, "server[0]", "certfile"),
    ({"certfile": "missing.pem"}, "server[0]", "No such file"),
]


@pytest.mark.parametrize(("table", "key", "reason"), BAD)
def test_configuration_errors(tmp_path: Path, table: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build(tmp_path, **table)
    assert key in str(caught.value)
    assert reason in str(caught.value)


def test_for_serve_is_anonymous_read_only(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    server = FTPServer.for_serve(Address("127.0.0.1", 0), str(tmp_path))
    assert server.address.host == "127.0.0.1"
    assert FTPServer.default_port == 8021
    with ServerThread([server]):
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", server.port, timeout=10)
        ftp.login()
        assert ftp.nlst() == ["f"]
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            ftp.delete("f")
        ftp.close()
        ftp = ftplib.FTP()
        ftp.connect("127.0.0.1", server.port, timeout=10)
        with pytest.raises(ftplib.error_perm, match=r"^530"):
            ftp.login("root", "x")  # no other users
        ftp.close()
