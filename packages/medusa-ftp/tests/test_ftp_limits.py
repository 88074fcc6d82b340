# ruff: noqa: S321  (ftplib is the client under test: these are FTP server tests)
"""Limits and logs: the growing delay after failed logins and the disconnect after too
many, sessions per address and in total, the idle timeout, the transfer and session logs,
and shutdown."""

from __future__ import annotations

import ftplib
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medusa.core.passwords import hash_password
from medusa.core.testing import ServerThread, wait_until
from medusa.ftp import FTPServer, VirtualUser, parse_permissions

HASH = hash_password("right")


class ListLogger:
    """A Logger keeping its lines (written on the loop's thread, read by the test)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def log(self, message: str) -> None:
        with self._lock:
            self.lines.append(message)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)


_OPEN: list[ftplib.FTP | socket.socket] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def start(root: Path, backend: str = "asyncio", **options: object) -> ServerThread:
    users = [VirtualUser("u", str(root), parse_permissions("elradfmw"), HASH)]
    server = FTPServer(("127.0.0.1", 0), users=users, anonymous_root=root, **options)  # type: ignore[arg-type]
    return ServerThread([server], backend=backend).start()


def client(thread: ServerThread) -> ftplib.FTP:
    ftp = ftplib.FTP()
    _OPEN.append(ftp)
    ftp.connect("127.0.0.1", thread.servers[0].port, timeout=10)
    return ftp


@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
def test_failed_logins_are_delayed_then_dropped(tmp_path: Path, backend: str) -> None:
    log = ListLogger()
    thread = start(
        tmp_path, backend, login_failure_delay=0.2, max_login_attempts=3, session_log=log
    )
    try:
        ftp = client(thread)
        durations = []
        for _ in range(2):
            started = time.monotonic()
            with pytest.raises(ftplib.error_perm, match=r"^530"):
                ftp.login("u", "wrong")
            durations.append(time.monotonic() - started)
        assert durations[0] >= 0.2
        assert durations[1] >= 0.4  # the delay grows with each failure
        with pytest.raises(ftplib.error_perm, match=r"^530"):
            ftp.login("u", "wrong")
        assert ftp.getmultiline().startswith("421")
        assert ftp.sock is not None
        assert ftp.sock.recv(10) == b""  # disconnected
        assert "login 'u' failed (3 on this connection, 3 from 127.0.0.1)" in log.text()
        assert "disconnected after too many failed logins" in log.text()
        assert client(thread).login("u", "right").startswith("230")
    finally:
        thread.stop()


def test_sessions_per_address_and_in_total(tmp_path: Path) -> None:
    thread = start(tmp_path, max_sessions_per_ip=2)
    try:
        first, second = client(thread), client(thread)
        third = socket.create_connection(("127.0.0.1", thread.servers[0].port), timeout=10)
        _OPEN.append(third)
        assert third.recv(100).startswith(b"421 ")
        first.close()
        server = thread.servers[0]
        wait_until(lambda: thread.call(lambda: len(server.channels)) == 1, what="a close")
        assert client(thread).login().startswith("230")
        assert second.login().startswith("230")
    finally:
        thread.stop()
    thread = start(tmp_path, max_connections=1)
    try:
        client(thread)
        other = socket.create_connection(("127.0.0.1", thread.servers[0].port), timeout=10)
        _OPEN.append(other)
        assert other.recv(100).startswith(b"421 ")
    finally:
        thread.stop()


def test_idle_timeout(tmp_path: Path) -> None:
    thread = start(tmp_path, idle_timeout=0.3)
    try:
        ftp = client(thread)
        ftp.login()
        assert ftp.getmultiline().startswith("421")  # no command for 0.3 s
    finally:
        thread.stop()


def test_transfer_and_session_logs(tmp_path: Path) -> None:
    xfer, session = ListLogger(), ListLogger()
    (tmp_path / "f.txt").write_bytes(b"12345")
    thread = start(tmp_path, xferlog=xfer, session_log=session)
    try:
        ftp = client(thread)
        ftp.login("anonymous", "guest@example.org")
        ftp.retrbinary("RETR f.txt", io.BytesIO().write)
        ftp.quit()
        ftp = client(thread)
        ftp.login("u", "right")
        ftp.storbinary("STOR g.txt", io.BytesIO(b"abc"))
        ftp.delete("g.txt")
        ftp.quit()
        wait_until(lambda: "[u] quit" in session.text(), what="the session log")
        assert "DELE /g.txt" in session.text()
        out, inc = xfer.lines
        assert out.split(" ")[5:] == (
            [
                "1",
                "127.0.0.1",
                "5",
                "/f.txt",
                "b",
                "_",
                "o",
                "a",
                "guest@example.org",
                "ftp",
                "0",
                "*",
                "c",
            ]
        )
        assert inc.split(" ")[5:] == [
            "1",
            "127.0.0.1",
            "3",
            "/g.txt",
            "b",
            "_",
            "i",
            "r",
            "u",
            "ftp",
            "0",
            "*",
            "c",
        ]
        assert "login ok (password 'guest@example.org')" in session.text()
        assert "[u] quit" in session.text()
    finally:
        thread.stop()


def test_shutdown_tells_idle_sessions(tmp_path: Path) -> None:
    thread = start(tmp_path)
    ftp = client(thread)
    ftp.login()
    thread.stop()
    assert ftp.getmultiline().startswith("421")


def test_failed_logins_are_counted_per_address_across_connections(tmp_path: Path) -> None:
    """Reconnecting does not start a new count: the delay keeps growing, and after the
    address's budget its logins are refused (421, the password not even checked), while
    anonymous logins and other addresses go on."""
    log = ListLogger()
    thread = start(
        tmp_path,
        login_failure_delay=0.1,
        login_failure_max_delay=1.0,
        max_login_attempts=2,
        max_login_failures_per_ip=4,
        login_failure_window=600,
        session_log=log,
    )
    try:
        durations = []
        for _ in range(2):
            ftp = client(thread)
            for _ in range(2):
                started = time.monotonic()
                with pytest.raises(ftplib.error_perm, match=r"^530"):
                    ftp.login("u", "wrong")
                durations.append(time.monotonic() - started)
            assert ftp.getmultiline().startswith("421")
        # 0.1, 0.2 on the first connection; the second goes on from there: 0.4, 0.8.
        assert durations[2] >= 0.4
        assert durations[3] >= 0.8
        assert "login 'u' failed (2 on this connection, 4 from 127.0.0.1)" in log.text()
        assert "127.0.0.1 locked out for 600 s after 4 failed logins" in log.text()
        # Locked out: even the right password is refused at once, and the connection closed.
        ftp = client(thread)
        ftp.sendcmd("USER u")
        ftp.putcmd("PASS right")
        assert ftp.getmultiline().startswith("421 Too many failed logins from your address")
        assert ftp.sock is not None
        assert ftp.sock.recv(10) == b""
        assert "login 'u' refused: 127.0.0.1 is locked out" in log.text()
        assert client(thread).login().startswith("230")  # anonymous: no password to guess
        # Another address logs in at once.
        other = ftplib.FTP()
        _OPEN.append(other)
        other.connect(
            "127.0.0.1", thread.servers[0].port, timeout=10, source_address=("127.0.0.2", 0)
        )
        assert other.login("u", "right").startswith("230")
    finally:
        thread.stop()


def test_checks_running_at_the_lockout_are_logged_as_such(tmp_path: Path) -> None:
    """Wrong passwords on many connections at once: the failure that spends the budget logs
    the lockout with its number; a check that was already running when it came is logged
    as failing while locked out (it used to say "locked out ... after 1 failed logins", the
    count having restarted). Whatever the interleaving, every attempt gets 530 then 421."""
    log = ListLogger()
    thread = start(
        tmp_path,
        login_failure_delay=0.05,
        login_failure_max_delay=0.5,
        max_login_failures_per_ip=3,
        max_login_attempts=1,  # each connection closes after its one try, locked out or not
        session_log=log,
    )
    replies: list[list[bytes]] = []

    def attempt(n: int) -> None:
        """USER and PASS at once; the reply codes until the server closes (a reset, when
        it closed with PASS unread, ends them too)."""
        codes: list[bytes] = []
        address = ("127.0.0.1", thread.servers[0].port)
        with socket.create_connection(address, timeout=10) as s, s.makefile("rb") as f:
            f.readline()
            s.sendall(b"USER u\r\nPASS wrong%d\r\n" % n)
            try:
                while line := f.readline():
                    codes.append(line[:3])
            except ConnectionResetError:
                pass
        replies.append(codes)

    try:
        workers = [threading.Thread(target=attempt, args=(n,)) for n in range(8)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
    finally:
        thread.stop()
    assert len(replies) == 8
    for got in replies:  # refused with or without a check, by the order things happened
        assert got in ([b"331", b"530", b"421"], [b"331", b"421"], [b"421"]), got
    lockouts = [line for line in log.text().splitlines() if "locked out for" in line]
    assert len(lockouts) == 1, log.text()
    assert lockouts[0].endswith("127.0.0.1 locked out for 600 s after 3 failed logins")


def test_many_sessions_from_one_address_by_default(tmp_path: Path) -> None:
    """An office behind NAT, or a client's parallel transfers: 64 sessions from one
    address by default (vsftpd, ProFTPD and pyftpdlib have no such limit)."""
    assert FTPServer(("127.0.0.1", 0)).max_sessions_per_ip == 64
    thread = start(tmp_path)
    try:
        sessions = [client(thread) for _ in range(20)]
        assert all(s.welcome is not None and s.welcome.startswith("220") for s in sessions)
        assert sessions[-1].login().startswith("230")
    finally:
        thread.stop()


def test_refused_writes_are_in_the_session_log(tmp_path: Path) -> None:
    log = ListLogger()
    (tmp_path / "f.txt").write_bytes(b"f")
    (tmp_path / "d").mkdir()
    thread = start(tmp_path, session_log=log)
    try:
        ftp = client(thread)
        ftp.login("anonymous", "guest@example.org")  # read-only
        ftp.sendcmd("PASV")
        for command in (
            "STOR new.txt",
            "APPE f.txt",
            "STOU",
            "MKD sub",
            "RMD d",
            "DELE f.txt",
            "RNFR f.txt",
            "SITE CHMOD 600 f.txt",
        ):
            ftp.putcmd(command)
            assert ftp.getmultiline().startswith("550"), command
        user = client(thread)
        user.login("u", "right")
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            user.delete("missing.txt")
        user.sendcmd("RNFR f.txt")
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            user.sendcmd("RNTO no/such/dir/g.txt")
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            user.mkd("d")
        user.quit()
        wait_until(lambda: "[u] quit" in log.text(), what="the session log")
        for line in (
            "[anonymous] STOR /new.txt refused: 550 Permission denied.",
            "[anonymous] APPE /f.txt refused: 550 Permission denied.",
            "[anonymous] STOU refused: 550 Permission denied.",
            "[anonymous] MKD /sub refused: 550 Permission denied.",
            "[anonymous] RMD /d refused: 550 Permission denied.",
            "[anonymous] DELE /f.txt refused: 550 Permission denied.",
            "[anonymous] RNFR /f.txt refused: 550 Permission denied.",
            "[anonymous] SITE CHMOD 600 f.txt refused: 550 Permission denied.",
            "[u] DELE /missing.txt refused: 550 No such file or directory.",
            "[u] RNTO /no/such/dir/g.txt (from /f.txt) refused: 550 No such file or directory.",
            "[u] MKD /d refused: 550 File exists.",
        ):
            [found] = [entry for entry in log.lines if entry.endswith(line)]
            assert found.startswith("127.0.0.1:"), found  # the client's address and port
        assert (tmp_path / "f.txt").exists()
    finally:
        thread.stop()
