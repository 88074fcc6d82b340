# ruff: noqa: S321  (ftplib is the client under test: these are FTP server tests)
"""Real Unix users through PAM: a throw-away user made with useradd and chpasswd logs in,
lands in their home directory, and the files they create are owned by them (the server
takes their persona around each file operation). Root and users without a valid shell are
refused. Runs only as root with pamela installed."""

from __future__ import annotations

import ftplib
import importlib.util
import io
import os
import pwd
import secrets
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from medusa.core.testing import ServerThread
from medusa.ftp import FTPServer

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="real Unix users need root"),
    pytest.mark.skipif(importlib.util.find_spec("pamela") is None, reason="pamela missing"),
    pytest.mark.skipif(shutil.which("useradd") is None, reason="useradd missing"),
]


def make_user(shell: str) -> tuple[str, str]:
    name = f"mftp{secrets.token_hex(4)}"
    password = secrets.token_urlsafe(12)
    subprocess.run(["useradd", "-m", "-s", shell, name], check=True, capture_output=True)
    subprocess.run(
        ["chpasswd"], input=f"{name}:{password}\n".encode(), check=True, capture_output=True
    )
    return name, password


@pytest.fixture(scope="module")
def users() -> Iterator[dict[str, tuple[str, str]]]:
    made: dict[str, tuple[str, str]] = {}
    try:
        made["shell"] = make_user("/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh")
        made["noshell"] = make_user("/usr/sbin/nologin")
        yield made
    finally:
        for name, _ in made.values():
            subprocess.run(["userdel", "-r", name], check=False, capture_output=True)


class SessionLog:
    """The server's session log, kept to explain a refused login in a failure message."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def log(self, message: str) -> None:
        with self._lock:
            self.lines.append(message)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines[-20:])


@pytest.fixture(params=["asyncio", "uvloop"])
def server(request: pytest.FixtureRequest) -> Iterator[FTPServer]:
    ftp_server = FTPServer(
        ("127.0.0.1", 0),
        unix_users=True,
        login_failure_delay=0.01,
        max_login_attempts=10,
        session_log=SessionLog(),
    )
    with ServerThread([ftp_server], backend=request.param):
        yield ftp_server


def login(server: FTPServer, user: str, password: str) -> ftplib.FTP:
    """Log in; a refusal's message carries the server's session log (PAM's reason is in the
    captured WARNING/INFO log of the test)."""
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", server.port, timeout=20)
    try:
        ftp.login(user, password)
    except ftplib.error_perm as exc:
        ftp.close()
        log = server.session_log
        text = log.text() if isinstance(log, SessionLog) else ""
        raise ftplib.error_perm(f"{exc}\n--- session log ---\n{text}") from exc
    except BaseException:
        ftp.close()
        raise
    return ftp


def test_unix_user_files_are_theirs(server: FTPServer, users: dict[str, tuple[str, str]]) -> None:
    name, password = users["shell"]
    entry = pwd.getpwnam(name)
    ftp = login(server, name, password)
    tag = secrets.token_hex(3)
    try:
        assert ftp.pwd() == "/"
        ftp.storbinary(f"STOR created-{tag}.txt", io.BytesIO(b"mine"))
        ftp.mkd(f"made-{tag}")
        created = Path(entry.pw_dir) / f"created-{tag}.txt"
        assert created.read_bytes() == b"mine"
        assert (created.stat().st_uid, created.stat().st_gid) == (entry.pw_uid, entry.pw_gid)
        made = Path(entry.pw_dir) / f"made-{tag}"
        assert made.stat().st_uid == entry.pw_uid
        data = io.BytesIO()
        ftp.retrbinary(f"RETR created-{tag}.txt", data.write)
        assert data.getvalue() == b"mine"
        # Their home is their root; the file system's permissions apply as them.
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            ftp.retrbinary("RETR ../../etc/shadow", io.BytesIO().write)
        os.chmod(created, 0o000)
        os.chown(created, 0, 0)
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            ftp.retrbinary(f"RETR created-{tag}.txt", io.BytesIO().write)  # root's now
        ftp.quit()
    finally:
        ftp.close()
    assert os.geteuid() == 0  # the server's own identity is back
    assert os.getegid() == 0


def test_refused_unix_logins(server: FTPServer, users: dict[str, tuple[str, str]]) -> None:
    name, password = users["shell"]
    with pytest.raises(ftplib.error_perm, match=r"^530"):
        login(server, name, password + "x")
    with pytest.raises(ftplib.error_perm, match=r"^530"):
        login(server, "root", "whatever")
    with pytest.raises(ftplib.error_perm, match=r"^530"):
        login(server, *users["noshell"])
    with pytest.raises(ftplib.error_perm, match=r"^530"):
        login(server, "no-such-user-here", "x")
