"""ASGI 3 applications over HTTP (``medusa.http.asgi``): raw applications, real sockets,
http.client and raw clients, on both loops."""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import logging
import select
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from medusa.core.testing import ServerThread, loop_backends, wait_until
from medusa.http import HTTPServer, StatusHandler
from medusa.http.asgi import ASGIHandler, ClientDisconnectedError

Scope = dict[str, Any]


class ListLogger:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)


async def read_body(receive: Any) -> bytes:
    parts = []
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


def start(status: int = 200, headers: list[tuple[bytes, bytes]] | None = None) -> dict[str, Any]:
    return {"type": "http.response.start", "status": status, "headers": headers or []}


def body(data: bytes, more: bool = False) -> dict[str, Any]:
    return {"type": "http.response.body", "body": data, "more_body": more}


class Apps:
    """The raw applications of these tests, with what they saw (read from the test's thread
    once a condition says they got there)."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.release: asyncio.Event | None = None
        self.max_backlog = 0
        self.parts_sent = 0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError("http only")  # no lifespan: served without it
        name = scope["path"].removeprefix(scope["root_path"]).split("/")[1] or "hello"
        await getattr(self, name.replace("-", "_"))(scope, receive, send)

    async def hello(self, scope: Scope, receive: Any, send: Any) -> None:
        await send(start(headers=[(b"content-type", b"text/plain")]))
        await send(body(b"Hello, World!"))

    async def scope(self, scope: Scope, receive: Any, send: Any) -> None:
        seen = {
            key: value.decode("latin-1") if isinstance(value, bytes) else value
            for key, value in scope.items()
            if key != "headers"
        }
        seen["headers"] = [[n.decode(), v.decode()] for n, v in scope["headers"]]
        await send(start(headers=[(b"content-type", b"application/json")]))
        await send(body(json.dumps(seen).encode()))

    async def echo_hash(self, scope: Scope, receive: Any, send: Any) -> None:
        data = await read_body(receive)
        answer = f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode()
        await send(start())
        await send(body(answer))

    async def slow_reader(self, scope: Scope, receive: Any, send: Any) -> None:
        first = await receive()
        self.events.append(f"first {len(first['body'])}")
        self.release = asyncio.Event()
        await self.release.wait()
        rest = await read_body(receive)
        await send(start())
        await send(body(str(len(first["body"]) + len(rest)).encode()))

    async def stream(self, scope: Scope, receive: Any, send: Any) -> None:
        await send(start(headers=[(b"content-type", b"text/plain")]))
        for number in range(100):
            await send(body(b"%d\n" % number, more=True))
        await send(body(b""))

    async def big_stream(self, scope: Scope, receive: Any, send: Any) -> None:
        transport = scope["extensions"]["test.transport"]()
        part = b"x" * 65536
        await send(start(headers=[(b"content-length", str(256 * len(part)).encode())]))
        for number in range(256):
            self.max_backlog = max(self.max_backlog, transport.get_write_buffer_size())
            self.parts_sent = number + 1
            await send(body(part, more=number < 255))

    async def forever(self, scope: Scope, receive: Any, send: Any) -> None:
        await send(start())
        try:
            while True:
                await send(body(b"x" * 4096, more=True))
        except ClientDisconnectedError:
            self.events.append("send raised")
            raise

    async def wait_disconnect(self, scope: Scope, receive: Any, send: Any) -> None:
        message = await receive()
        while message["type"] == "http.request":
            message = await receive()
        self.events.append(message["type"])

    async def early_answer(self, scope: Scope, receive: Any, send: Any) -> None:
        await receive()
        await send(start())
        await send(body(b"early", more=True))
        message = await receive()  # the rest of the body is not read once answering
        self.events.append(message["type"])
        await send(body(b" done"))

    async def raise_before(self, scope: Scope, receive: Any, send: Any) -> None:
        raise RuntimeError("broken before the start")

    async def raise_after(self, scope: Scope, receive: Any, send: Any) -> None:
        await send(start(headers=[(b"content-length", b"100")]))
        await send(body(b"x" * 10, more=True))
        raise RuntimeError("broken after the start")

    async def wrong_order(self, scope: Scope, receive: Any, send: Any) -> None:
        await send(body(b"body before the start"))

    async def no_answer(self, scope: Scope, receive: Any, send: Any) -> None:
        return

    async def never(self, scope: Scope, receive: Any, send: Any) -> None:
        await asyncio.Event().wait()

    async def injection(self, scope: Scope, receive: Any, send: Any) -> None:
        await send(start(headers=[(b"x-a", b"1\r\nSet-Cookie: evil=1")]))
        await send(body(b""))

    async def pathsend(self, scope: Scope, receive: Any, send: Any) -> None:
        assert "http.response.pathsend" in scope["extensions"]
        await send(start(headers=[(b"content-type", b"application/octet-stream")]))
        path = scope["query_string"].decode()
        await send({"type": "http.response.pathsend", "path": path})


class Served(NamedTuple):
    server: HTTPServer
    apps: Apps
    log: ListLogger
    thread: ServerThread


@pytest.fixture(params=loop_backends())
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    apps = Apps()
    log = ListLogger()
    handler = ASGIHandler(apps, prefix="/app", name="tests:apps", lifespan=True)
    server = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[StatusHandler("/status"), handler],
        access_log=log,
        idle_timeout=2,
    )
    with ServerThread([server], backend=request.param) as thread:
        yield Served(server, apps, log, thread)


Connect = Callable[[float], socket.socket]


@pytest.fixture
def connect(served: Served) -> Iterator[Connect]:
    """Raw client sockets to the server, closed at the end of the test."""
    made: list[socket.socket] = []

    def make(timeout: float) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", served.server.port), timeout=timeout)
        made.append(sock)
        return sock

    yield make
    for sock in made:
        sock.close()


def get(server: HTTPServer, path: str, method: str = "GET", **kwargs: Any) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, path, **kwargs)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_hello_keep_alive_and_access_log(served: Served) -> None:
    server, _, log, _ = served
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    for _ in range(3):
        conn.request("GET", "/app/hello")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Length") == "13"
        assert response.getheader("content-type") == "text/plain"
        assert response.read() == b"Hello, World!"
    conn.request("HEAD", "/app/hello")
    response = conn.getresponse()
    assert response.getheader("Content-Length") == "13"
    assert response.read() == b""
    conn.close()
    wait_until(lambda: len(log.lines) == 4, what="four access log lines")
    assert '"GET /app/hello HTTP/1.1" 200 13' in log.lines[0]
    # Not under the prefix: not the application's (404 from the chain's end).
    assert get(server, "/other")[0] == 404


def test_scope(served: Served) -> None:
    server, *_ = served
    status, data = get(server, "/app/scope/x%20y/%C3%A9?q=a%20b&r", headers={"X-Test": "yes"})
    assert status == 200
    scope = json.loads(data)
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/app/scope/x y/\u00e9"
    assert scope["raw_path"] == "/app/scope/x%20y/%C3%A9"
    assert scope["query_string"] == "q=a%20b&r"
    assert scope["root_path"] == "/app"
    assert ["x-test", "yes"] in scope["headers"]
    assert scope["client"][0] == "127.0.0.1"
    assert scope["server"] == ["127.0.0.1", server.port]
    assert scope["state"] == {}


@pytest.mark.parametrize("chunked", [False, True])
def test_large_request_body(served: Served, chunked: bool) -> None:
    server, *_ = served
    data = bytes(range(256)) * (5 * 4096 + 3)  # over max_body_size: streamed, not buffered
    if chunked:
        status, answer = get(
            server, "/app/echo-hash", "POST", body=iter([data[:100000], data[100000:]])
        )
    else:
        status, answer = get(server, "/app/echo-hash", "POST", body=data)
    assert status == 200
    assert answer == f"{len(data)} {hashlib.sha256(data).hexdigest()}".encode()


def test_body_reading_pauses_until_the_application_asks(
    served: Served,
    connect: Connect,
) -> None:
    server, apps, *_ = served
    size = 8 << 20
    sock = connect(10)
    sock.sendall(b"POST /app/slow-reader HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
    sock.setblocking(False)
    sent = 0
    chunk = b"y" * 65536
    deadline = time.monotonic() + 20
    # Send until the kernel's buffers are full and the server stopped reading.
    while sent < size and time.monotonic() < deadline:
        try:
            sent += sock.send(chunk[: size - sent])
        except BlockingIOError:
            channels = list(server.channels)
            if apps.events and channels and channels[0].reading_paused:
                break
            select.select([], [sock], [], 0.05)
    [channel] = list(server.channels)
    assert apps.events == ["first 65536"] or apps.events[0].startswith("first ")
    assert channel.reading_paused
    assert sent < size  # the server did not take the whole body meanwhile
    assert channel.bytes_in < 4 << 20
    release = apps.release
    assert release is not None
    served.thread.call(release.set)
    sock.setblocking(True)
    sock.sendall(b"y" * (size - sent))
    response = sock.recv(65536)
    assert response.startswith(b"HTTP/1.1 200 ")
    assert response.endswith(str(size).encode())
    sock.close()


def test_streaming_response_is_chunked(served: Served) -> None:
    server, *_ = served
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/app/stream")
    response = conn.getresponse()
    assert response.getheader("Transfer-Encoding") == "chunked"
    assert response.read() == b"".join(b"%d\n" % n for n in range(100))
    conn.close()


def test_a_slow_client_holds_the_application_back(
    served: Served,
    connect: Connect,
) -> None:
    server, apps, *_ = served
    [handler] = [h for h in server.handlers if isinstance(h, ASGIHandler)]
    # The application reads its connection's write backlog before each part it sends.
    original = handler.app

    async def app(scope: Scope, receive: Any, send: Any) -> None:
        [channel] = list(server.channels)
        scope["extensions"] = {**scope["extensions"], "test.transport": lambda: channel.transport}
        await original(scope, receive, send)

    handler.app = app
    sock = connect(10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    sock.sendall(b"GET /app/big-stream HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_until(lambda: server.channels, what="the connection")
    [channel] = list(server.channels)
    wait_until(lambda: not channel.writable and apps.parts_sent > 0, what="the output backlog")
    # The client reads nothing: the application waits in send(), 16 MiB not all queued.
    assert apps.parts_sent < 128
    total = 0
    while True:
        data = sock.recv(1 << 20)
        if not data:
            break
        total += len(data)
        if total >= 256 * 65536:
            break
    sock.close()
    assert apps.parts_sent == 256
    assert apps.max_backlog <= 64 * 1024 + 65536  # the high-water mark and one part


def test_client_leaving_mid_response_ends_send(
    served: Served, connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    apps = served.apps
    sock = connect(10)
    sock.sendall(b"GET /app/forever HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(4096).startswith(b"HTTP/1.1 200 ")
    with caplog.at_level(logging.ERROR, logger="medusa"):
        sock.close()
        wait_until(lambda: "send raised" in apps.events, what="send to raise")
    assert not [r for r in caplog.records if "failed" in r.getMessage()]


@pytest.mark.parametrize("mid_body", [False, True])
def test_http_disconnect(served: Served, connect: Connect, mid_body: bool) -> None:
    server, apps, *_ = served
    sock = connect(10)
    if mid_body:
        sock.sendall(
            b"POST /app/wait-disconnect HTTP/1.1\r\nHost: x\r\nContent-Length: 9999\r\n\r\n"
        )
        sock.sendall(b"z" * 1000)
    else:
        sock.sendall(b"GET /app/wait-disconnect HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_until(lambda: server.channels, what="the connection")
    sock.close()
    wait_until(lambda: apps.events == ["http.disconnect"], what="http.disconnect")


@pytest.mark.parametrize(
    ("path", "logged"),
    [
        ("/app/raise-before", "broken before the start"),
        ("/app/wrong-order", "before http.response.start"),
        ("/app/no-answer", "returned without sending a response"),
        ("/app/injection", "CR, LF or NUL"),
    ],
)
def test_application_errors_give_500(
    served: Served,
    caplog: pytest.LogCaptureFixture,
    path: str,
    logged: str,
) -> None:
    server, *_ = served
    with caplog.at_level(logging.ERROR, logger="medusa"):
        status, data = get(server, path)
    assert status == 500
    texts = [r.getMessage() + str(r.exc_info and r.exc_info[1]) for r in caplog.records]
    assert any(logged in text for text in texts), texts
    assert b"Set-Cookie" not in data
    # The server goes on serving.
    assert get(server, "/app/hello") == (200, b"Hello, World!")
    status_page = get(server, "/status?format=json")[1].decode()
    assert "ASGI application tests:apps at /app (2 requests, 1 errors)" in status_page
    [row] = json.loads(status_page)["servers"][0]["applications"]
    assert (row["requests"], row["errors"]) == (2, 1)


def test_error_after_start_cuts_the_response(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    server, *_ = served
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    with caplog.at_level(logging.ERROR, logger="medusa"):
        conn.request("GET", "/app/raise-after")
        response = conn.getresponse()
        assert response.status == 200
        with pytest.raises(http.client.IncompleteRead):
            response.read()
    conn.close()
    assert any(
        r.exc_info and "broken after the start" in str(r.exc_info[1]) for r in caplog.records
    )


def test_an_application_that_never_answers_meets_the_idle_timeout(
    served: Served,
    connect: Connect,
) -> None:
    sock = connect(15)
    sock.sendall(b"GET /app/never HTTP/1.1\r\nHost: x\r\n\r\n")
    assert sock.recv(4096) == b""  # closed by the server's idle_timeout (2 s here)
    sock.close()


def test_pathsend(served: Served, tmp_path: Path) -> None:
    server, *_ = served
    data = bytes(range(256)) * 1000 + b"end"
    (tmp_path / "f.bin").write_bytes(data)
    status, answer = get(server, f"/app/pathsend?{tmp_path / 'f.bin'}")
    assert status == 200
    assert answer == data


def test_receive_after_the_response_began_gives_disconnect(
    served: Served, connect: Connect
) -> None:
    apps = served.apps
    sock = connect(10)
    sock.sendall(b"POST /app/early-answer HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
    sock.sendall(b"b" * 1000)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    assert data.startswith(b"HTTP/1.1 200 ")
    assert b"Connection: close" in data
    assert data.endswith(b"5\r\nearly\r\n5\r\n done\r\n0\r\n\r\n")
    assert apps.events == ["http.disconnect"]
