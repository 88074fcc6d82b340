"""Log lines cannot be forged (issue 13, after the outside test), through raw sockets on
both event loops: paths with ``%0a``, ``%0d``, ``%00``, a byte that is not UTF-8, or raw
non-ASCII bytes, sent to every HTTP path that logs (PUT stored, refused outside the root,
a reserved temporary name, a name too long, an upload abandoned, a body timeout, DELETE,
GET outside the root, a malformed request), give log records of one line each, without
control characters: what the client sent is escaped (``\\x0a``). The client is written
``host:port`` (a 400 used to show a Python tuple)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from medusa.core.testing import ServerThread, wait_until
from medusa.http import FileHandler, HTTPServer, PutHandler

BACKENDS = ["asyncio", "uvloop"]
FORGED = b"%0a2026-12-06%2000:00:00,000%20medusa%20WARNING%20FORGED1"


@dataclass
class Site:
    root: Path
    port: int

    def send(self, raw: bytes, *, close: bool = False) -> bytes:
        """Send ``raw``; return the answer's status line (or b"" when none came)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=15) as sock:
            sock.sendall(raw)
            if close:
                return b""
            data = b""
            while b"\r\n" not in data:
                try:
                    piece = sock.recv(4096)
                except ConnectionResetError:
                    break
                if not piece:
                    break
                data += piece
        return data.partition(b"\r\n")[0]

    def put(self, path: bytes, body: bytes = b"data") -> bytes:
        return self.send(
            b"PUT " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
            b"Connection: close\r\n\r\n" % len(body) + body
        )


@pytest.fixture(params=BACKENDS)
def site(
    request: pytest.FixtureRequest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> Iterator[Site]:
    server = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[PutHandler(tmp_path, prefix="/up", delete=True), FileHandler(tmp_path)],
        body_timeout=0.5,
    )
    with (
        caplog.at_level(logging.INFO, logger="medusa"),
        ServerThread([server], backend=request.param),
    ):
        yield Site(tmp_path, server.port)
    for record in caplog.get_records("call") + caplog.records:
        message = record.getMessage()
        assert message.isprintable(), repr(message)  # no CR, LF, NUL or other control
        assert "('127.0.0.1'" not in message, message
        assert record.exc_info is None, message


def messages(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    """The error log's (``medusa``) messages that contain ``text``."""
    return [r.getMessage() for r in caplog.records if r.name == "medusa" and text in r.getMessage()]


def test_put_stored_and_deleted(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    assert site.put(b"/up/a" + FORGED).startswith(b"HTTP/1.1 201 ")
    assert site.put(b"/up/b%0d%0ac").startswith(b"HTTP/1.1 201 ")
    assert site.put(b"/up/c%ffd").startswith(b"HTTP/1.1 201 ")  # not UTF-8
    assert (site.root / "a\n2026-12-06 00:00:00,000 medusa WARNING FORGED1").exists()
    assert site.send(b"DELETE /up/b%0d%0ac HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
        b"HTTP/1.1 204 "
    )
    wait_until(lambda: messages(caplog, "deleted by"), what="the DELETE line")
    (stored,) = messages(caplog, "/up/a")
    assert stored.startswith("/up/a\\x0a2026-12-06 00:00:00,000 medusa WARNING FORGED1 stored")
    assert messages(caplog, "/up/b\\x0d\\x0ac stored")
    assert messages(caplog, "/up/c\\xffd stored")
    assert messages(caplog, "/up/b\\x0d\\x0ac deleted by 127.0.0.1:")


def test_refused_puts(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    assert site.put(b"/up/a%00b").startswith(b"HTTP/1.1 403 ")  # NUL: outside the root
    assert site.put(b"/up/.x%0a.abcd1234.upload").startswith(b"HTTP/1.1 403 ")  # reserved
    assert site.put(b"/up/" + b"q" * 250 + b"%0a" + b"q" * 10).startswith(b"HTTP/1.1 414 ")
    assert messages(caplog, "PUT /up/a\\x00b from 127.0.0.1:")
    assert messages(caplog, "PUT /up/.x\\x0a.abcd1234.upload from 127.0.0.1:")
    assert messages(caplog, "\\x0aqqqqqqqqqq from 127.0.0.1:")
    assert list(site.root.iterdir()) == []


def test_abandoned_upload_and_body_timeout(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    site.send(
        b"PUT /up/cut" + FORGED + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12",
        close=True,
    )
    wait_until(lambda: messages(caplog, "abandoned after 2 bytes"), what="the abandon line")
    # A body that stops: 408 after body_timeout (the example).
    status = site.send(
        b"POST /x" + FORGED + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12"
    )
    assert status.startswith(b"HTTP/1.1 408 "), status
    wait_until(lambda: messages(caplog, "408 request body timeout"), what="the 408 line")
    (line,) = messages(caplog, "408 request body timeout")
    assert "POST /x\\x0a2026-12-06 00:00:00,000 medusa WARNING FORGED1: 2 bytes" in line
    assert messages(caplog, "upload of /up/cut\\x0a2026-12-06")
    assert list(site.root.iterdir()) == []


def test_gets_and_malformed_requests(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    assert site.send(b"GET /a%5cb%0a HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 404 ")
    assert site.send(b"GET /\xc3\xa9\x85%0a HTTP/1.1\r\nHost: x\r\n\r\n").startswith(
        b"HTTP/1.1 400 "
    )
    assert site.send(b"GET /\r\nHost: x\r\n\r\n\x00\r\n\r\n").startswith(b"HTTP/1.1 ")
    (refused,) = messages(caplog, "refused path outside the root")
    assert refused.startswith("127.0.0.1:"), refused
    (malformed,) = messages(caplog, "400 malformed request")
    assert malformed.startswith("127.0.0.1:"), malformed  # host:port, not a tuple
