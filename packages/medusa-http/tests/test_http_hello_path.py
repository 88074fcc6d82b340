"""The hello path's work per request (issue 15, part 4), counted rather than timed: the
Python function calls medusa's own code makes to answer a keep-alive GET of a small cached
file. Instructions per request are measured by ``bench/hello_instructions.py``; this test
keeps the call count from creeping back (it was 30 before the hello path was trimmed; the
sans-IO connection of issue 16 and core's ``handle_data`` seam added three calls, paid for
by a cheaper ``on_header``: instructions per request stayed within 2%; the HTTP channel
then took its reads itself, without core's ``handle_data`` seam). The request path's
modules are compiled (mypyc, ``test_http_compiled.py``): their functions make no Python
call the profiler sees, so what is counted is the interpreted rest."""

from __future__ import annotations

import socket
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from medusa.core.testing import ServerThread
from medusa.http import HTTPServer

BACKENDS = ["asyncio", "uvloop"]
REQUESTS = 50
MAX_CALLS_PER_REQUEST = 8.5
"""8 interpreted calls (of 19 before the request path was compiled; one request per turn of
the event loop here, so the file cache's change check and its end-of-turn reset are among
them), and what is done once a second (the Date field) spread over the requests."""
TIMEOUT = 10.0
REQUEST = b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n"


def _read_response(sock: socket.socket, buffer: bytearray) -> bytes:
    """One response with a Content-Length from ``sock`` (what follows stays in ``buffer``)."""
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        assert data, "the connection closed"
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(rest) < length:
        data = sock.recv(65536)
        assert data, "the connection closed"
        rest += data
    buffer[:] = rest[length:]
    return head + b"\r\n\r\n" + rest[:length]


@pytest.mark.parametrize("backend", BACKENDS)
def test_small_file_request_calls(tmp_path: Path, backend: str) -> None:
    (tmp_path / "hello.txt").write_bytes(b"Hello, World!")
    server = HTTPServer(("127.0.0.1", 0), root=tmp_path, access_log=None)
    calls = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal calls
        if event == "call" and "/medusa/" in frame.f_code.co_filename:
            calls += 1

    with (
        ServerThread([server], backend=backend) as thread,
        socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock,
    ):
        buffer = bytearray()
        for _ in range(3):  # the file is read and cached, the head prefix made
            sock.sendall(REQUEST)
            assert _read_response(sock, buffer).endswith(b"\r\n\r\nHello, World!")
        thread.call(lambda: sys.setprofile(profile))
        try:
            for _ in range(REQUESTS):
                sock.sendall(REQUEST)
                answer = _read_response(sock, buffer)
                assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
                assert answer.endswith(b"\r\n\r\nHello, World!"), answer
        finally:
            thread.call(lambda: sys.setprofile(None))
    assert calls / REQUESTS <= MAX_CALLS_PER_REQUEST, calls / REQUESTS
