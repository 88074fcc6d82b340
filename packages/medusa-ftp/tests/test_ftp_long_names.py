# ruff: noqa: S321  (ftplib is the client under test: these are FTP server tests)
"""Long file names in STOR, with ftplib on both loops (issue 13, after the outside test): a
name of 241 to 255 bytes, whose temporary name ``.NAME.XXXXXXXX.part`` would pass NAME_MAX
(255 bytes), is stored whole (its temporary name is cut short, see
:func:`medusa.core.uploads.ftp_temporary_name`) instead of being refused with 550."""

from __future__ import annotations

import ftplib
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from medusa.core.passwords import hash_password
from medusa.core.testing import ServerThread
from medusa.ftp import FTPServer, VirtualUser, parse_permissions

HASH = hash_password("secret")


@pytest.fixture(params=["asyncio", "uvloop"])
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Path, int]]:
    users = [VirtualUser("u", str(tmp_path), parse_permissions("elradfmwM"), HASH)]
    server = FTPServer(("127.0.0.1", 0), users=users, xferlog=False)
    with ServerThread([server], backend=request.param):
        yield tmp_path, server.port


@pytest.mark.parametrize("name", ["q" * 241, "q" * 250, "q" * 255, "é" * 125])
def test_stor_of_a_long_name(site: tuple[Path, int], name: str) -> None:
    root, port = site
    ftp = ftplib.FTP()
    ftp.encoding = "utf-8"
    try:
        ftp.connect("127.0.0.1", port, timeout=10)
        ftp.login("u", "secret")
        assert ftp.storbinary(f"STOR {name}", io.BytesIO(b"long name\n")).startswith("226")
        assert ftp.size(name) == 10
        ftp.quit()
    finally:
        ftp.close()
    assert (root / name).read_bytes() == b"long name\n"
    assert [p.name for p in root.iterdir()] == [name]  # no temporary file left
