"""WSGI responses leaving the server (medusa.http.wsgicall): a slow client holds back its
own thread instead of growing the server's memory, and ``wsgi.file_wrapper`` over a real
file is sent with ``sendfile`` (checked with strace on a server process), while other
file-like objects are read in blocks."""

from __future__ import annotations

import collections
import hashlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medusa.core.testing import ServerThread, loop_backends, require_tool, wait_until
from medusa.http import HTTPServer
from medusa.http.wsgi import WSGIHandler

DEADLINE = 20.0
PIECE = 65536
PIECES = 1024  # 64 MiB in all
BOUND = 16 << 20
"""Most bytes the application may have produced ahead of a client that reads nothing:
the output window, the transport's buffer and the kernel's socket buffers (a few MiB on
loopback), far below the 64 MiB response."""


@pytest.fixture(params=loop_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_slow_client_holds_back_its_thread(backend: str) -> None:
    produced = 0
    closed = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "application/octet-stream")])

        def pieces() -> Iterator[bytes]:
            nonlocal produced
            try:
                for _ in range(PIECES):
                    produced += PIECE
                    yield b"z" * PIECE
            finally:
                closed.set()

        return pieces()

    handler = WSGIHandler(app)
    server = HTTPServer(("127.0.0.1", 0), handlers=[handler], access_log=None)
    with ServerThread([server], backend=backend):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.settimeout(DEADLINE)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
        wait_until(lambda: produced > 0, what="the response to start")
        # The client reads nothing: the application's thread must stop well short.
        with pytest.raises(TimeoutError):
            wait_until(lambda: produced > BOUND, timeout=1.0)
        assert handler.pool.busy == 1
        response = http.client.HTTPResponse(sock)
        response.begin()
        received = 0
        while data := response.read(1 << 20):
            received += len(data)
        sock.close()
        assert received == PIECE * PIECES
        wait_until(closed.is_set, what="the iterable's end")


SERVER = textwrap.dedent(
    """
    import io, os, sys
    from medusa.core import run
    from medusa.http import HTTPServer
    from medusa.http.wsgi import WSGIHandler

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        if environ["PATH_INFO"] == "/bytes":
            return environ["wsgi.file_wrapper"](io.BytesIO(b"in memory " * 1000), 4096)
        f = open(sys.argv[1], "rb")
        f.seek(int(environ["QUERY_STRING"] or 0))
        return environ["wsgi.file_wrapper"](f)

    server = HTTPServer(("127.0.0.1", 0), handlers=[WSGIHandler(app)], access_log=None)
    print("pid", os.getpid(), flush=True)
    run([server], backend=sys.argv[2])
    """
)


def test_file_wrapper_uses_sendfile(backend: str, tmp_path: Path) -> None:
    strace = require_tool("strace", "apt-get install strace")
    content = os.urandom(3 << 20)
    path = tmp_path / "big.bin"
    path.write_bytes(content)
    trace = tmp_path / "trace.txt"
    # The server runs under strace from its start: every thread's sendfile is recorded.
    process = subprocess.Popen(
        [strace, "-f", "--seccomp-bpf", "-e", "trace=sendfile", "-o", str(trace),
         sys.executable, "-c", SERVER, str(path), backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    server_pid = 0
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # "pid N" (the process under strace)
        if not first.startswith("pid ") and "ptrace" in first + process.stdout.read(2000):
            pytest.skip("strace may not trace a process here (ptrace)")
        server_pid = int(first.split()[1])
        line = process.stdout.readline()  # then where it listens
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", line)
        assert found is not None, line
        connection = http.client.HTTPConnection("127.0.0.1", int(found.group(1)), timeout=20)
        connection.request("GET", "/file")
        response = connection.getresponse()
        body = response.read()
        assert response.getheader("Content-Length") == str(len(content))
        assert hashlib.sha256(body).digest() == hashlib.sha256(content).digest()
        # From the file's current position (the application seeked).
        connection.request("GET", "/file?1000")
        assert connection.getresponse().read() == content[1000:]
        # A file-like object without a descriptor is read in blocks, on the same connection.
        connection.request("GET", "/bytes")
        assert connection.getresponse().read() == b"in memory " * 1000
        connection.close()
    finally:
        if server_pid:
            os.kill(server_pid, signal.SIGTERM)  # strace ends with it
        else:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()  # type: ignore[union-attr]
    counts = collections.Counter(
        match.group(1)
        for line in trace.read_text().splitlines()
        if (match := re.match(r"\d+\s+(\w+)\(", line)) is not None
    )
    assert counts["sendfile"] >= 2, counts


def test_file_wrapper_closes_file(backend: str, tmp_path: Path) -> None:
    """The wrapped file is closed once sent, and on HEAD."""
    path = tmp_path / "f.txt"
    path.write_bytes(b"file body")
    opened: list[Any] = []

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        start_response("200 OK", [("Content-Type", "text/plain")])
        file = open(path, "rb")  # noqa: SIM115 (closed by the wrapper)
        opened.append(file)
        return environ["wsgi.file_wrapper"](file)

    server = HTTPServer(("127.0.0.1", 0), handlers=[WSGIHandler(app)], access_log=None)
    with ServerThread([server], backend=backend):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=DEADLINE)
        connection.request("GET", "/")
        assert connection.getresponse().read() == b"file body"
        connection.request("HEAD", "/")
        response = connection.getresponse()
        assert response.getheader("Content-Length") == "9"
        assert response.read() == b""
        connection.close()
        wait_until(lambda: all(f.closed for f in opened), what="the files closed")
    assert len(opened) == 2
