"""Defects found by tests/test_fuzz_http.py, each pinned by the bytes that showed it, on
both event loops.

* A request that is the connection's last (HTTP/1.0, or ``Connection: close``) answered
  before its body was read (401 from authentication, 405) ends the output with a lingering
  close; bytes of a next request in the same read made llhttp fail ("Data after
  Connection: close"), and the 400 written after the end of the output raised
  ``RuntimeError: Cannot call write() after write_eof()`` with a traceback.
* Pipelined DELETE, PUT and POST with bodies, then the client's end of input: every request
  was answered, but the connection stayed open until the keep-alive timeout, because a body
  request dispatched after the end of input got its keep-alive back.
"""

from __future__ import annotations

import logging
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from medusa.core.passwords import set_password
from medusa.core.testing import ServerThread
from medusa.http import FileHandler, HTTPServer
from medusa.http.auth import BasicAuthHandler
from medusa.http.put import PutHandler


@pytest.fixture(params=["asyncio", "uvloop"])
def port(
    request: pytest.FixtureRequest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> Iterator[int]:
    (tmp_path / "small.txt").write_bytes(b"small")
    uploads = tmp_path / "up"
    uploads.mkdir()
    set_password(tmp_path / "passwords", "alice", "wonder land")
    server = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[
            BasicAuthHandler(
                PutHandler(uploads, prefix="/up", delete=True), str(tmp_path / "passwords")
            ),
            FileHandler(tmp_path),
        ],
        access_log=False,
        keepalive_timeout=60,  # longer than the client waits
    )
    with caplog.at_level(logging.INFO), ServerThread([server], backend=request.param):
        yield server.port
    records = caplog.get_records("call") + caplog.records  # the test's, then this teardown's
    bad = [r for r in records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` in one write, half-close, and return what the server sent until it
    closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        received = []
        while chunk := sock.recv(65536):
            received.append(chunk)
    return b"".join(received)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (
            b"PUT /up/c.txt HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /small.txt HTTP/1.0\r\n\r\n",
            b"401",
        ),
        (
            b"PUT /up/c.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 3\r\n\r\n"
            b"abcGET /small.txt HTTP/1.1\r\nHost: a\r\n\r\n",
            b"401",
        ),
        (
            b"POST /small.txt HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /small.txt HTTP/1.0\r\n\r\n",
            b"405",
        ),
    ],
)
def test_bytes_after_the_last_request_are_discarded(port: int, data: bytes, status: bytes) -> None:
    answer = exchange(port, data)
    assert answer.startswith(b"HTTP/1.1 " + status + b" ")
    assert answer.count(b"HTTP/1.1 ") == 1  # the next request is not answered


AUTH = b"Authorization: Basic YWxpY2U6d29uZGVyIGxhbmQ=\r\n"  # alice:wonder land


def test_connection_closes_after_pipelined_bodies_and_end_of_input(port: int) -> None:
    data = (
        b"DELETE /up/a.txt HTTP/1.1\r\nHost: a\r\n" + AUTH + b"\r\n"
        b"PUT /up/a.txt HTTP/1.1\r\nHost: a\r\n" + AUTH + b"Content-Length: 5\r\n\r\nhello"
        b"POST /small.txt HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody"
    )
    answer = exchange(port, data)  # read until the server closes (15 s at most)
    assert re.findall(rb"HTTP/1\.1 (\d{3}) ", answer)[1:] == [b"201", b"405"]
