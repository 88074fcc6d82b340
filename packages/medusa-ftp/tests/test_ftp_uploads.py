# ruff: noqa: S321  (ftplib is the client under test: these are FTP server tests)
"""Uploads on both loops: the data timeout of a stalled or trickling STOR/APPE (426, the
partial temporary file removed and logged), fsync before the rename, the temporary files
of uploads in progress (never listed, never served, their names reserved), and the
removal at start of those a killed process left."""

from __future__ import annotations

import contextlib
import fcntl
import ftplib
import io
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medusa.core.passwords import hash_password
from medusa.core.testing import ServerThread, wait_until
from medusa.ftp import FTPServer, VirtualUser, parse_permissions

HASH = hash_password("secret")
FTP_TEMP = ".a.txt.0123abcd.part"  # the pattern of FTP's temporary files
HTTP_TEMP = ".b.txt.k2_x9q0z.upload"  # the pattern of medusa-http's PUT


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


def raw(ftp: ftplib.FTP, line: str) -> str:
    """Send one command line and return the whole reply, whatever its code."""
    ftp.putcmd(line)
    return ftp.getmultiline()


@pytest.fixture(params=["asyncio", "uvloop"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    (root / "small.txt").write_bytes(b"small file\n")
    return root


_OPEN: list[ftplib.FTP | socket.socket] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def start(tree: Path, backend: str, **options: object) -> ServerThread:
    users = [VirtualUser("u", str(tree), parse_permissions("elradfmwM"), HASH)]
    options.setdefault("xferlog", False)
    server = FTPServer(("127.0.0.1", 0), users=users, **options)  # type: ignore[arg-type]
    return ServerThread([server], backend=backend).start()


def login(thread: ServerThread) -> ftplib.FTP:
    ftp = ftplib.FTP()
    _OPEN.append(ftp)
    ftp.connect("127.0.0.1", thread.servers[0].port, timeout=10)
    ftp.login("u", "secret")
    ftp.voidcmd("TYPE I")
    return ftp


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# -- the data timeout of uploads --------------------------------------------------------------


@pytest.mark.parametrize("verb", ["STOR", "APPE"])
def test_a_stalled_upload_times_out(tree: Path, backend: str, verb: str) -> None:
    log = ListLogger()
    thread = start(tree, backend, data_timeout=0.5, session_log=log)
    try:
        ftp = login(thread)
        conn = ftp.transfercmd(f"{verb} up.bin")
        _OPEN.append(conn)
        conn.sendall(b"x" * 10_000)
        # Then nothing: the server gives up after the data timeout.
        with pytest.raises(ftplib.error_temp, match=r"^426"):
            ftp.voidresp()
        with contextlib.suppress(ConnectionResetError):
            assert conn.recv(1) == b""  # the data connection was closed
        assert "data connection timed out (no data for 0.5 s)" in log.text()
        if verb == "STOR":
            assert names(tree) == ["small.txt"]  # no temporary file left, no target
            assert "the partial temporary file removed" in log.text()
        else:
            assert (tree / "up.bin").read_bytes() == b"x" * 10_000  # APPE keeps what came
            assert "upload of /up.bin aborted after 10000 bytes" in log.text()
        assert raw(ftp, "NOOP").startswith("200")  # the session goes on
    finally:
        thread.stop()


def test_a_trickling_upload_times_out(tree: Path, backend: str) -> None:
    """One byte every 50 ms never stalls for the 0.5 s data timeout, but stays far under
    the minimum rate: the server ends it after a window of the data timeout."""
    log = ListLogger()
    thread = start(tree, backend, data_timeout=0.5, data_min_rate=1000, session_log=log)
    try:
        ftp = login(thread)
        conn = ftp.transfercmd("STOR slow.bin")
        _OPEN.append(conn)
        assert ftp.sock is not None
        deadline = time.monotonic() + 15
        reply = None
        while reply is None:
            assert time.monotonic() < deadline, "the trickling upload was never ended"
            with contextlib.suppress(OSError):
                conn.send(b"x")
            readable, _, _ = select.select([ftp.sock], [], [], 0.05)
            if readable:
                reply = ftp.getmultiline()
        assert reply.startswith("426"), reply
        assert "data connection timed out" in log.text()
        assert "under 1000 bytes/s" in log.text()
        assert names(tree) == ["small.txt"]
        assert raw(ftp, "NOOP").startswith("200")
    finally:
        thread.stop()


def test_a_throttled_upload_is_not_taken_for_a_trickle(tree: Path, backend: str) -> None:
    """The server's own upload limit (here 4000 bytes/s) makes the client wait; the
    minimum rate is then half that limit, and the wait is not a stall."""
    thread = start(tree, backend, data_timeout=0.3, data_min_rate=100_000, max_upload_rate=4000)
    try:
        ftp = login(thread)
        ftp.storbinary("STOR limited.bin", io.BytesIO(b"z" * 6000), blocksize=1000)
        assert (tree / "limited.bin").read_bytes() == b"z" * 6000
    finally:
        thread.stop()


# -- durability ------------------------------------------------------------------------------


def test_uploads_are_synced_before_they_are_renamed(
    tree: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """os.fsync is observed (and still called): at the time of the call the data is in
    the temporary file and the target does not exist yet; APPE syncs the file itself."""
    seen: list[tuple[str, bool]] = []
    real_fsync = os.fsync

    def observed_fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        seen.append((os.path.basename(path), (tree / "new.bin").exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", observed_fsync)
    thread = start(tree, backend)
    try:
        ftp = login(thread)
        ftp.storbinary("STOR new.bin", io.BytesIO(b"durable" * 1000))
        assert (tree / "new.bin").read_bytes() == b"durable" * 1000
        [(synced, target_existed)] = [s for s in seen if "new.bin" in s[0]]
        assert synced.startswith(".new.bin.")
        assert synced.endswith(".part")
        assert not target_existed
        seen.clear()
        ftp.storbinary("APPE new.bin", io.BytesIO(b"+"))
        assert [s[0] for s in seen] == ["new.bin"]
    finally:
        thread.stop()


def test_an_upload_finishing_after_its_client_left_is_stored(
    tree: Path, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole file arrived; the control connection is lost while the file is being
    synced (os.fsync is held back until then): it is still stored, and nothing is left."""
    syncing, go_on = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def held_fsync(fd: int) -> None:
        syncing.set()
        go_on.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", held_fsync)
    thread = start(tree, backend)
    try:
        ftp = login(thread)
        conn = ftp.transfercmd("STOR whole.bin")
        conn.sendall(b"w" * 50_000)
        conn.close()
        assert syncing.wait(10)
        server = thread.servers[0]
        ftp.close()
        wait_until(lambda: thread.call(lambda: len(server.channels)) == 0, what="the close")
        go_on.set()
        wait_until(lambda: names(tree) == ["small.txt", "whole.bin"], what="the stored file")
        assert (tree / "whole.bin").read_bytes() == b"w" * 50_000
    finally:
        go_on.set()
        thread.stop()


# -- temporary files of uploads in progress ---------------------------------------------------


def test_temporary_upload_files_are_never_shown(tree: Path, backend: str) -> None:
    for name in (FTP_TEMP, HTTP_TEMP):
        (tree / name).write_bytes(b"partial")
    (tree / ".profile").write_bytes(b"a dot file is listed")
    thread = start(tree, backend, clean_stale_uploads=False)  # (they are not locked)
    try:
        ftp = login(thread)
        shown = {"small.txt", ".profile"}
        assert set(ftp.nlst()) == shown
        lines: list[str] = []
        ftp.retrlines("LIST", lines.append)
        assert {line.split()[-1] for line in lines} == shown
        assert {name for name, _ in ftp.mlsd()} == shown
        status = raw(ftp, "STAT .")
        assert status.startswith("213-")
        assert "small.txt" in status
        assert FTP_TEMP not in status
        assert HTTP_TEMP not in status
        for name in (FTP_TEMP, HTTP_TEMP):
            for command in (
                f"MLST {name}",
                f"SIZE {name}",
                f"MDTM {name}",
                f"DELE {name}",
                f"RNFR {name}",
                f"CWD {name}",
                f"SITE CHMOD 600 {name}",
                f"STAT {name}",
            ):
                assert raw(ftp, command).startswith("550"), command
            ftp.sendcmd("PASV")
            assert raw(ftp, f"RETR {name}").startswith("550")
            for verb in ("LIST", "NLST"):
                ftp.sendcmd("PASV")
                assert raw(ftp, f"{verb} {name}").startswith("550")
            assert (tree / name).read_bytes() == b"partial"  # untouched
        # Their names are reserved: no upload, directory or rename may take one.
        (tree / "plain.txt").write_bytes(b"p")
        for command in (
            "STOR .x.bin.00112233.part",
            "APPE .x.bin.abcdefgh.upload",
            "STOU .y.bin.00112233.part",
            "MKD .dir.00112233.part",
        ):
            if command[:4] in ("STOR", "APPE", "STOU"):
                ftp.sendcmd("PASV")
            assert raw(ftp, command).startswith("553"), command
        ftp.sendcmd("RNFR plain.txt")
        assert raw(ftp, "RNTO .plain.txt.00112233.part").startswith("553")
        assert names(tree) == sorted([".profile", FTP_TEMP, HTTP_TEMP, "plain.txt", "small.txt"])
    finally:
        thread.stop()


def test_an_upload_in_progress_is_not_listed(tree: Path, backend: str) -> None:
    thread = start(tree, backend)
    try:
        ftp = login(thread)
        conn = ftp.transfercmd("STOR growing.bin")
        _OPEN.append(conn)
        conn.sendall(b"g" * 1000)
        wait_until(lambda: len(names(tree)) == 2, what="the temporary file")
        temporary = next(n for n in names(tree) if n != "small.txt")
        assert temporary.startswith(".growing.bin.")
        assert temporary.endswith(".part")
        other = login(thread)
        assert other.nlst() == ["small.txt"]
        conn.close()
        assert ftp.voidresp().startswith("226")
        assert sorted(other.nlst()) == ["growing.bin", "small.txt"]
    finally:
        thread.stop()


def test_stale_temporary_files_are_removed_at_start(
    tmp_path: Path, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    public, alice = tmp_path / "pub", tmp_path / "alice"
    (public / "sub").mkdir(parents=True)
    alice.mkdir()
    stale = [public / "sub" / ".data.bin.0123abcd.part", alice / ".notes.txt.89abcdef.part"]
    for path in stale:
        path.write_bytes(b"left by a killed process")
    # A live upload of another process holds its file locked: it stays.
    live = public / ".live.bin.fedcba98.part"
    live.write_bytes(b"being written")
    held = os.open(live, os.O_RDONLY)
    fcntl.flock(held, fcntl.LOCK_EX)
    kept = [live, public / HTTP_TEMP, public / "plain.part", public / ".short.part"]
    for path in kept[1:]:
        path.write_bytes(b"not FTP's temporary file")
    users = [VirtualUser("alice", str(alice), parse_permissions("elr"), HASH)]
    server = FTPServer(("127.0.0.1", 0), anonymous_root=public, users=users, xferlog=False)
    try:
        with (
            caplog.at_level(logging.WARNING, logger="medusa"),
            ServerThread([server], backend=backend),
        ):
            wait_until(lambda: not any(p.exists() for p in stale), what="the stale files")
            wait_until(lambda: caplog.text.count("removed") == 2, what="the log lines")
        assert all(p.exists() for p in kept)
        assert f"{stale[0]} (24 bytes, last written" in caplog.text
        assert "upload interrupted when a server process was killed" in caplog.text
    finally:
        os.close(held)


def test_the_search_for_stale_files_can_be_turned_off(tmp_path: Path, backend: str) -> None:
    stale = tmp_path / ".data.bin.0123abcd.part"
    stale.write_bytes(b"x")
    server = FTPServer(
        ("127.0.0.1", 0), anonymous_root=tmp_path, clean_stale_uploads=False, xferlog=False
    )
    with ServerThread([server], backend=backend) as thread:
        ftp = ftplib.FTP()
        _OPEN.append(ftp)
        ftp.connect("127.0.0.1", thread.servers[0].port, timeout=10)
        ftp.login()
        assert ftp.nlst() == []  # still hidden
    assert stale.exists()


# -- a resumed STOR (REST n) --------------------------------------------------------------


def test_a_resumed_upload_without_its_data_connection_leaves_the_file(
    tree: Path, backend: str
) -> None:
    """RFC 959 §4.1.3: REST 3 + STOR restarts the file at byte 3, but only with the data
    that comes: a STOR whose data connection never opens (425) leaves the file whole."""
    (tree / "keep.txt").write_bytes(b"0123456789")
    thread = start(tree, backend, data_timeout=0.5)
    try:
        ftp = login(thread)
        ftp.sendcmd("PASV")  # and never connect
        assert raw(ftp, "REST 3").startswith("350")
        assert raw(ftp, "STOR keep.txt").startswith("150")
        assert (tree / "keep.txt").read_bytes() == b"0123456789"
        with pytest.raises(ftplib.error_temp, match=r"^425"):
            ftp.voidresp()
        assert (tree / "keep.txt").read_bytes() == b"0123456789"
        assert raw(ftp, "NOOP").startswith("200")
    finally:
        thread.stop()


def test_a_resumed_upload_restarts_the_file_at_the_offset(tree: Path, backend: str) -> None:
    (tree / "keep.txt").write_bytes(b"0123456789")
    thread = start(tree, backend)
    try:
        ftp = login(thread)
        ftp.storbinary("STOR keep.txt", io.BytesIO(b"abc"), rest=3)
        assert (tree / "keep.txt").read_bytes() == b"012abc"
        ftp.storbinary("STOR keep.txt", io.BytesIO(b""), rest=2)  # no data: cut at 2
        assert (tree / "keep.txt").read_bytes() == b"01"
    finally:
        thread.stop()
