# ruff: noqa: S321  (ftplib parses the PASV replies: these are FTP server tests)
"""Listings on passive data connections, on both loops: a listing whose data connection is
open when its command comes is written to the socket at once, closed, and answered with
its 125 and 226 in one write (one wake-up of the client instead of three); a data
connection the client closed first gets 426; a listing larger than the socket takes at
once goes on through a data channel, complete."""

from __future__ import annotations

import ftplib
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from medusa.core.filesys import OSFilesystem
from medusa.core.testing import ServerThread
from medusa.ftp import FTPServer
from medusa.ftp.listings import list_lines

BACKENDS = ["asyncio", "uvloop"]
TIMEOUT = 10.0


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "pub").mkdir(parents=True)
    for number in range(24):
        (root / "pub" / f"file-{number:02d}.txt").write_bytes(b"x" * number)
    return root


def start(root: Path, backend: str, **options: object) -> ServerThread:
    server = FTPServer(
        ("127.0.0.1", 0),
        anonymous_root=str(root),
        xferlog=False,
        session_log=False,
        **options,  # type: ignore[arg-type]
    )
    return ServerThread([server], backend=backend).start()


@pytest.fixture
def running(tree: Path, backend: str) -> Iterator[ServerThread]:
    thread = start(tree, backend)
    yield thread
    thread.stop()


class Control:
    """A control connection on a plain socket, so that the test sees how the replies
    arrive (ftplib reads them line by line)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buffer = b""
        assert self.reply().startswith(b"220")

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode() + b"\r\n")

    def receive(self) -> bytes:
        """What one recv gives (at least one byte)."""
        data = self.sock.recv(65536)
        assert data, "the server closed the control connection"
        return data

    def reply(self) -> bytes:
        """The next reply line."""
        while b"\r\n" not in self.buffer:
            self.buffer += self.receive()
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def command(self, line: str) -> bytes:
        self.send(line)
        return self.reply()

    def passive(self) -> socket.socket:
        """Log in anonymously, PASV, and connect the data connection."""
        assert self.command("USER anonymous").startswith(b"331")
        assert self.command("PASS guest@example.org").startswith(b"230")
        _, port = ftplib.parse227(self.command("PASV").decode())
        return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)

    def close(self) -> None:
        self.sock.close()


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(1 << 20):
        data += chunk
    return data


def test_a_listing_comes_with_its_125_and_226_in_one_write(
    running: ServerThread, tree: Path
) -> None:
    control = Control(running.servers[0].port)
    try:
        with control.passive() as data:
            control.send("LIST pub")
            replies = control.receive()  # one recv: both replies were written together
            assert replies.startswith(b"125 ")
            assert b"\r\n226 Transfer complete.\r\n" in replies
            listing = read_all(data)
        expected = list_lines(OSFilesystem(str(tree)), "pub")
        assert listing.decode().split("\r\n")[:-1] == expected
        assert len(expected) == 24
        # NLST and MLSD likewise; the session goes on.
        for verb in ("NLST pub", "MLSD pub"):
            _, port = ftplib.parse227(control.command("PASV").decode())
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as data:
                control.send(verb)
                replies = control.receive()
                assert replies.startswith(b"125 ")
                assert b"\r\n226 " in replies
                assert read_all(data).count(b"\r\n") == 24
        assert control.command("NOOP").startswith(b"200")
    finally:
        control.close()


def test_a_data_connection_the_client_closed_gets_426(running: ServerThread) -> None:
    control = Control(running.servers[0].port)
    try:
        data = control.passive()
        data.close()  # before the command: nothing can be delivered
        control.send("LIST pub")
        assert control.reply().startswith(b"125")
        assert control.reply().startswith(b"426")
        assert control.command("NOOP").startswith(b"200")
    finally:
        control.close()


def test_a_listing_larger_than_the_socket_takes_at_once_arrives_whole(
    tmp_path: Path, backend: str
) -> None:
    """About 6 MB of lines: more than a fresh loopback socket's send buffer (about 4 MB on
    Linux), so that the rest goes through a data channel after the first part."""
    root = tmp_path / "root"
    big = root / "big"
    big.mkdir(parents=True)
    stem = "n" * 200
    for number in range(24_000):
        (big / f"{stem}{number:05d}").touch()
    thread = start(root, backend)
    control = Control(thread.servers[0].port)
    try:
        with control.passive() as data:
            control.send("LIST big")
            assert control.reply().startswith(b"125")
            listing = read_all(data)
        assert control.reply().startswith(b"226")
        lines = listing.decode().split("\r\n")
        assert lines[-1] == ""
        assert lines[:-1] == list_lines(OSFilesystem(str(root)), "big")
        assert len(lines) - 1 == 24_000
        assert len(listing) > 5_000_000
    finally:
        control.close()
        thread.stop()
