# ruff: noqa: S321  (ftplib is the client of the FTP servers under test)
"""FTP with several processes on one machine: passive ports shared by two ``medusa serve``
processes (a port another process listens on is skipped, never a failed ``PASV``), and
``medusa serve --workers 2``, where each passive data connection must reach the worker
whose session opened it (lftp mirrors both ways, ftplib sessions held in both workers).
"""

from __future__ import annotations

import ftplib
import os
import re
import socket
import threading
from pathlib import Path

import pytest
from tests.conftest import Runner, write_tree

pytestmark = pytest.mark.e2e

IO_TIMEOUT = 15.0
PAYLOAD = os.urandom(1024 * 1024 + 11)


def free_port_pair() -> int:
    """Return a port ``p`` such that ``p`` and ``p + 1`` were both free on 127.0.0.1 (a
    passive range of two ports for the servers under test)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port >= 65535:
            continue
        try:
            for candidate in (port, port + 1):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    pytest.fail("no two consecutive free ports")


def ftp_config(tmp_path: Path, name: str, passive: tuple[int, int], extra: str = "") -> Path:
    """Write a ``medusa.toml`` with one FTP server (anonymous on ``site``, user ``alice``
    writing to ``site``) and return its path."""
    from medusa.core.passwords import hash_password

    config = tmp_path / f"{name}.toml"
    config.write_text(
        f"""
[medusa]
grace = 2
{extra}

[[server]]
type = "ftp"
listen = "127.0.0.1:0"
anonymous_root = "site"
passive_ports = [{passive[0]}, {passive[1]}]
data_timeout = 30

[[server.user]]
name = "alice"
password = "{hash_password("pw")}"
root = "site"
permissions = ["read", "write", "delete", "rename", "mkdir"]
"""
    )
    return config


def pasv_port(ftp: ftplib.FTP) -> int:
    """Send ``PASV`` and return the port of its 227 reply (fails on any other reply)."""
    reply = ftp.sendcmd("PASV")
    match = re.search(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", reply)
    assert reply.startswith("227"), reply
    assert match, reply
    return int(match.group(5)) * 256 + int(match.group(6))


def login(port: int, user: str = "anonymous", password: str = "guest@") -> ftplib.FTP:  # noqa: S107
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=IO_TIMEOUT)
    ftp.login(user, password)
    ftp.voidcmd("TYPE I")
    return ftp


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_two_processes_share_a_passive_range(runner: Runner, tmp_path: Path) -> None:
    """Two processes, one range of two ports: while process A holds one port with an open
    PASV listener, every PASV of process B gets the other port (the taken one is skipped,
    whichever port B tries first), and both serve a download at the same time."""
    site = tmp_path / "site"
    write_tree(site, {"payload.bin": PAYLOAD})
    low = free_port_pair()
    config = ftp_config(tmp_path, "shared", (low, low + 1))
    first = runner.start("serve", "-c", str(config))
    second = runner.start("serve", "-c", str(config))
    a = login(first.endpoint.port)
    b = login(second.endpoint.port)
    try:
        held = pasv_port(a)
        assert held in (low, low + 1)
        other = low + 1 if held == low else low
        # B starts at a random port of the range: 24 tries all land on the free one
        # only if the taken one is skipped (a failure would be a 425 reply).
        for _ in range(24):
            assert pasv_port(b) == other, second.describe()
        # Both transfers run at once, each data connection to its own process.
        data_a = socket.create_connection(("127.0.0.1", held), timeout=IO_TIMEOUT)
        data_b = socket.create_connection(("127.0.0.1", other), timeout=IO_TIMEOUT)
        assert a.sendcmd("RETR payload.bin")[:3] in ("125", "150")
        assert b.sendcmd("RETR payload.bin")[:3] in ("125", "150")
        got: dict[str, bytes] = {}
        reader = threading.Thread(target=lambda: got.update(b=read_all(data_b)))
        reader.start()
        got["a"] = read_all(data_a)
        reader.join(IO_TIMEOUT)
        data_a.close()
        data_b.close()
        assert got == {"a": PAYLOAD, "b": PAYLOAD}
        assert a.voidresp().startswith("226")
        assert b.voidresp().startswith("226")
        # With both ports held (a listener each), a third PASV gets 425, not an error.
        c = login(second.endpoint.port)
        try:
            pasv_port(a)
            pasv_port(b)
            with pytest.raises(ftplib.error_temp, match=r"^425"):
                c.sendcmd("PASV")
            c.voidcmd("NOOP")  # the session goes on
        finally:
            c.close()
        a.quit()
        b.quit()
    finally:
        a.close()
        b.close()
    for process in (first, second):
        assert process.stop() == 0, process.describe()
        assert "Traceback" not in process.stderr(), process.describe()
