"""Anonymous logins are decided at once (no password to check) and virtual users' in the
background: in both cases, commands sent in the same packet as ``PASS`` are answered after
it, in order, on both loops; a refused login (an anonymous root that has gone) makes them
wait for its 530."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from medusa.core.passwords import hash_password
from medusa.core.testing import ServerThread
from medusa.ftp import FTPServer, VirtualUser, parse_permissions

BACKENDS = ["asyncio", "uvloop"]
CAROL_HASH = hash_password("secret")


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FTPServer]:
    (tmp_path / "pub" / "dir").mkdir(parents=True)
    carol = VirtualUser("carol", str(tmp_path / "pub"), parse_permissions(["read"]), CAROL_HASH)
    ftp_server = FTPServer(
        ("127.0.0.1", 0),
        anonymous_root=tmp_path / "pub",
        users=[carol],
        login_failure_delay=0.01,
        xferlog=False,
        session_log=False,
    )
    with ServerThread([ftp_server], backend=request.param):
        yield ftp_server


def replies(server: FTPServer, lines: list[str], count: int) -> list[str]:
    """Send ``lines`` in one write after the greeting; return the first ``count`` reply
    codes and texts (single-line replies), in the order received."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        stream = sock.makefile("rb")
        assert stream.readline().startswith(b"220")
        sock.sendall("".join(line + "\r\n" for line in lines).encode())
        return [stream.readline().decode().rstrip("\r\n") for _ in range(count)]


@pytest.mark.parametrize(("user", "password"), [("anonymous", "a@b"), ("carol", "secret")])
def test_commands_after_pass_wait_for_the_login(
    server: FTPServer, user: str, password: str
) -> None:
    got = replies(server, [f"USER {user}", f"PASS {password}", "CWD dir", "PWD"], 4)
    assert [line[:4] for line in got] == ["331 ", "230 ", "250 ", "257 "]
    assert got[3] == '257 "/dir" is the current directory.'


def test_a_refused_anonymous_login_makes_later_commands_wait(
    server: FTPServer, tmp_path: Path
) -> None:
    shutil.rmtree(tmp_path / "pub")  # the anonymous root is gone: its login fails
    got = replies(server, ["USER anonymous", "PASS a@b", "PWD", "NOOP"], 4)
    assert [line[:4] for line in got] == ["331 ", "530 ", "530 ", "200 "]
    assert got[1] == "530 Login incorrect."
    assert got[2].startswith("530 Please log in")
