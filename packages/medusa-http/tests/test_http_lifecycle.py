"""A connection's life under stress, through real sockets on both event loops: a request
body that stops sending gets 408 after ``body_timeout`` (its temporary file removed, a log
line with the client, the path and the bytes received) while one that keeps sending is not
cut (issue 13, item 4); a request whose head is half-read when the server stops is still
answered, with ``Connection: close`` (item 1)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from medusa.core.options import ConfigError
from medusa.core.testing import ServerThread, wait_until
from medusa.http import HTTPServer, PutHandler, Request
from medusa.http.channel import HTTPChannel

BACKENDS = ["asyncio", "uvloop"]


class Echo:
    """Answers POST /echo with the (buffered) body's length."""

    def match(self, request: Request) -> bool:
        return request.path == "/echo"

    def handle_request(self, request: Request) -> None:
        request.respond(200, b"%d" % len(request.body), content_type="text/plain")


@dataclass
class Site:
    root: Path
    server: HTTPServer

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.server.port), timeout=15)

    def uploads(self) -> list[Path]:
        return list(self.root.rglob(".*.upload"))


def _site(tmp_path: Path, backend: str, body_timeout: float) -> Iterator[Site]:
    (tmp_path / "file.txt").write_bytes(b"file body")
    server = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[PutHandler(tmp_path), Echo()],
        root=tmp_path,
        access_log=None,
        body_timeout=body_timeout,
    )
    with ServerThread([server], backend=backend):
        yield Site(tmp_path, server)


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    yield from _site(tmp_path, request.param, 0.3)


@pytest.fixture(params=BACKENDS)
def patient_site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    yield from _site(tmp_path, request.param, 2.0)


def read_all(sock: socket.socket) -> bytes:
    """Read until the server closes the connection (bounded by the socket's timeout)."""
    data = b""
    while True:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            break
        if not piece:
            break
        data += piece
    return data


def test_stalled_upload_gets_408_and_its_file_removed(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="medusa")
    with site.connect() as sock:
        sock.sendall(b"PUT /stalled.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        sock.sendall(b"x" * 123)
        wait_until(lambda: len(site.uploads()) == 1, what="the temporary file")
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
    assert b"Connection: close" in answer
    wait_until(lambda: site.uploads() == [], what="the temporary file removed")
    assert not (site.root / "stalled.bin").exists()
    wait_until(lambda: "request body timeout" in caplog.text, what="the log line")
    line = next(r.getMessage() for r in caplog.records if "408" in r.getMessage())
    assert "127.0.0.1:" in line
    assert "/stalled.bin" in line
    assert "123 bytes" in line


def test_stalled_buffered_body_gets_408(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="medusa")
    with site.connect() as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(b"5\r\nhello\r\n")  # then nothing
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:100]
    wait_until(lambda: "5 bytes received" in caplog.text, what="the log line")


def test_body_that_keeps_sending_is_not_cut(patient_site: Site) -> None:
    """Pieces 0.4 s apart under a 2 s body timeout, 3.2 s in all: stored whole."""
    site = patient_site
    pieces = [bytes([65 + i]) * 1000 for i in range(8)]
    with site.connect() as sock:
        sock.sendall(b"PUT /steady.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 8000\r\n\r\n")
        for piece in pieces:
            sock.sendall(piece)
            time.sleep(0.4)  # pacing the client, not waiting for the server
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:100]
    assert (site.root / "steady.bin").read_bytes() == b"".join(pieces)


def test_body_timeout_is_validated() -> None:
    with pytest.raises(ConfigError, match="body_timeout"):
        HTTPServer.from_config(
            {"listen": "127.0.0.1:0", "body_timeout": 0}, source="t", prefix="s", base_dir="."
        )
    server = HTTPServer.from_config(
        {"listen": "127.0.0.1:0", "body_timeout": 2.5}, source="t", prefix="s", base_dir="."
    )
    assert isinstance(server, HTTPServer)
    assert server.body_timeout == 2.5
    assert server.sweep_interval <= 2.5 / 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_head_half_read_at_stop_is_answered(tmp_path: Path, backend: str) -> None:
    (tmp_path / "file.txt").write_bytes(b"file body")
    server = HTTPServer(("127.0.0.1", 0), root=tmp_path, access_log=None)
    thread = ServerThread([server], backend=backend, grace=30).start()
    stopper = threading.Thread(target=thread.stop)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
            first = b"GET /file.txt HTTP/1.1\r\nHost: x\r\n"
            sock.sendall(first)
            wait_until(lambda: server.counters.bytes_in >= len(first), what="the half head read")
            stopper.start()
            # Read on the loop's thread: the listener's sockets close there meanwhile. The
            # channels are asked to stop a few loop iterations after the listener closes:
            # wait for that too, or the rest of the head may be answered before.
            wait_until(
                lambda: thread.call(
                    lambda: (
                        not server.listening
                        and all(isinstance(c, HTTPChannel) and c.stopping for c in server.channels)
                    )
                ),
                what="the server to stop listening and ask its channels to stop",
            )
            sock.sendall(b"\r\nGET /file.txt HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:100]
        assert answer.endswith(b"\r\nConnection: close\r\n\r\nfile body"), answer
    finally:
        if stopper.ident is None:
            thread.stop()
        stopper.join(30)


def test_client_gone_before_the_lingering_close_logs_no_error(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that closes mid-body: its 400 cannot be delivered and the half-close of the
    lingering close fails (ENOTCONN on the standard loop); that is no server error."""
    caplog.set_level(logging.INFO, logger="medusa")
    for _ in range(5):
        with site.connect() as sock:
            sock.sendall(b"PUT /cut.bin HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
    wait_until(lambda: caplog.text.count("abandoned after 5 bytes") == 5, what="the 5 aborts")
    wait_until(lambda: site.server.counters.active == 0, what="the connections closed")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert site.uploads() == []
