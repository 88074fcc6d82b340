"""PUT and DELETE (RFC 9110 §9.3.4, §9.3.5) through real sockets on both event loops:
201/204, chunked bodies, 411/413/409/405/400/403/412, ``100 Continue`` only once the body is
accepted, atomic replacement (a cut connection or an oversized body leaves the previous
version and no temporary file), DELETE, file modes, and the publishing handler (public reads,
authenticated writes, 401 before the body)."""

from __future__ import annotations

import base64
import http.client
import logging
import os
import socket
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from medusa.core.passwords import set_password
from medusa.core.testing import ServerThread, wait_until
from medusa.http import FileHandler, HTTPServer, PublishingHandler, PutHandler

BACKENDS = ["asyncio", "uvloop"]
MAX = 64 * 1024


@dataclass
class Site:
    root: Path
    port: int

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def leftovers(self) -> list[str]:
        """Temporary upload files anywhere under the root."""
        return [str(p) for p in self.root.rglob("*.upload")]


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """Read ``count`` pipelined responses framed by Content-Length: (status, body) each."""
    stream = sock.makefile("rb")
    responses = []
    for _ in range(count):
        status = int(stream.readline().split()[1])
        length = 0
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        responses.append((status, stream.read(length)))
    return responses


def read_head(sock: socket.socket) -> bytes:
    """Read one response head (up to the blank line), byte by byte so nothing after it is
    consumed."""
    data = b""
    while not data.endswith(b"\r\n\r\n"):
        byte = sock.recv(1)
        if not byte:
            break
        data += byte
    return data


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    root = tmp_path / "site"
    (root / "docs").mkdir(parents=True)
    (root / "old.txt").write_bytes(b"previous version")
    os.chmod(root / "old.txt", 0o600)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "escape").symlink_to(outside)
    srv = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[PutHandler(root, max_size=MAX, delete=True), FileHandler(root)],
        access_log=None,
    )
    with ServerThread([srv], backend=request.param):
        yield Site(root, srv.port)


def test_put_creates_then_replaces(site: Site) -> None:
    status, headers, _ = site.request("PUT", "/new.txt", b"first")
    assert status == 201
    assert headers["Location"] == "/new.txt"
    assert (site.root / "new.txt").read_bytes() == b"first"
    assert stat.S_IMODE((site.root / "new.txt").stat().st_mode) == 0o644
    status, _, body = site.request("PUT", "/new.txt", b"second version")
    assert (status, body) == (204, b"")
    assert site.request("GET", "/new.txt")[2] == b"second version"
    # A replaced file keeps its permission bits.
    assert site.request("PUT", "/old.txt", b"x")[0] == 204
    assert stat.S_IMODE((site.root / "old.txt").stat().st_mode) == 0o600
    assert site.leftovers() == []


def test_put_names_with_spaces_and_unicode(site: Site) -> None:
    status, headers, _ = site.request("PUT", "/docs/caf%C3%A9%20menu.txt", b"menu")
    assert status == 201
    assert headers["Location"] == "/docs/caf%C3%A9%20menu.txt"
    assert (site.root / "docs" / "café menu.txt").read_bytes() == b"menu"


def test_put_chunked_body(site: Site) -> None:
    pieces = [b"a" * 1000, b"b" * 5000, b"c"]
    conn = http.client.HTTPConnection("127.0.0.1", site.port, timeout=10)
    try:
        conn.request("PUT", "/chunked.bin", body=iter(pieces), encode_chunked=True)
        assert conn.getresponse().status == 201
    finally:
        conn.close()
    assert (site.root / "chunked.bin").read_bytes() == b"".join(pieces)


def test_put_empty_body_and_missing_length(site: Site) -> None:
    assert site.request("PUT", "/empty", b"")[0] == 201
    assert (site.root / "empty").read_bytes() == b""
    with connect(site.port) as sock:
        sock.sendall(b"PUT /nolength HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_head(sock).startswith(b"HTTP/1.1 411 ")
    assert not (site.root / "nolength").exists()


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/missing/dir/file.txt", 409),  # parent directory missing
        ("/old.txt/below", 409),  # parent is a file
        ("/docs", 405),  # a directory
        ("/docs/", 405),  # a directory by its slash
        ("/", 405),
        ("/escape/x.txt", 403),  # a symbolic link out of the root
    ],
)
def test_put_refusals(site: Site, path: str, status: int) -> None:
    got, headers, _ = site.request("PUT", path, b"data")
    assert got == status
    if status == 405:
        assert headers["Allow"] == "GET, HEAD"
    assert not (site.root.parent / "outside" / "x.txt").exists()
    assert site.leftovers() == []


def test_put_content_range_is_400(site: Site) -> None:
    status, _, _ = site.request("PUT", "/old.txt", b"xx", {"Content-Range": "bytes 0-1/16"})
    assert status == 400
    assert (site.root / "old.txt").read_bytes() == b"previous version"


def test_put_preconditions(site: Site) -> None:
    assert site.request("PUT", "/old.txt", b"x", {"If-None-Match": "*"})[0] == 412
    assert site.request("PUT", "/old.txt", b"x", {"If-Match": '"nope"'})[0] == 412
    assert site.request("PUT", "/absent", b"x", {"If-Match": "*"})[0] == 412
    assert (site.root / "old.txt").read_bytes() == b"previous version"
    assert site.request("PUT", "/created", b"x", {"If-None-Match": "*"})[0] == 201
    etag = site.request("HEAD", "/created")[1]["ETag"]
    assert site.request("PUT", "/created", b"yy", {"If-Match": etag})[0] == 204


def test_oversized_length_refused_before_continue(site: Site) -> None:
    with connect(site.port) as sock:
        sock.sendall(
            b"PUT /big HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: %d\r\n\r\n" % (MAX + 1)
        )
        head = read_head(sock)
        assert head.startswith(b"HTTP/1.1 413 "), head
        assert b"Connection: close" in head
    assert not (site.root / "big").exists()


def test_continue_sent_when_accepted(site: Site) -> None:
    with connect(site.port) as sock:
        sock.sendall(
            b"PUT /continued HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            b"Content-Length: 5\r\n\r\n"
        )
        assert read_head(sock) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        response = http.client.HTTPResponse(sock)
        response.begin()
        assert response.status == 201
        response.read()
        # The connection stays open for the next request.
        sock.sendall(b"GET /continued HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_head(sock).startswith(b"HTTP/1.1 200 ")
    assert (site.root / "continued").read_bytes() == b"hello"


def test_chunked_body_over_limit_keeps_previous_version(site: Site) -> None:
    chunk = b"%x\r\n%s\r\n" % (16384, b"z" * 16384)
    with connect(site.port) as sock:
        sock.sendall(b"PUT /old.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(5):  # 80 KiB > 64 KiB
            sock.sendall(chunk)
        assert read_head(sock).startswith(b"HTTP/1.1 413 ")
    assert (site.root / "old.txt").read_bytes() == b"previous version"
    wait_until(lambda: site.leftovers() == [], what="the temporary file removed")


def test_cut_connection_keeps_previous_version(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="medusa")
    with connect(site.port) as sock:
        sock.sendall(b"PUT /old.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 50000\r\n\r\n")
        sock.sendall(b"partial" * 1000)
        # The temporary file exists while the body arrives...
        wait_until(lambda: site.leftovers() != [], what="the temporary file")
    # ... and is gone once the connection is cut; the old version is intact.
    wait_until(lambda: site.leftovers() == [], what="the temporary file removed")
    assert (site.root / "old.txt").read_bytes() == b"previous version"
    wait_until(lambda: "abandoned after 7000 bytes" in caplog.text, what="the log line")
    assert "/old.txt" in caplog.text


def test_malformed_chunk_aborts_upload(site: Site) -> None:
    with connect(site.port) as sock:
        sock.sendall(
            b"PUT /bad HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5\r\nhello\r\nzz\r\n"
        )
        assert read_head(sock).startswith(b"HTTP/1.1 400 ")
    assert not (site.root / "bad").exists()
    wait_until(lambda: site.leftovers() == [], what="the temporary file removed")


def test_pipelined_put_then_get(site: Site) -> None:
    with connect(site.port) as sock:
        sock.sendall(
            b"PUT /piped HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\npipe"
            b"GET /piped HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        # The GET waited for the PUT before it (RFC 9110 §9.2.1): it sees the new file.
        assert read_responses(sock, 2) == [(201, b"Created.\n"), (200, b"pipe")]


def test_delete(site: Site) -> None:
    assert site.request("DELETE", "/old.txt")[0] == 204
    assert not (site.root / "old.txt").exists()
    assert site.request("DELETE", "/old.txt")[0] == 404
    assert site.request("DELETE", "/missing/old.txt")[0] == 404
    assert site.request("DELETE", "/docs")[0] == 405
    assert (site.root / "docs").is_dir()


def test_delete_off_by_default_and_reads_fall_through(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_bytes(b"keep")
    srv = HTTPServer(
        ("127.0.0.1", 0), handlers=[PutHandler(tmp_path), FileHandler(tmp_path)], access_log=None
    )
    with ServerThread([srv]):
        site = Site(tmp_path, srv.port)
        status, headers, _ = site.request("DELETE", "/keep.txt")
        assert status == 405  # the file handler's answer: DELETE is not taken
        assert "PUT" not in headers["Allow"]
        assert site.request("GET", "/keep.txt")[2] == b"keep"
    assert (tmp_path / "keep.txt").exists()


def test_large_upload_streams_to_disk(tmp_path: Path) -> None:
    data = os.urandom(4 << 20)
    srv = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[PutHandler(tmp_path, max_size=8 << 20)],
        access_log=None,
        max_body_size=1024,  # the server's buffered-body limit does not apply to PUT
    )
    with ServerThread([srv]):
        assert Site(tmp_path, srv.port).request("PUT", "/big.bin", data)[0] == 201
    assert (tmp_path / "big.bin").read_bytes() == data


# -- publishing: authentication round PUT and DELETE -------------------------------------


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture(params=BACKENDS)
def published(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_bytes(b"<h1>home</h1>")
    passwords = tmp_path / "authors"
    set_password(passwords, "author", "s3cret")
    srv = HTTPServer(
        ("127.0.0.1", 0), handlers=[PublishingHandler(root, passwords)], access_log=None
    )
    with ServerThread([srv], backend=request.param):
        yield Site(root, srv.port)


def test_publishing_reads_are_public(published: Site) -> None:
    assert published.request("GET", "/")[2] == b"<h1>home</h1>"
    assert published.request("POST", "/", b"x")[0] == 405


def test_publishing_write_needs_credentials(published: Site) -> None:
    status, headers, _ = published.request("PUT", "/page.html", b"page")
    assert status == 401
    assert headers["WWW-Authenticate"].startswith('Basic realm="Publishing"')
    assert published.request("PUT", "/page.html", b"page", _basic("author", "wrong"))[0] == 401
    assert published.request("DELETE", "/index.html")[0] == 401
    assert not (published.root / "page.html").exists()
    assert (published.root / "index.html").exists()


def test_publishing_401_before_continue(published: Site) -> None:
    for headers in (b"", b"Authorization: Basic %s\r\n" % base64.b64encode(b"author:bad")):
        with connect(published.port) as sock:
            sock.sendall(
                b"PUT /page.html HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                b"Content-Length: 4\r\n" + headers + b"\r\n"
            )
            assert read_head(sock).startswith(b"HTTP/1.1 401 ")
    assert not (published.root / "page.html").exists()


def test_publishing_put_and_delete(published: Site) -> None:
    auth = _basic("author", "s3cret")
    assert published.request("PUT", "/page.html", b"<p>new</p>", auth)[0] == 201
    assert published.request("GET", "/page.html")[2] == b"<p>new</p>"
    assert published.request("PUT", "/page.html", b"<p>v2</p>", auth)[0] == 204
    assert published.request("GET", "/page.html")[2] == b"<p>v2</p>"
    assert published.request("DELETE", "/page.html", headers=auth)[0] == 204
    assert published.request("GET", "/page.html")[0] == 404


def test_pipelined_puts_apply_in_order(site: Site) -> None:
    with connect(site.port) as sock:
        sock.sendall(
            b"PUT /twice HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
            b"PUT /twice HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecond"
            b"DELETE /old.txt HTTP/1.1\r\nHost: x\r\n\r\n"
            b"GET /old.txt HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        statuses = [status for status, _ in read_responses(sock, 4)]
    assert statuses == [201, 204, 204, 404]
    assert (site.root / "twice").read_bytes() == b"second"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 256 KiB tmpfs (needs root and mount permission, as in CI)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_full_disk_is_507_and_keeps_previous_version(small_disk: Path) -> None:
    (small_disk / "page.html").write_bytes(b"previous")
    srv = HTTPServer(
        ("127.0.0.1", 0), handlers=[PutHandler(small_disk, max_size=4 << 20)], access_log=None
    )
    with ServerThread([srv]):
        status, _, _ = Site(small_disk, srv.port).request("PUT", "/page.html", b"z" * (1 << 20))
    assert status == 507  # ENOSPC: Insufficient Storage
    assert (small_disk / "page.html").read_bytes() == b"previous"
    assert sorted(p.name for p in small_disk.iterdir()) == ["page.html"]
