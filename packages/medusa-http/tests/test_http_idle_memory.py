"""What an idle keep-alive connection holds after its last response: not that request.

An idle connection's memory is a target (2.0 KB each at 10,000 connections, README
"Performance"). Each answered request (its fields, its headers, its response state: about
0.9 KB) must be released when its response is complete, whatever still refers to the
connection. The connection's event list once kept the last request of every idle
connection, measured as 2.73 KB per connection by ``bench/run.py --scenarios idle``.
"""

from __future__ import annotations

import gc
import socket

import pytest

from medusa.core.testing import ServerThread, loop_backends
from medusa.http import HTTPServer
from medusa.http.request import Request

TIMEOUT = 10.0
CONNECTIONS = 20
HELLO = b"Hello, World!"


class Hello:
    """Answers every request with 13 bytes."""

    def match(self, request: Request) -> bool:
        return True

    def handle_request(self, request: Request) -> None:
        request.respond(200, HELLO, content_type="text/plain")


def _exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send ``request``; read the response head and its 13-byte body."""
    sock.sendall(request)
    data = b""
    while not (b"\r\n\r\n" in data and data.endswith(HELLO)):
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data


def _live_requests() -> int:
    """The :class:`Request` objects alive in this process (after a full collection)."""
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj) is Request)


@pytest.mark.parametrize("backend", loop_backends())
@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /hello HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"POST /form HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n\r\nhello",
    ],
    ids=["get", "post-with-body"],
)
def test_idle_connections_hold_no_request(backend: str, request_bytes: bytes) -> None:
    server = HTTPServer(("127.0.0.1", 0), handlers=[Hello()], access_log=None)
    socks: list[socket.socket] = []
    try:
        with ServerThread([server], backend=backend) as thread:
            for _ in range(CONNECTIONS):
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT)
                socks.append(sock)
                response = _exchange(sock, request_bytes)
                assert response.startswith(b"HTTP/1.1 200 "), response
            # Every connection is open and idle, its response complete.
            assert thread.call(lambda: len(server.channels)) == CONNECTIONS
            assert thread.call(_live_requests) == 0
    finally:
        for sock in socks:
            sock.close()
