# ruff: noqa: S321  (ftplib is the client under test: these are FTP server tests)
"""Data connections on both loops: passive and active, IPv4 and IPv6, bounce and port-theft
refusals, ABOR and broken transfers (no half file left under the real name), timeouts,
the passive port range, the masquerade address and throttling."""

from __future__ import annotations

import contextlib
import ftplib
import io
import os
import re
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medusa.core.passwords import hash_password
from medusa.core.testing import ServerThread, wait_until
from medusa.ftp import FTPServer, VirtualUser, parse_permissions

BACKENDS = ["asyncio", "uvloop"]
HASH = hash_password("secret")
BIG = 8 * 1024 * 1024


def have_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def raw(ftp: ftplib.FTP, line: str) -> str:
    """Send one command line and return the whole reply, whatever its code."""
    ftp.putcmd(line)
    return ftp.getmultiline()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    (root / "small.txt").write_bytes(b"small file\n")
    (root / "big.bin").write_bytes(os.urandom(BIG))
    return root


_OPEN: list[ftplib.FTP | socket.socket] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def start(tree: Path, backend: str, host: str = "127.0.0.1", **options: object) -> ServerThread:
    users = [VirtualUser("u", str(tree), parse_permissions("elradfmw"), HASH)]
    server = FTPServer(
        (host, 0),
        users=users,
        xferlog=False,
        session_log=False,
        **options,  # type: ignore[arg-type]
    )
    return ServerThread([server], backend=backend).start()


def login(thread: ServerThread, host: str = "127.0.0.1") -> ftplib.FTP:
    ftp = ftplib.FTP()
    _OPEN.append(ftp)
    ftp.connect(host, thread.servers[0].port, timeout=10)
    ftp.login("u", "secret")
    ftp.voidcmd("TYPE I")
    return ftp


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def running(tree: Path, backend: str) -> Iterator[ServerThread]:
    thread = start(tree, backend)
    yield thread
    thread.stop()


def test_active_mode_port_and_eprt(running: ServerThread, tree: Path) -> None:
    ftp = login(running)
    ftp.set_pasv(False)
    data = io.BytesIO()
    ftp.retrbinary("RETR big.bin", data.write)
    assert data.getvalue() == (tree / "big.bin").read_bytes()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        assert raw(ftp, f"EPRT |1|127.0.0.1|{port}|").startswith("200")
        assert raw(ftp, "RETR small.txt").startswith("150")
        conn, _ = listener.accept()
        with conn:
            got = b""
            while chunk := conn.recv(65536):
                got += chunk
        assert got == b"small file\n"
    assert ftp.voidresp().startswith("226")


def test_bounce_attacks_are_refused(running: ServerThread) -> None:
    ftp = login(running)
    assert raw(ftp, "PORT 127,0,0,2,39,16").startswith("501")  # another host
    assert raw(ftp, "PORT 10,0,0,1,39,16").startswith("501")
    assert raw(ftp, "PORT 127,0,0,1,0,25").startswith("504")  # a privileged port
    assert raw(ftp, "EPRT |1|127.0.0.2|10000|").startswith("501")
    assert raw(ftp, "EPRT |2|::1|10000|").startswith("501")
    assert raw(ftp, "EPRT |1|127.0.0.1|21|").startswith("504")
    assert raw(ftp, "EPRT |9|127.0.0.1|10000|").startswith("522")
    assert raw(ftp, "PORT 1,2,3").startswith("501")
    # Nothing was accepted: a transfer now has no data port.
    assert raw(ftp, "RETR small.txt").startswith("425")
    assert raw(ftp, "EPSV ALL").startswith("200")
    assert raw(ftp, "PASV").startswith("501")
    assert raw(ftp, "PORT 127,0,0,1,39,16").startswith("501")
    assert raw(ftp, "EPSV").startswith("229")


def test_port_theft_is_refused(running: ServerThread) -> None:
    ftp = login(running)
    reply = raw(ftp, "EPSV")
    port = int(re.search(r"\|\|\|(\d+)\|", reply).group(1))  # type: ignore[union-attr]
    thief = socket.socket()
    _OPEN.append(thief)
    thief.settimeout(10)
    thief.bind(("127.0.0.2", 0))
    thief.connect(("127.0.0.1", port))
    with contextlib.suppress(ConnectionResetError):
        assert thief.recv(1) == b""  # closed at once
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    _OPEN.append(conn)
    assert raw(ftp, "RETR small.txt")[:3] in ("125", "150")
    got = b""
    while chunk := conn.recv(65536):
        got += chunk
    assert got == b"small file\n"
    assert ftp.voidresp().startswith("226")


def test_abort_a_download(running: ServerThread) -> None:
    ftp = login(running)
    conn = ftp.transfercmd("RETR big.bin")
    _OPEN.append(conn)
    assert conn.recv(1000)
    assert ftp.abort()[:3] == "426"
    assert ftp.getmultiline().startswith("226")
    assert raw(ftp, "NOOP").startswith("200")


def test_aborted_upload_leaves_no_file(running: ServerThread, tree: Path) -> None:
    ftp = login(running)
    conn = ftp.transfercmd("STOR part.bin")
    _OPEN.append(conn)
    conn.sendall(b"x" * 100_000)
    assert ftp.abort()[:3] == "426"
    assert ftp.getmultiline().startswith("226")
    assert sorted(p.name for p in tree.iterdir()) == ["big.bin", "small.txt"]
    # A reset data connection: 426, and again nothing under the real name.
    conn = ftp.transfercmd("STOR part.bin")
    conn.sendall(b"y" * 100_000)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()
    with pytest.raises(ftplib.error_temp, match=r"^426"):
        ftp.voidresp()
    assert sorted(p.name for p in tree.iterdir()) == ["big.bin", "small.txt"]
    # A complete upload replaces the file in one rename.
    ftp.storbinary("STOR small.txt", io.BytesIO(b"new"))
    assert (tree / "small.txt").read_bytes() == b"new"


def test_commands_wait_for_the_transfer(running: ServerThread) -> None:
    ftp = login(running)
    conn = ftp.transfercmd("RETR big.bin")
    _OPEN.append(conn)
    ftp.putcmd("PWD")  # queued until the transfer ends
    assert raw(ftp, "STAT").startswith("211-")  # answered during the transfer
    got = 0
    while chunk := conn.recv(1 << 20):
        got += len(chunk)
    assert got == BIG
    assert ftp.voidresp().startswith("226")
    assert ftp.getmultiline() == '257 "/" is the current directory.'


def test_data_connection_timeout(tree: Path, backend: str) -> None:
    thread = start(tree, backend, data_timeout=0.3)
    try:
        ftp = login(thread)
        ftp.sendcmd("PASV")
        assert raw(ftp, "RETR small.txt").startswith("150")
        assert ftp.getmultiline().startswith("425")  # nobody connected
        assert raw(ftp, "NOOP").startswith("200")
    finally:
        thread.stop()


def test_passive_range_and_masquerade(tree: Path, backend: str) -> None:
    thread = start(tree, backend, passive_ports=(61000, 61019), masquerade_address="10.9.8.7")
    try:
        ftp = login(thread)
        for _ in range(3):
            reply = raw(ftp, "PASV")
            numbers = [int(n) for n in re.findall(r"\d+", reply.split("(")[1])]
            assert numbers[:4] == [10, 9, 8, 7]
            assert 61000 <= numbers[4] * 256 + numbers[5] <= 61019
        # ftplib connects to the control host, not the announced one.
        data = io.BytesIO()
        ftp.retrbinary("RETR small.txt", data.write)
        assert data.getvalue() == b"small file\n"
    finally:
        thread.stop()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_one_passive_port_serves_transfer_after_transfer(tree: Path, backend: str) -> None:
    # The server closes a download's data connection first, which leaves the port's
    # connection in TIME_WAIT for a minute: the next PASV must still be able to listen there.
    port = free_port()
    thread = start(tree, backend, passive_ports=(port, port))
    try:
        ftp = login(thread)
        for _ in range(3):
            data = io.BytesIO()
            ftp.retrbinary("RETR small.txt", data.write)
            assert data.getvalue() == b"small file\n"
            assert sorted(ftp.nlst()) == ["big.bin", "small.txt"]
    finally:
        thread.stop()


@pytest.mark.skipif(not have_ipv6(), reason="no IPv6 on the loopback interface")
def test_ipv6_epsv_and_eprt(tree: Path, backend: str) -> None:
    thread = start(tree, backend, host="::1")
    try:
        ftp = login(thread, "::1")
        assert raw(ftp, "PASV").startswith("425")
        data = io.BytesIO()
        ftp.retrbinary("RETR small.txt", data.write)  # EPSV
        assert data.getvalue() == b"small file\n"
        ftp.set_pasv(False)
        data = io.BytesIO()
        ftp.retrbinary("RETR small.txt", data.write)  # EPRT |2|::1|...|
        assert data.getvalue() == b"small file\n"
        assert raw(ftp, "EPSV 1").startswith("522")
    finally:
        thread.stop()


def test_throttled_transfers(tree: Path, backend: str) -> None:
    thread = start(tree, backend, max_download_rate=100_000, max_upload_rate=100_000)
    try:
        ftp = login(thread)
        (tree / "sixty.bin").write_bytes(os.urandom(60_000))
        started = time.monotonic()
        data = io.BytesIO()
        ftp.retrbinary("RETR sixty.bin", data.write)
        assert time.monotonic() - started >= 0.4  # 60 kB at 100 kB/s, the first piece free
        assert data.getvalue() == (tree / "sixty.bin").read_bytes()
        started = time.monotonic()
        ftp.storbinary("STOR up.bin", io.BytesIO(data.getvalue()))
        assert time.monotonic() - started >= 0.4
        assert (tree / "up.bin").read_bytes() == data.getvalue()
    finally:
        thread.stop()


def test_data_bytes_are_counted(running: ServerThread) -> None:
    ftp = login(running)
    ftp.retrbinary("RETR small.txt", io.BytesIO().write)
    server = running.servers[0]
    wait_until(lambda: server.counters.bytes_out >= 11, what="the download to be counted")


def test_an_unused_passive_port_goes_back_after_the_data_timeout(tree: Path, backend: str) -> None:
    """A PASV nobody connects to holds its port only for ``data_timeout``: then the port
    goes back to the range (another session gets it) and the idle session's next transfer
    gets 425, as without PASV."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    thread = start(tree, backend, passive_ports=(port, port), data_timeout=0.5)
    try:
        first, second = login(thread), login(thread)
        assert raw(first, "PASV").startswith("227")
        assert raw(second, "PASV").startswith("425")  # the only port is held
        replies: list[str] = []

        def second_gets_the_port() -> bool:
            replies.append(raw(second, "PASV"))
            return replies[-1].startswith("227")

        wait_until(second_gets_the_port, timeout=10, what="the port to come back", interval=0.1)
        assert raw(first, "NOOP").startswith("200")  # the session itself goes on
        assert raw(first, "LIST").startswith("425")
    finally:
        thread.stop()
