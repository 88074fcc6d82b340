"""HTTP/1.x protocol behaviour through raw sockets on both event loops: persistence,
pipelining with handlers that finish out of order, framing, errors in handlers, live handler
changes, Expect: 100-continue and refusal over max_connections."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from medusa.core.testing import ServerThread
from medusa.http import HTTPServer, Request

BACKENDS = ["asyncio", "uvloop"]


@dataclass
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Reader:
    """A minimal blocking HTTP/1.1 response reader over one socket (test side)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buffer += data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def _exactly(self, n: int) -> bytes:
        while len(self.buffer) < n:
            self._fill()
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read(self, head: bool = False) -> Response:
        status = int(self._line().split()[1])
        response = Response(status)
        while line := self._line():
            name, _, value = line.decode("latin-1").partition(":")
            response.headers[name.strip().lower()] = value.strip()
        if head or status in (204, 304) or 100 <= status < 200:
            return response
        if response.headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                body += self._exactly(size)
                self._line()
            response.body = body
        elif "content-length" in response.headers:
            response.body = self._exactly(int(response.headers["content-length"]))
        else:
            while True:
                try:
                    self._fill()
                except EOFError:
                    break
            response.body, self.buffer = self.buffer, b""
        return response

    def at_eof(self) -> bool:
        """True when the server closed the connection (waits up to the socket timeout)."""
        if self.buffer:
            return False
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True


class Echo:
    """Answers /echo with the method, path, query and body."""

    def match(self, request: Request) -> bool:
        return request.path.startswith("/echo")

    def handle_request(self, request: Request) -> None:
        text = f"{request.method} {request.path} {request.query} ".encode() + request.body
        request.respond(200, text, content_type="text/plain")


class Delayed:
    """Answers /slow/N after N hundredths of a second: later requests finish first."""

    def match(self, request: Request) -> bool:
        return request.path.startswith("/slow/")

    async def handle_request(self, request: Request) -> None:
        delay = int(request.path.rsplit("/", 1)[1])
        await asyncio.sleep(delay / 100)
        request.respond(200, request.path.encode(), content_type="text/plain")


class Streamer:
    """Answers /stream without a length: chunked for HTTP/1.1, close-delimited for 1.0."""

    def match(self, request: Request) -> bool:
        return request.path == "/stream"

    def handle_request(self, request: Request) -> None:
        request.set_header("Content-Type", "text/plain")
        for i in range(3):
            request.push(f"part{i};".encode())
        request.done()


class Broken:
    """Raises on /boom (sync) and /aboom (async)."""

    def match(self, request: Request) -> bool:
        return request.path in ("/boom", "/aboom")

    def handle_request(self, request: Request) -> Awaitable[None] | None:
        if request.path == "/boom":
            raise RuntimeError("handler bug")

        async def fail() -> None:
            raise RuntimeError("async handler bug")

        return fail()


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HTTPServer]:
    (tmp_path / "file.txt").write_bytes(b"file body")
    srv = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[Echo(), Delayed(), Streamer(), Broken()],
        root=tmp_path,
        access_log=None,
        max_body_size=1000,
    )
    with ServerThread([srv], backend=request.param):
        yield srv


def connect(server: HTTPServer) -> tuple[socket.socket, Reader]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    return sock, Reader(sock)


def test_http11_keeps_alive_and_closes_on_request(server: HTTPServer) -> None:
    sock, reader = connect(server)
    with sock:
        for _ in range(3):
            sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            response = reader.read()
            assert response.status == 200
            assert "connection" not in response.headers
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        response = reader.read()
        assert response.headers["connection"] == "close"
        assert reader.at_eof()


def test_http10_closes_unless_keep_alive(server: HTTPServer) -> None:
    sock, reader = connect(server)
    with sock:
        sock.sendall(b"GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        response = reader.read()
        assert response.headers["connection"] == "keep-alive"
        sock.sendall(b"GET /echo HTTP/1.0\r\n\r\n")
        response = reader.read()
        assert response.status == 200
        assert response.headers.get("connection") == "close"
        assert reader.at_eof()


def test_pipelined_responses_keep_request_order(server: HTTPServer) -> None:
    sock, reader = connect(server)
    paths = ["/slow/30", "/echo?a", "/slow/10", "/file.txt", "/slow/0", "/echo?b"]
    with sock:
        sock.sendall(b"".join(f"GET {p} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for p in paths))
        bodies = [reader.read().body for _ in paths]
    assert bodies == [
        b"/slow/30",
        b"GET /echo a ",
        b"/slow/10",
        b"file body",
        b"/slow/0",
        b"GET /echo b ",
    ]


def test_nothing_is_read_after_connection_close(server: HTTPServer) -> None:
    sock, reader = connect(server)
    with sock:
        sock.sendall(
            b"GET /slow/5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        assert reader.read().body == b"/slow/5"
        assert reader.at_eof()


def test_chunked_response_for_11_and_close_for_10(server: HTTPServer) -> None:
    sock, reader = connect(server)
    with sock:
        sock.sendall(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
        response = reader.read()
        assert response.headers["transfer-encoding"] == "chunked"
        assert response.body == b"part0;part1;part2;"
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.read().status == 200
    sock, reader = connect(server)
    with sock:
        sock.sendall(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        response = reader.read()
        assert "transfer-encoding" not in response.headers
        assert response.headers["connection"] == "close"
        assert response.body == b"part0;part1;part2;"


def test_head_has_headers_only(server: HTTPServer) -> None:
    sock, reader = connect(server)
    with sock:
        sock.sendall(
            b"HEAD /file.txt HTTP/1.1\r\nHost: x\r\n\r\nGET /echo HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        head = reader.read(head=True)
        assert head.headers["content-length"] == "9"
        assert reader.read().body == b"GET /echo  "


def test_request_bodies_content_length_and_chunked(server: HTTPServer) -> None:
    sock, reader = connect(server)
    with sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
        assert reader.read().body == b"POST /echo  hello"
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
        )
        assert reader.read().body == b"POST /echo  abcdefg"


def test_body_over_limit_is_413(server: HTTPServer) -> None:
    sock, reader = connect(server)
    with sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n")
        assert reader.read().status == 413
        assert reader.at_eof()
    sock, reader = connect(server)
    with sock:
        chunk = b"%x\r\n%s\r\n" % (600, b"x" * 600)
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        sock.sendall(chunk + chunk)
        assert reader.read().status == 413


def test_expect_100_continue(server: HTTPServer) -> None:
    sock, reader = connect(server)
    with sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
        )
        assert reader.read().status == 100
        sock.sendall(b"abc")
        assert reader.read().body == b"POST /echo  abc"
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        assert reader.read().status == 413


def test_handler_exception_gives_500_and_connection_goes_on(server: HTTPServer) -> None:
    before = server.counters.errors
    sock, reader = connect(server)
    with sock:
        for path in ("/boom", "/aboom"):
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            assert reader.read().status == 500
            sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n")
            assert reader.read().status == 200
    assert server.counters.errors == before + 2


def test_malformed_request_is_400_and_close(server: HTTPServer) -> None:
    sock, reader = connect(server)
    with sock:
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\nNONSENSE\x01 / HTTP/1.1\r\n\r\n")
        assert reader.read().status == 200
        assert reader.read().status == 400
        assert reader.at_eof()


def test_handlers_installed_and_removed_while_running(server: HTTPServer) -> None:
    class Hello:
        def match(self, request: Request) -> bool:
            return request.path == "/file.txt"

        def handle_request(self, request: Request) -> None:
            request.respond(200, b"replaced", content_type="text/plain")

    hello = Hello()
    sock, reader = connect(server)
    with sock:
        sock.sendall(b"GET /file.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.read().body == b"file body"
        # The chain is a tuple replaced in one assignment, so a change from another
        # thread is atomic; the keep-alive connection stays open throughout.
        server.install_handler(hello)
        sock.sendall(b"GET /file.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.read().body == b"replaced"
        server.remove_handler(hello)
        sock.sendall(b"GET /file.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.read().body == b"file body"


def test_unknown_path_is_404_and_405_for_other_methods(server: HTTPServer) -> None:
    sock, reader = connect(server)
    with sock:
        sock.sendall(b"GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.read().status == 404
        sock.sendall(b"DELETE /file.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        response = reader.read()
        assert response.status == 405
        assert response.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("backend", BACKENDS)
def test_connections_over_the_limit_get_503(tmp_path: Path, backend: str) -> None:
    srv = HTTPServer(("127.0.0.1", 0), root=tmp_path, access_log=None, max_connections=2)
    with ServerThread([srv], backend=backend) as st:
        first, r1 = connect(srv)
        second, r2 = connect(srv)
        with first, second:
            for sock, reader in ((first, r1), (second, r2)):
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert reader.read().status == 403
            third, r3 = connect(srv)
            with third:
                response = r3.read()
                assert response.status == 503
                assert response.headers["retry-after"] == "1"
                assert r3.at_eof()
            first.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert r1.read().status == 403
        assert st.call(lambda: srv.counters.refused) == 1


@pytest.mark.parametrize("size", [100, 200_000])
def test_ranges_small_and_large_files(tmp_path: Path, size: int) -> None:
    data = bytes(range(256)) * (size // 256 + 1)
    data = data[:size]
    (tmp_path / "f.bin").write_bytes(data)
    srv = HTTPServer(("127.0.0.1", 0), root=tmp_path, access_log=None)
    with ServerThread([srv], backend="uvloop"):
        sock, reader = connect(srv)
        with sock:
            for spec, first, last in (
                ("bytes=0-9", 0, 9),
                ("bytes=-10", size - 10, size - 1),
                ("bytes=0-", 0, size - 1),
                (f"bytes={size - 1}-{size + 50}", size - 1, size - 1),
            ):
                sock.sendall(f"GET /f.bin HTTP/1.1\r\nHost: x\r\nRange: {spec}\r\n\r\n".encode())
                response = reader.read()
                assert response.status == 206, spec
                assert response.headers["content-range"] == f"bytes {first}-{last}/{size}"
                assert response.body == data[first : last + 1]
            sock.sendall(f"GET /f.bin HTTP/1.1\r\nHost: x\r\nRange: bytes={size}-\r\n\r\n".encode())
            response = reader.read()
            assert response.status == 416
            assert response.headers["content-range"] == f"bytes */{size}"
            sock.sendall(b"GET /f.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            response = reader.read()
            assert response.status == 200
            assert response.body == data
            etag = response.headers["etag"]
            sock.sendall(
                f"GET /f.bin HTTP/1.1\r\nHost: x\r\nIf-None-Match: {etag}\r\n\r\n".encode()
            )
            response = reader.read()
            assert response.status == 304
            assert response.headers["etag"] == etag


def test_cached_small_file_follows_changes_on_disk(tmp_path: Path) -> None:
    target = tmp_path / "page.html"
    target.write_bytes(b"first version")
    srv = HTTPServer(("127.0.0.1", 0), root=tmp_path, access_log=None)
    with ServerThread([srv], backend="asyncio"):
        sock, reader = connect(srv)
        with sock:
            for _ in range(2):
                sock.sendall(b"GET /page.html HTTP/1.1\r\nHost: x\r\n\r\n")
                assert reader.read().body == b"first version"
            replacement = tmp_path / "new.html"
            replacement.write_bytes(b"second version, longer")
            replacement.replace(target)
            sock.sendall(b"GET /page.html HTTP/1.1\r\nHost: x\r\n\r\n")
            assert reader.read().body == b"second version, longer"
            target.unlink()
            sock.sendall(b"GET /page.html HTTP/1.1\r\nHost: x\r\n\r\n")
            assert reader.read().status == 404


def test_error_response_survives_an_unread_upload(server: HTTPServer) -> None:
    """413 while the client is still sending its body: the server reads and discards the
    rest (lingering close) instead of resetting the connection under the response."""
    sock, reader = connect(server)
    with sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4000000\r\n\r\n")
        sock.sendall(b"x" * 4_000_000)
        sock.shutdown(socket.SHUT_WR)
        response = reader.read()
        assert response.status == 413
        assert reader.at_eof()


def test_half_closed_client_gets_its_pipelined_answers(server: HTTPServer) -> None:
    sock, reader = connect(server)
    with sock:
        sock.sendall(
            b"GET /slow/20 HTTP/1.1\r\nHost: x\r\n\r\nGET /echo?z HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        sock.shutdown(socket.SHUT_WR)
        assert reader.read().body == b"/slow/20"
        assert reader.read().body == b"GET /echo z "
        assert reader.at_eof()


class ListLogger:
    """A Logger that keeps its lines (the access log under test)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)


@pytest.mark.parametrize("backend", BACKENDS)
def test_access_log_lines(tmp_path: Path, backend: str) -> None:
    (tmp_path / "a.txt").write_bytes(b"12345")
    log = ListLogger()
    srv = HTTPServer(("127.0.0.1", 0), root=tmp_path, access_log=log)
    with ServerThread([srv], backend=backend) as st:
        sock, reader = connect(srv)
        with sock:
            sock.sendall(b'GET /a.txt?x="y" HTTP/1.1\r\nHost: x\r\n\r\n')
            assert reader.read().status == 200
            sock.sendall(b"BOGUS\x01 / HTTP/1.1\r\n\r\n")
            assert reader.read().status == 400
        lines = st.call(lambda: list(log.lines))
    assert len(lines) == 2
    assert lines[0].startswith("127.0.0.1 - - [")
    assert lines[0].endswith('] "GET /a.txt?x=\\"y\\" HTTP/1.1" 200 5')
    assert '] "-" 400 ' in lines[1]
