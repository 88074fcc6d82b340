"""~user directories through real sockets."""

from __future__ import annotations

import http.client
import os
from pathlib import Path

import pytest

from medusa.core.testing import ServerThread
from medusa.http import HTTPServer
from medusa.http.userdir import UserDirHandler, unix_home


def get(conn: http.client.HTTPConnection, path: str) -> tuple[int, bytes, str | None]:
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read(), response.getheader("Location")


@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
def test_user_directories(tmp_path: Path, backend: str) -> None:
    homes = {"alice": tmp_path / "home" / "alice", "bob": tmp_path / "home" / "bob"}
    public = homes["alice"] / "public_html"
    (public / "sub").mkdir(parents=True)
    (public / "index.html").write_bytes(b"alice's page")
    (public / "sub" / "f.txt").write_bytes(b"sub file")
    (homes["alice"] / "private.txt").write_bytes(b"not published")
    homes["bob"].mkdir(parents=True)  # no public_html
    os.symlink("/etc", public / "etc")
    handler = UserDirHandler(home_for=lambda name: str(homes[name]) if name in homes else None)
    server = HTTPServer(("127.0.0.1", 0), handlers=[handler], access_log=None)
    with ServerThread([server], backend=backend):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        assert get(conn, "/~alice/")[:2] == (200, b"alice's page")
        assert get(conn, "/~alice/sub/f.txt")[:2] == (200, b"sub file")
        status, _, location = get(conn, "/~alice")
        assert (status, location) == (301, f"http://127.0.0.1:{server.port}/~alice/")
        status, _, location = get(conn, "/~alice/sub")
        assert (status, location) == (301, f"http://127.0.0.1:{server.port}/~alice/sub/")
        for path in (
            "/~nobody-here/",
            "/~bob/",
            "/~alice/../private.txt",
            "/~alice/%2e%2e/private.txt",
            "/~alice/etc/passwd",
        ):
            status, body, _ = get(conn, path)
            assert status == 404, path
            assert b"not published" not in body
            assert b"root:" not in body
        conn.close()


def test_public_dir_must_stay_in_the_home() -> None:
    for bad in ("", "/srv", "../x"):
        with pytest.raises(ValueError, match="public_dir"):
            UserDirHandler(bad)


def test_unix_home_reads_the_password_database() -> None:
    assert unix_home("root") is not None
    assert unix_home("no-such-user-medusa-test") is None
