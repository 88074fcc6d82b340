# ruff: noqa: S321  (ftplib is the client under test: these are FTP server tests)
"""The control connection with ftplib on both loops: logins, navigation, file commands,
uploads and downloads, and the reply code of every kind of bad input (the session always
carries on)."""

from __future__ import annotations

import ftplib
import io
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from medusa.core.passwords import hash_password, recently_verified, set_password
from medusa.core.testing import ServerThread
from medusa.ftp import FTPServer, VirtualUser, parse_permissions
from medusa.ftp.authorizers import VirtualUsers

BACKENDS = ["asyncio", "uvloop"]
ALICE_HASH = hash_password("wonderland")
BOB_HASH = hash_password("builder")


def raw(ftp: ftplib.FTP, line: str) -> str:
    """Send one command line and return the whole reply, whatever its code."""
    ftp.putcmd(line)
    return ftp.getmultiline()


def make_tree(root: Path) -> None:
    (root / "pub").mkdir(parents=True)
    (root / "pub" / "hello.txt").write_bytes(b"hello\nworld\n")
    (root / "pub" / "sub").mkdir()
    (root / "pub" / "sub" / "deep.bin").write_bytes(bytes(range(256)) * 40)
    (root / "alice").mkdir()
    (root / "alice" / "notes.txt").write_bytes(b"0123456789")
    (root / "secret.txt").write_bytes(b"outside every root")
    os.symlink(root / "secret.txt", root / "pub" / "escape")


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FTPServer]:
    make_tree(tmp_path)
    users = [
        VirtualUser("alice", str(tmp_path / "alice"), parse_permissions("elradfmwM"), ALICE_HASH),
        VirtualUser("bob", str(tmp_path / "pub"), parse_permissions(["read"]), BOB_HASH),
    ]
    ftp_server = FTPServer(
        ("127.0.0.1", 0),
        anonymous_root=tmp_path / "pub",
        users=users,
        login_failure_delay=0.01,
        xferlog=False,
        session_log=False,
    )
    with ServerThread([ftp_server], backend=request.param):
        yield ftp_server


_OPEN: list[ftplib.FTP] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def connect(server: FTPServer, user: str | None = None, password: str = "") -> ftplib.FTP:
    """A logged-in ftplib client (closed after the test)."""
    ftp = ftplib.FTP()
    _OPEN.append(ftp)
    ftp.connect("127.0.0.1", server.port, timeout=10)
    if user is not None:
        ftp.login(user, password)
    return ftp


def test_anonymous_read_only(server: FTPServer) -> None:
    ftp = connect(server)
    assert ftp.getwelcome().startswith("220 ")
    assert ftp.login().startswith("230")
    assert ftp.pwd() == "/"
    assert sorted(ftp.nlst()) == ["escape", "hello.txt", "sub"]
    data = io.BytesIO()
    ftp.retrbinary("RETR hello.txt", data.write)
    assert data.getvalue() == b"hello\nworld\n"
    for command in ("STOR x", "APPE hello.txt", "STOU", "DELE hello.txt", "MKD new", "RMD sub"):
        with pytest.raises(ftplib.error_perm, match=r"^550"):
            ftp.storbinary(command, io.BytesIO(b"x")) if command[:2] in (
                "ST",
                "AP",
            ) else ftp.sendcmd(command)
    assert raw(ftp, "RNFR hello.txt").startswith("550")
    assert raw(ftp, "SITE CHMOD 777 hello.txt").startswith("550")
    assert ftp.quit().startswith("221")


def test_errors_before_login(server: FTPServer) -> None:
    ftp = connect(server)
    for command in ("PWD", "CWD /", "LIST", "RETR hello.txt", "PASV", "MKD x", "SIZE x"):
        assert raw(ftp, command).startswith("530 "), command
    assert raw(ftp, "PASS nobody").startswith("503 ")
    assert raw(ftp, "SYST") == "215 UNIX Type: L8"
    assert raw(ftp, "NOOP").startswith("200")
    assert raw(ftp, "FEAT").startswith("211-")
    assert raw(ftp, "HELP").startswith("214-")
    assert raw(ftp, "HELP RETR").startswith("214 Syntax: RETR")
    assert raw(ftp, "HELP BOGUS").startswith("501")
    assert raw(ftp, "STAT").startswith("211-")
    assert raw(ftp, "STAT /").startswith("530")
    assert ftp.login().startswith("230")  # the session carried on through every error


def test_syntax_and_sequence_errors(server: FTPServer) -> None:
    ftp = connect(server, "anonymous", "guest@example.org")
    expected = {
        "BOGUS": "500",
        "X": "500",
        "SMNT /": "502",
        "ACCT x": "502",
        "RETR": "501",
        "CWD": "250",
        "PWD extra": "501",
        "RNTO x": "503",
        "TYPE X": "501",
        "TYPE E": "504",
        "TYPE A T": "504",
        "STRU R": "504",
        "STRU X": "501",
        "MODE B": "504",
        "MODE S": "200",
        "STRU F": "200",
        "ALLO 100": "202",
        "REST abc": "501",
        "REST -1": "501",
        "OPTS UTF8 ON": "200",
        "OPTS BOGUS": "501",
        "CCC": "533",
        "PBSZ 0": "503",
        "PROT P": "503",
        "AUTH TLS": "502",
        "AUTH KERBEROS": "504",
        "USER other": "503",
        "PASS x": "503",
        "SITE BOGUS": "501",
        "SITE CHMOD x": "501",
        "EPSV 3": "522",
        "RETR nothing-here": "550",
        "SIZE hello.txt": "550",  # TYPE A
        "MDTM sub": "550",
        "MLSD hello.txt": "425",  # no data port is asked before a listing
    }
    for command, code in expected.items():
        assert raw(ftp, command)[:3] == code, command
    assert raw(ftp, "A" * 10000).startswith("500 Command line too long")
    assert raw(ftp, "NOOP").startswith("200")
    assert raw(ftp, "RETR bad\0name").startswith("550")


def test_numbers_are_ascii_digits_in_range(
    server: FTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Every number from the network: ASCII digits only, a bounded count, a value in
    range; anything else is 501 (never a 451 with a traceback in the log)."""
    caplog.set_level(logging.WARNING, logger="medusa")
    ftp = connect(server, "alice", "wonderland")
    huge = "9" * 5000
    expected = {
        f"REST {huge}": "501",
        "REST 99999999999999999999999": "501",
        "REST 9223372036854775808": "501",  # 2**63
        "REST 9223372036854775807": "350",
        "REST 0": "350",
        "REST \u0661\u0662": "501",  # Arabic-Indic digits
        "REST \u00b2": "501",  # superscript two
        "REST \uff11": "501",  # fullwidth one
        "REST +5": "501",
        "REST 1_000": "501",
        f"PORT 127,0,0,1,{huge},1": "501",
        "PORT 127,0,0,1,0004,1": "501",
        "PORT 127,0,0,1,\u0664,1": "501",
        "PORT 127,0,0,1,4,256": "501",
        f"EPRT |1|127.0.0.1|{huge}|": "501",
        "EPRT |1|127.0.0.1|70000|": "501",
        "EPRT |1|127.0.0.1|\u0665\u0660\u0660\u0660|": "501",
        "EPRT |1|127.0.0.1|0|": "501",
        f"ALLO {huge}": "501",
        "ALLO abc": "501",
        "ALLO \u0661": "501",
        "ALLO 100": "202",
        "ALLO 100 R 10": "202",
        "ALLO 100 R x": "501",
        f"SITE CHMOD {huge} notes.txt": "501",
        "SITE CHMOD 000000644 notes.txt": "501",
        "SITE CHMOD \u0666\u0664\u0664 notes.txt": "501",
        "SITE CHMOD 640 notes.txt": "200",
        "NOOP": "200",
    }
    for command, code in expected.items():
        assert raw(ftp, command)[:3] == code, command[:40]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_navigation_and_path_escapes(server: FTPServer) -> None:
    ftp = connect(server, "anonymous", "x@y")
    assert ftp.cwd("sub").startswith("250")
    assert ftp.pwd() == "/sub"
    assert raw(ftp, "CDUP").startswith("250")
    assert raw(ftp, "XPWD") == '257 "/" is the current directory.'
    assert ftp.cwd("../../../..").startswith("250")
    assert ftp.pwd() == "/"
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        ftp.cwd("hello.txt")
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        ftp.cwd("missing")
    ftp.voidcmd("TYPE I")
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        ftp.retrbinary("RETR ../secret.txt", io.BytesIO().write)
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        ftp.retrbinary("RETR escape", io.BytesIO().write)  # a link out of the root
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        ftp.size("../../secret.txt")
    assert ftp.size("/sub/../hello.txt") == 12
    assert ftp.size("sub/deep.bin") == 10240
    assert raw(ftp, "MDTM hello.txt")[:4] == "213 "
    assert raw(ftp, "MLST hello.txt").splitlines()[1].startswith(" type=file;size=12;")
    assert raw(ftp, "MLST ../../").splitlines()[1].endswith("; /")
    lines: list[str] = []
    ftp.retrlines("LIST -la", lines.append)
    assert [line.split()[-1] for line in lines] == ["escape", "hello.txt", "sub"]
    assert lines[0].startswith("l")  # the link shown as a link, its target hidden
    facts = dict(ftp.mlsd("sub"))
    assert facts["deep.bin"]["type"] == "file"
    assert facts["deep.bin"]["size"] == "10240"
    assert facts["deep.bin"]["perm"] == "r"
    assert raw(ftp, "SITE DIRSTYLE").startswith("200")
    lines = []
    ftp.retrlines("LIST", lines.append)
    assert "<DIR>" in lines[-1]
    assert lines[-1].endswith(" sub")
    names: list[str] = []
    ftp.retrlines("NLST *.txt", names.append)
    assert names == ["hello.txt"]


def test_virtual_user_uploads_and_file_commands(server: FTPServer, tmp_path: Path) -> None:
    home = tmp_path / "alice"
    ftp = connect(server, "alice", "wonderland")
    ftp.voidcmd("TYPE I")
    payload = os.urandom(300_000)
    assert ftp.storbinary("STOR up.bin", io.BytesIO(payload)).startswith("226")
    assert (home / "up.bin").read_bytes() == payload
    assert sorted(p.name for p in home.iterdir()) == ["notes.txt", "up.bin"]  # no temp left
    ftp.storbinary("STOR up.bin", io.BytesIO(b"replaced"))
    assert (home / "up.bin").read_bytes() == b"replaced"
    ftp.storbinary("APPE up.bin", io.BytesIO(b" and more"))
    assert (home / "up.bin").read_bytes() == b"replaced and more"
    response = ftp.sendcmd("PASV")
    assert response.startswith("227")
    conn, _ = ftp.ntransfercmd("STOU notes.txt")
    conn.sendall(b"unique")
    conn.close()
    assert ftp.voidresp().startswith("226")
    assert (home / "notes.txt.1").read_bytes() == b"unique"
    # REST for downloads and uploads.
    data = io.BytesIO()
    ftp.retrbinary("RETR notes.txt", data.write, rest=4)
    assert data.getvalue() == b"456789"
    ftp.storbinary("STOR notes.txt", io.BytesIO(b"XY"), rest=8)
    assert (home / "notes.txt").read_bytes() == b"01234567XY"
    with pytest.raises(ftplib.error_perm, match=r"^554"):
        ftp.retrbinary("RETR notes.txt", io.BytesIO().write, rest=999)
    # Rename, directories, delete.
    assert raw(ftp, "RNFR missing").startswith("550")
    assert ftp.rename("up.bin", "moved.bin").startswith("250")
    assert (home / "moved.bin").exists()
    assert ftp.mkd("dir") == "/dir"
    ftp.storbinary("STOR dir/inner", io.BytesIO(b"i"))
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        ftp.rmd("dir")
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        ftp.delete("dir")
    ftp.delete("dir/inner")
    assert ftp.rmd("dir").startswith("250")
    assert raw(ftp, "RMD /").startswith("550")
    assert ftp.sendcmd("SITE CHMOD 600 moved.bin").startswith("200")
    assert (home / "moved.bin").stat().st_mode & 0o777 == 0o600
    ftp.storbinary("STOR ../../outside", io.BytesIO(b"x"))  # clamped: /outside in home
    assert (home / "outside").read_bytes() == b"x"
    assert not (tmp_path / "outside").exists()


def test_ascii_uploads_and_downloads(server: FTPServer, tmp_path: Path) -> None:
    ftp = connect(server, "alice", "wonderland")
    ftp.storlines("STOR text.txt", io.BytesIO(b"one\ntwo\n"))  # sent as CRLF
    assert (tmp_path / "alice" / "text.txt").read_bytes() == b"one\ntwo\n"
    ftp.voidcmd("TYPE A")
    conn = ftp.transfercmd("RETR text.txt")
    got = b""
    while chunk := conn.recv(65536):
        got += chunk
    conn.close()
    ftp.voidresp()
    assert got == b"one\r\ntwo\r\n"


def test_logins(server: FTPServer) -> None:
    with pytest.raises(ftplib.error_perm, match=r"^530"):
        connect(server, "alice", "wrong")
    with pytest.raises(ftplib.error_perm, match=r"^530"):
        connect(server, "nobody", "wonderland")
    ftp = connect(server, "bob", "builder")
    assert sorted(ftp.nlst()) == ["escape", "hello.txt", "sub"]
    with pytest.raises(ftplib.error_perm, match=r"^550"):
        ftp.storbinary("STOR x", io.BytesIO(b"x"))
    assert raw(ftp, "REIN").startswith("220")
    assert raw(ftp, "PWD").startswith("530")
    assert ftp.login("alice", "wonderland").startswith("230")
    assert ftp.nlst() == ["notes.txt"]


def test_a_second_login_is_checked_from_the_remembered_success(server: FTPServer) -> None:
    """A virtual user's success is remembered (core's credential cache): the next session
    is let in by the check on the loop, and a wrong password is still refused."""
    first = connect(server, "alice", "wonderland")
    first.quit()
    assert recently_verified("wonderland", ALICE_HASH)
    again = connect(server, "alice", "wonderland")
    assert again.nlst() == ["notes.txt"]
    again.quit()
    with pytest.raises(ftplib.error_perm, match=r"^530"):
        connect(server, "alice", "wonderlands")
    assert not recently_verified("wonderlands", ALICE_HASH)


def test_a_remembered_success_is_answered_on_the_loop(server: FTPServer) -> None:
    """A virtual user's password verified in the last 5 minutes is answered without a
    background check (``FTPServer.recently_verified``, asked on the loop): the account after
    a login, none for a wrong password, an anonymous or an unknown name."""
    connect(server, "bob", "builder").quit()
    account = server.recently_verified("bob", "builder")
    assert account is not None
    assert (account.name, account.perms) == ("bob", parse_permissions(["read"]))
    assert server.recently_verified("bob", "builders") is None
    assert server.recently_verified("anonymous", "builder") is None
    assert server.recently_verified("nobody", "builder") is None
    assert connect(server, "bob", "builder").nlst() == ["escape", "hello.txt", "sub"]


def test_a_changed_password_file_entry_forgets_the_remembered_success(tmp_path: Path) -> None:
    """A password file's user: the success is remembered, and forgotten as soon as the
    file has a new entry (read again when it changed): the old password is refused."""
    (tmp_path / "carol").mkdir()
    passwd = tmp_path / "ftp.passwd"
    set_password(passwd, "carol", "first")
    ftp_server = FTPServer(
        ("127.0.0.1", 0),
        users=[VirtualUser("carol", str(tmp_path / "carol"), parse_permissions("elr"))],
        passwords=passwd,
        login_failure_delay=0.01,
        xferlog=False,
        session_log=False,
    )
    with ServerThread([ftp_server]):
        connect(ftp_server, "carol", "first").quit()
        assert ftp_server.recently_verified("carol", "first") is not None
        set_password(passwd, "carol", "second")
        [users] = [a for a in ftp_server.authorizers if isinstance(a, VirtualUsers)]
        assert users.password_file is not None
        users.password_file.reload()  # as the next check does once a second has passed
        assert ftp_server.recently_verified("carol", "first") is None
        with pytest.raises(ftplib.error_perm, match=r"^530"):
            connect(ftp_server, "carol", "first")
        connect(ftp_server, "carol", "second").quit()


def test_retr_of_a_directory_is_550_not_a_local_error(
    server: FTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    """``RETR`` of a directory: 550 "Not a regular file." (it was 451 with a traceback in
    the error log: the directory's descriptor was wrapped in a file object first)."""
    ftp = connect(server, "anonymous", "a@b")
    ftp.sendcmd("TYPE I")
    ftp.sendcmd("PASV")
    with caplog.at_level(logging.ERROR, logger="medusa"):
        assert raw(ftp, "RETR sub") == "550 Not a regular file."
    assert not [r for r in caplog.records if r.exc_info]
    assert raw(ftp, "NOOP").startswith("200")


def test_abort_without_transfer_and_quit(server: FTPServer) -> None:
    ftp = connect(server, "anonymous", "a@b")
    assert raw(ftp, "ABOR").startswith("225")
    ftp.sendcmd("PASV")
    assert raw(ftp, "ABOR").startswith("225")
    assert ftp.quit().startswith("221")
