"""HTTP versions and transfer codings (issue 13, after the outside test), through raw sockets
on both event loops:

* a version other than 1.0 and 1.1 that the parser lets through (``HTTP/2.0``, the
  version-less ``HTTP/0.9`` line) gets 505 (RFC 9110 §15.6.6), not an HTTP/1.1 answer;
* a request body whose ``Transfer-Encoding`` is not a lone ``chunked`` is refused before
  any of it is read or stored: 501 when another coding comes before ``chunked`` (RFC 9112
  §6.1, §7), 400 when ``chunked`` is not the last one (RFC 9112 §6.3).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from medusa.core.testing import ServerThread
from medusa.http import FileHandler, HTTPServer, PutHandler

BACKENDS = ["asyncio", "uvloop"]
CHUNKED_BODY = b"5\r\nhello\r\n0\r\n\r\n"


@dataclass
class Site:
    root: Path
    port: int

    def exchange(self, raw: bytes) -> bytes:
        """Send ``raw``, then read until the server closes (or 15 s pass)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=15) as sock:
            sock.sendall(raw)
            data = b""
            while True:
                try:
                    piece = sock.recv(65536)
                except (ConnectionResetError, TimeoutError):
                    break
                if not piece:
                    break
                data += piece
        return data


@pytest.fixture(params=BACKENDS)
def site(
    request: pytest.FixtureRequest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> Iterator[Site]:
    root = tmp_path / "root"
    root.mkdir()
    (root / "index.html").write_bytes(b"hello")
    server = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[PutHandler(root, prefix="/up"), FileHandler(root)],
        access_log=False,
    )
    with (
        caplog.at_level(logging.INFO, logger="medusa"),
        ServerThread([server], backend=request.param),
    ):
        yield Site(root, server.port)
    records = caplog.get_records("call") + caplog.records
    bad = [r for r in records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


@pytest.mark.parametrize(
    "request_line", [b"GET / HTTP/2.0", b"GET /index.html HTTP/2.0", b"GET /index.html"]
)
def test_other_versions_get_505(
    site: Site, caplog: pytest.LogCaptureFixture, request_line: bytes
) -> None:
    answer = site.exchange(request_line + b"\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 505 HTTP Version Not Supported\r\n"), answer[:100]
    assert b"Connection: close" in answer
    assert b"hello" not in answer
    lines = [r.getMessage() for r in caplog.records if " 505 " in r.getMessage()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("127.0.0.1:"), lines


def test_put_with_another_version_stores_nothing(site: Site) -> None:
    answer = site.exchange(b"PUT /up/a.txt HTTP/2.0\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
    assert answer.startswith(b"HTTP/1.1 505 "), answer[:100]
    assert sorted(p.name for p in site.root.iterdir()) == ["index.html"]


@pytest.mark.parametrize("version", [b"1.0", b"1.1"])
def test_supported_versions(site: Site, version: bytes) -> None:
    answer = site.exchange(b"GET / HTTP/" + version + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]
    assert answer.endswith(b"hello")


@pytest.mark.parametrize(
    ("coding", "status"),
    [
        (b"gzip, chunked", b"501"),
        (b"deflate,chunked", b"501"),
        (b"x-custom, chunked", b"501"),
        (b"gzip", b"400"),
    ],
)
@pytest.mark.parametrize("path", [b"/up/a.txt", b"/index.html"])
def test_codings_other_than_chunked_are_refused(
    site: Site, caplog: pytest.LogCaptureFixture, coding: bytes, status: bytes, path: bytes
) -> None:
    method = b"PUT" if path.startswith(b"/up/") else b"POST"
    answer = site.exchange(
        method
        + b" "
        + path
        + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
        + coding
        + b"\r\n\r\n"
        + CHUNKED_BODY
    )
    assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer[:100]
    assert b"Connection: close" in answer
    assert sorted(p.name for p in site.root.iterdir()) == ["index.html"]  # nothing stored
    if status == b"501":
        lines = [r.getMessage() for r in caplog.records if " 501 " in r.getMessage()]
        assert lines == [
            f"{lines[0].split(' ')[0]} 501 unsupported transfer coding: {coding.decode()}"
        ], lines


@pytest.mark.parametrize("coding", [b"chunked", b"Chunked", b"chunked "])
def test_lone_chunked_is_stored(site: Site, coding: bytes) -> None:
    answer = site.exchange(
        b"PUT /up/a.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: "
        + coding
        + b"\r\n\r\n"
        + CHUNKED_BODY
    )
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:100]
    assert (site.root / "a.txt").read_bytes() == b"hello"


def test_http10_chunked_body_is_handled_then_the_connection_closed(site: Site) -> None:
    """Transfer-Encoding in an HTTP/1.0 request: the framing is treated as faulty, so the
    request is answered and the connection closed, whatever ``Connection`` says (RFC 9112
    §6.1); the pipelined request after it is not read."""
    answer = site.exchange(
        b"PUT /up/b.txt HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
        + CHUNKED_BODY
        + b"GET /index.html HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:100]
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    assert b"Connection: close" in answer
    assert (site.root / "b.txt").read_bytes() == b"hello"


def test_get_of_a_name_too_long_is_404_without_a_warning(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """No file can have a name over 255 bytes: 404, and nothing a client can use to fill
    the log with warnings."""
    answer = site.exchange(
        b"GET /" + b"q" * 300 + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 404 "), answer[:100]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
