"""Temporary upload files and paths that climb above the root (issue 13, items 5 and 11),
through real sockets on both event loops: the temporary files of uploads in progress, HTTP's
``.NAME.XXXXXXXX.upload`` and FTP's ``.NAME.XXXXXXXX.part``, are never served, listed,
written or deleted; stale ones (nobody holds their lock) are removed when a PUT handler is
made, live ones kept; a PUT or DELETE whose dot segments climb above the root is refused
with 403 and stores nothing."""

from __future__ import annotations

import fcntl
import http.client
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from medusa.core.testing import ServerThread, wait_until
from medusa.core.uploads import is_upload_temporary
from medusa.http import DirectoryListingHandler, FileHandler, HTTPServer, PutHandler

BACKENDS = ["asyncio", "uvloop"]

TEMPORARY = [
    ".page.html.abcd1234.upload",  # HTTP (tempfile.mkstemp's alphabet)
    ".page.html.ab_d12z9.upload",
    ".page.html.0123abcd.part",  # FTP (hexadecimal)
]
NOT_TEMPORARY = [".hidden", "page.html.abcd1234.upload", ".page.html.abc.upload", "x.part"]


@dataclass
class Site:
    root: Path
    port: int

    def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def raw(self, request: bytes) -> bytes:
        """Send ``request`` exactly as written (no client normalises its path); return the
        status line."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(request)
            data = b""
            while b"\r\n" not in data:
                piece = sock.recv(4096)
                if not piece:
                    break
                data += piece
        return data.partition(b"\r\n")[0]

    def files(self) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*"))


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    root = tmp_path / "site"
    (root / "incoming").mkdir(parents=True)
    (root / "page.html").write_bytes(b"the page")
    server = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[
            PutHandler(root / "incoming", prefix="/incoming", delete=True),
            PutHandler(root, prefix="/", delete=True),
            DirectoryListingHandler(root),
            FileHandler(root),
        ],
        access_log=None,
    )
    # Made after the PUT handlers, which would remove them (nobody holds them locked).
    for name in TEMPORARY + NOT_TEMPORARY:
        (root / name).write_bytes(b"half an upload")
    with ServerThread([server], backend=request.param):
        yield Site(root, server.port)


def test_names() -> None:
    assert all(is_upload_temporary(name) for name in TEMPORARY)
    assert all(is_upload_temporary("/dir/" + name) for name in TEMPORARY)
    assert not any(is_upload_temporary(name) for name in NOT_TEMPORARY)


def test_temporary_files_are_neither_served_nor_listed(site: Site) -> None:
    for name in TEMPORARY:
        assert site.request("GET", "/" + name)[0] == 404, name
        assert site.request("HEAD", "/" + name)[0] == 404, name
    for name in NOT_TEMPORARY:
        assert site.request("GET", "/" + name) == (200, b"half an upload"), name
    status, listing = site.request("GET", "/")
    assert status == 200
    for name in TEMPORARY:
        assert name.encode() not in listing
    for name in NOT_TEMPORARY:
        assert name.encode() in listing


def test_temporary_names_cannot_be_written_or_deleted(site: Site) -> None:
    for name in TEMPORARY:
        assert site.request("PUT", "/" + name, b"new")[0] == 403
        assert site.request("DELETE", "/" + name)[0] == 403
        assert (site.root / name).read_bytes() == b"half an upload"


def test_dot_segments_above_the_root_are_refused(site: Site) -> None:
    before = site.files()
    for target in [
        "/incoming/../../escape.txt",
        "/incoming/%2e%2e/%2e%2e/escape.txt",
        "/incoming/a/../../../escape.txt",
        "/../escape.txt",
        "/./../incoming/escape.txt",
    ]:
        request = f"PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nevil".encode()
        assert site.raw(request).split()[1] == b"403", target
        delete = f"DELETE {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        assert site.raw(delete).split()[1] == b"403", target
    assert site.files() == before  # nothing stored, nothing removed
    # Dot segments that stay inside are resolved as usual (RFC 3986 §5.2.4).
    inside = b"PUT /incoming/a/../kept.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok"
    assert site.raw(inside).split()[1] == b"201"
    assert (site.root / "incoming" / "kept.txt").read_bytes() == b"ok"


def test_stale_uploads_removed_when_the_handler_is_made(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="medusa")
    (tmp_path / "docs").mkdir()
    stale = [tmp_path / ".a.txt.abcd1234.upload", tmp_path / "docs" / ".b.bin.zz_9zz9z.upload"]
    for path in stale:
        path.write_bytes(b"x" * 10)
    live = tmp_path / ".c.txt.livelive.upload"
    live.write_bytes(b"being written")
    ftp = tmp_path / ".d.txt.0123abcd.part"  # FTP's: for the FTP server to judge
    ftp.write_bytes(b"ftp")
    (tmp_path / ".e.txt.dddddddd.upload").mkdir()  # not a regular file
    (tmp_path / ".f.txt.ffffffff.upload").symlink_to(tmp_path / "docs")
    fd = os.open(live, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a running upload holds it
        PutHandler(tmp_path)
        assert live.exists()
    finally:
        os.close(fd)
    assert not any(path.exists() for path in stale)
    assert ftp.exists()
    assert (tmp_path / ".e.txt.dddddddd.upload").is_dir()
    assert (tmp_path / ".f.txt.ffffffff.upload").is_symlink()
    lines = [r.getMessage() for r in caplog.records if "temporary upload file" in r.getMessage()]
    assert len(lines) == 2
    assert any(str(stale[1]) in line and "10 bytes" in line for line in lines)


def test_a_running_upload_keeps_its_temporary_file(tmp_path: Path) -> None:
    """A second PUT handler made on the same root while an upload runs (another process
    starting, or a handler installed live) leaves that upload alone."""
    server = HTTPServer(("127.0.0.1", 0), handlers=[PutHandler(tmp_path)], access_log=None)
    with ServerThread([server]), socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"PUT /big.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
        temporary = _wait_for_temporary(tmp_path)
        PutHandler(tmp_path)
        assert temporary.exists()
        sock.sendall(b"67890")
        assert sock.recv(4096).startswith(b"HTTP/1.1 201 ")
    assert (tmp_path / "big.bin").read_bytes() == b"1234567890"


def _wait_for_temporary(root: Path) -> Path:
    wait_until(lambda: list(root.glob(".*.upload")), what="the temporary file")
    return next(root.glob(".*.upload"))
