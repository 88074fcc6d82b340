"""The least rate of a request body (``body_min_rate``, issue 13 item 4, after the outside
test), through real sockets on both event loops: a body that trickles (one byte every
0.3 s, with Content-Length or chunked) under a short ``body_timeout`` gets 408, its
temporary file removed and one log line with the client, the method, the path, the bytes
received and the rate; a body sent at a fine rate is stored, and so is one that the server
held back longer than ``body_timeout`` (a pipelined request waiting behind an unsafe one,
``Expect: 100-continue`` waiting behind a slow response); ``body_min_rate = 0`` times only
silence.

The tests wait on conditions with generous deadlines; the only sleeps pace the clients (the
trickle, the fine rate) or make the server's hold last longer than the timeout."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from medusa.core.options import ConfigError
from medusa.core.testing import ServerThread, wait_until
from medusa.http import HTTPServer, PutHandler, Request

BACKENDS = ["asyncio", "uvloop"]
TIMEOUT = 1.0  # body_timeout of the trickle tests, seconds
DEADLINE = 20.0  # how long a client waits for an answer, seconds


class Gate:
    """Answers ``/gate`` (any method) only once :attr:`release` is set: a slow response
    that holds the requests pipelined after it."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def match(self, request: Request) -> bool:
        return request.path == "/gate"

    async def handle_request(self, request: Request) -> None:
        self.entered.set()
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        request.respond(200, b"gate", content_type="text/plain")


@dataclass
class Site:
    root: Path
    server: HTTPServer
    gate: Gate = field(default_factory=Gate)

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.server.port), timeout=DEADLINE)

    def uploads(self) -> list[Path]:
        return list(self.root.rglob(".*.upload"))


def _site(tmp_path: Path, backend: str, **options: float) -> Iterator[Site]:
    gate = Gate()
    server = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[gate, PutHandler(tmp_path)],
        access_log=None,
        **options,  # type: ignore[arg-type]
    )
    try:
        with ServerThread([server], backend=backend):
            yield Site(tmp_path, server, gate)
    finally:
        gate.release.set()


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """body_timeout 1 s, body_min_rate at its default (500 bytes/s)."""
    yield from _site(tmp_path, request.param, body_timeout=TIMEOUT)


@pytest.fixture(params=BACKENDS)
def silence_only(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    yield from _site(tmp_path, request.param, body_timeout=TIMEOUT, body_min_rate=0)


class Trickle(threading.Thread):
    """Sends ``data`` one byte every ``pause`` seconds until done, stopped or cut."""

    def __init__(self, sock: socket.socket, data: bytes, pause: float = 0.3) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.data = data
        self.pause = pause
        self.stop = threading.Event()

    def run(self) -> None:
        for i in range(len(self.data)):
            if self.stop.wait(self.pause):
                return
            try:
                self.sock.sendall(self.data[i : i + 1])
            except OSError:
                return  # the server closed the connection


def read_response(sock: socket.socket) -> bytes:
    """Read until the end of a response head (then a little more), or the close."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            break
        if not piece:
            break
        data += piece
    return data


def paced(sock: socket.socket, data: bytes, piece: int = 200, pause: float = 0.1) -> None:
    """Send ``data`` in ``piece``-byte pieces ``pause`` s apart (2,000 bytes/s by default,
    four times the default least rate)."""
    for start in range(0, len(data), piece):
        sock.sendall(data[start : start + piece])
        time.sleep(pause)  # pacing the client, not waiting for the server


def timeout_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "408 request body timeout" in r.getMessage()]


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_trickling_body_gets_408_and_its_file_removed(
    site: Site, caplog: pytest.LogCaptureFixture, chunked: bool
) -> None:
    caplog.set_level(logging.INFO, logger="medusa")
    if chunked:
        head = b"PUT /trickle.bin HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        body = b"1\r\nx\r\n" * 50 + b"0\r\n\r\n"
    else:
        head = b"PUT /trickle.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        body = b"x" * 100
    with site.connect() as sock:
        sock.sendall(head)
        wait_until(lambda: len(site.uploads()) == 1, what="the temporary file")
        trickle = Trickle(sock, body)
        trickle.start()
        try:
            answer = read_response(sock)
        finally:
            trickle.stop.set()
            trickle.join(DEADLINE)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
    assert b"Connection: close" in answer
    wait_until(lambda: site.uploads() == [], what="the temporary file removed")
    assert not (site.root / "trickle.bin").exists()
    wait_until(lambda: timeout_lines(caplog), what="the log line")
    (line,) = timeout_lines(caplog)
    assert line.startswith("127.0.0.1:"), line
    assert "PUT /trickle.bin" in line
    assert "bytes received" in line
    assert "bytes/s over 1 s, under 500 bytes/s" in line


def test_body_at_a_fine_rate_is_stored(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    """4,000 bytes at 2,000 bytes/s under a 1 s window and a 500 bytes/s minimum."""
    caplog.set_level(logging.INFO, logger="medusa")
    body = bytes(range(200)) * 20
    with site.connect() as sock:
        sock.sendall(b"PUT /fine.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n")
        paced(sock, body)
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:100]
    assert (site.root / "fine.bin").read_bytes() == body
    assert not timeout_lines(caplog)


def test_body_held_behind_an_unsafe_request_is_not_cut(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """A PUT pipelined behind a POST that takes over three body timeouts to answer: its
    body cannot be read meanwhile, and the client sends it only once it saw the POST's
    answer. That wait counts neither as silence nor against the rate."""
    caplog.set_level(logging.INFO, logger="medusa")
    body = bytes(range(200)) * 20
    with site.connect() as sock:
        sock.sendall(
            b"POST /gate HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
            b"PUT /held.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n\r\n"
        )
        assert site.gate.entered.wait(DEADLINE)
        time.sleep(3 * TIMEOUT)  # the server holds the PUT that long
        site.gate.release.set()
        first = read_response(sock)
        assert first.startswith(b"HTTP/1.1 200 "), first[:100]
        assert first.endswith(b"gate"), first  # nothing more: the PUT is not answered yet
        paced(sock, body)
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:100]
    assert (site.root / "held.bin").read_bytes() == body
    assert not timeout_lines(caplog)


def test_expect_continue_behind_a_slow_response_is_not_cut(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """A PUT with ``Expect: 100-continue`` pipelined behind a slow GET: its 100 Continue
    comes once the GET is answered (the client waits for it before sending the body), and
    the wait is not the client's silence."""
    caplog.set_level(logging.INFO, logger="medusa")
    body = bytes(range(200)) * 20
    with site.connect() as sock:
        sock.sendall(
            b"GET /gate HTTP/1.1\r\nHost: x\r\n\r\n"
            b"PUT /expect.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 4000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        assert site.gate.entered.wait(DEADLINE)
        time.sleep(3 * TIMEOUT)  # the server holds the PUT's 100 Continue that long
        site.gate.release.set()
        data = b""
        while b"HTTP/1.1 100 Continue\r\n\r\n" not in data:
            piece = sock.recv(65536)
            assert piece, data
            data += piece
        assert data.startswith(b"HTTP/1.1 200 "), data[:100]
        paced(sock, body)
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:100]
    assert (site.root / "expect.bin").read_bytes() == body
    assert not timeout_lines(caplog)


def test_zero_times_silence_only(silence_only: Site) -> None:
    """``body_min_rate = 0``: a trickle that never stays silent for ``body_timeout`` is
    stored."""
    site = silence_only
    with site.connect() as sock:
        sock.sendall(b"PUT /slow.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\n")
        trickle = Trickle(sock, b"12345678")
        trickle.start()
        answer = read_response(sock)
        trickle.join(DEADLINE)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:100]
    assert (site.root / "slow.bin").read_bytes() == b"12345678"


def test_body_min_rate_option() -> None:
    for bad in (-1, "fast"):
        with pytest.raises(ConfigError, match="body_min_rate"):
            HTTPServer.from_config(
                {"listen": "127.0.0.1:0", "body_min_rate": bad},
                source="t",
                prefix="s",
                base_dir=".",
            )
    server = HTTPServer.from_config(
        {"listen": "127.0.0.1:0", "body_min_rate": 2000}, source="t", prefix="s", base_dir="."
    )
    assert isinstance(server, HTTPServer)
    assert server.body_min_rate == 2000
    assert HTTPServer(("127.0.0.1", 0)).body_min_rate == 500
    with pytest.raises(ValueError, match="body_min_rate"):
        HTTPServer(("127.0.0.1", 0), body_min_rate=float("nan"))
