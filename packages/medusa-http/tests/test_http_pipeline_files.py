"""Pipelined responses hold no open file while they wait (issue 13, item 2): clients that
pipeline many GETs of a large file and do not read make the server hold at most one
descriptor of that file per connection (the one being sent), and every response is still
right, in order, once they read: GET, HEAD, a range, 304, 404, small files in between. A file
replaced before its turn is not sent under the old length: the connection is cut and the
reason logged. Real sockets, both event loops."""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from medusa.core.testing import ServerThread, wait_until
from medusa.http import HTTPServer

BACKENDS = ["asyncio", "uvloop"]

BIG = 300_000
"""Bytes of big.bin: above the 64 KiB small-file limit (sent by a file producer), and
64 of its responses are far more than the sockets' buffers hold."""

PIPELINE = 64
"""Requests each client sends at once (the server's default ``max_pipeline``)."""


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Reader:
    """Reads pipelined responses framed by ``Content-Length`` off one socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> None:
        data = self.sock.recv(262144)
        if not data:
            raise EOFError("the server closed the connection")
        self.buffer += data

    def _line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 2]
        return line

    def read(self, *, head: bool = False) -> Response:
        response = Response(int(self._line().split()[1]))
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            response.headers[name.strip().lower()] = value.strip()
        if head or response.status == 304:
            return response
        length = int(response.headers["content-length"])
        while len(self.buffer) < length:
            self._fill()
        response.body = bytes(self.buffer[:length])
        del self.buffer[:length]
        return response


def open_descriptors(path: Path) -> int:
    """How many descriptors of this process (the server runs in it) are open on ``path``."""
    real = os.path.realpath(path)
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == real:
                count += 1
        except OSError:
            continue
    return count


@dataclass
class Site:
    root: Path
    server: HTTPServer
    big: bytes

    def connect(self) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no growth: stays full
        sock.settimeout(15)
        sock.connect(("127.0.0.1", self.server.port))
        return sock


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to count descriptors")
    big = os.urandom(BIG)
    (tmp_path / "big.bin").write_bytes(big)
    (tmp_path / "small.txt").write_bytes(b"small file\n")
    server = HTTPServer(("127.0.0.1", 0), root=tmp_path, access_log=None)
    with ServerThread([server], backend=request.param):
        yield Site(tmp_path, server, big)


def test_pipelined_big_files_hold_one_descriptor_per_connection(site: Site) -> None:
    clients = 8
    batch = b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n" * PIPELINE
    socks = [site.connect() for _ in range(clients)]
    try:
        for sock in socks:
            sock.sendall(batch)
        # Every request was read and answered (responses waiting behind the first one).
        wait_until(
            lambda: site.server.counters.requests >= clients * PIPELINE,
            timeout=15,
            what="every pipelined request to be dispatched",
        )
        held = open_descriptors(site.root / "big.bin")
        assert held <= clients, f"{held} descriptors of big.bin for {clients} connections"
        digest = hashlib.sha256(site.big).digest()
        for sock in socks:
            reader = Reader(sock)
            for _ in range(PIPELINE):
                response = reader.read()
                assert response.status == 200
                assert hashlib.sha256(response.body).digest() == digest
    finally:
        for sock in socks:
            sock.close()
    wait_until(lambda: open_descriptors(site.root / "big.bin") == 0, what="files closed")


def test_pipelined_mix_keeps_order_and_semantics(site: Site) -> None:
    with site.connect() as sock:
        sock.sendall(b"HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        etag = Reader(sock).read(head=True).headers["etag"]
        requests = [
            ("GET", "/big.bin", ""),
            ("HEAD", "/big.bin", ""),
            ("GET", "/big.bin", "Range: bytes=1000-1999\r\n"),
            ("GET", "/big.bin", f"If-None-Match: {etag}\r\n"),
            ("GET", "/small.txt", ""),
            ("GET", "/missing", ""),
            ("GET", "/big.bin", "Range: bytes=-10\r\n"),
            ("GET", "/big.bin", ""),
        ]
        sock.sendall(
            b"".join(
                f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()
                for method, path, extra in requests
            )
        )
        wait_until(
            lambda: site.server.counters.requests >= 1 + len(requests),
            what="the pipelined requests to be dispatched",
        )
        assert open_descriptors(site.root / "big.bin") <= 1
        reader = Reader(sock)
        got = [reader.read(head=method == "HEAD") for method, _, _ in requests]
    big = site.big
    assert (got[0].status, got[0].body) == (200, big)
    assert (got[1].status, got[1].headers["content-length"], got[1].body) == (200, str(BIG), b"")
    assert (got[2].status, got[2].body) == (206, big[1000:2000])
    assert got[2].headers["content-range"] == f"bytes 1000-1999/{BIG}"
    assert (got[3].status, got[3].body) == (304, b"")
    assert (got[4].status, got[4].body) == (200, b"small file\n")
    assert got[5].status == 404
    assert (got[6].status, got[6].body) == (206, big[-10:])
    assert (got[7].status, got[7].body) == (200, big)


def test_file_replaced_before_its_turn_cuts_the_connection(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="medusa")
    with site.connect() as sock:
        sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n" * PIPELINE)
        wait_until(lambda: site.server.counters.requests >= PIPELINE, what="requests dispatched")
        replacement = site.root / "new.bin"
        replacement.write_bytes(b"n" * BIG)
        os.replace(replacement, site.root / "big.bin")
        reader = Reader(sock)
        bodies: list[bytes] = []
        try:
            for _ in range(PIPELINE):
                bodies.append(reader.read().body)
        except (EOFError, ConnectionResetError):
            pass
        # Files opened before the change are sent whole, then the connection is cut:
        # never the new bytes under the old length.
        assert 0 < len(bodies) < PIPELINE
        assert all(body == site.big for body in bodies)
    wait_until(
        lambda: "cannot send" in caplog.text and "changed" in caplog.text,
        what="the log line about the changed file",
    )
