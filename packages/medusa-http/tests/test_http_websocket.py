"""ASGI WebSockets (medusa.http.asgiwebsocket) over real sockets on both loops: Starlette's
WebSocket and plain ASGI callables driven by the ``websockets`` client library, bad
handshakes and raw frames from raw sockets."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import logging
import os
import socket
import ssl
import struct
import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import trustme
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from medusa.core.testing import ServerThread, loop_backends, wait_until
from medusa.http import HTTPServer, Request
from medusa.http.asgiscope import base_scope
from medusa.http.asgiwebsocket import serve_websocket
from medusa.http.handler import NOT_DONE_YET, NotDoneYet
from medusa.http.status_page import StatusHandler
from medusa.http.websocketsession import MAX_QUEUE, WebSocketSession

EVENTS: list[tuple[str, Any]] = []
"""What the applications saw, appended from the server's thread."""

GATES: dict[str, asyncio.Event] = {}
"""Events an application waits on, set by the test (on the server's thread)."""


async def starlette_echo(websocket: WebSocket) -> None:
    """Echo text and bytes; "close-4001" closes with 4001; records the disconnect code."""
    offered = websocket.scope["subprotocols"]
    await websocket.accept(
        subprotocol="chat.v2" if "chat.v2" in offered else None,
        headers=[(b"x-echo", b"yes")],
    )
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            EVENTS.append(("disconnect", message["code"]))
            return
        text = message.get("text")
        if text == "close-4001":
            await websocket.close(4001, "bye")
            return
        if text is not None:
            await websocket.send_text(text)
        else:
            await websocket.send_bytes(message["bytes"])


STARLETTE = Starlette(routes=[WebSocketRoute("/ws", starlette_echo)])

Receive = Any
Send = Any


async def plain_app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    """A plain ASGI callable: the path says what it does."""
    assert scope["type"] == "websocket"
    path = scope["path"]
    assert (await receive())["type"] == "websocket.connect"
    if path == "/refuse":
        await send({"type": "websocket.close", "code": 1008})
        return
    if path == "/raise-before":
        raise ValueError("failing before accepting")
    if path == "/teapot":
        await send({"type": "websocket.http.response.start", "status": 418, "headers": []})
        await send({"type": "websocket.http.response.body", "body": b"short and stout"})
        return
    await send({"type": "websocket.accept"})
    EVENTS.append(("scheme", scope["scheme"]))
    if path == "/raise-after":
        raise ValueError("failing after accepting")
    if path == "/flood":
        count = 0
        while True:
            await send({"type": "websocket.send", "bytes": b"x" * 65536})
            count += 1
            EVENTS.append(("sent", count))
    if path == "/deaf":
        gate = GATES["deaf"] = asyncio.Event()
        EVENTS.append(("deaf", True))
        await gate.wait()  # receive only when the test says so
        message = await receive()
        EVENTS.append(("deaf-got", message.get("text")))
        await send({"type": "websocket.send", "text": "done"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            EVENTS.append(("disconnect", message["code"]))
            return
        text = message.get("text")
        if text is not None:
            await send({"type": "websocket.send", "text": text.upper()})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"][::-1]})


class WebSocketHandler:
    """Serves a WebSocket application at /ws... (Starlette) and everything else (plain)."""

    def __init__(self, **options: Any) -> None:
        self.options = options

    def match(self, request: Request) -> bool:
        return request.path != "/plain"

    def handle_request(self, request: Request) -> Any:
        app: Any = STARLETTE if request.path.startswith("/ws") else plain_app
        scope = base_scope(request, root_path="", state={})
        return serve_websocket(app, request, scope, **self.options)


class Plain:
    """Answers /plain over HTTP (the server keeps serving other requests)."""

    def match(self, request: Request) -> bool:
        return request.path == "/plain"

    def handle_request(self, request: Request) -> NotDoneYet:
        request.respond(200, b"plain")
        return NOT_DONE_YET


def start(backend: str, **options: Any) -> tuple[HTTPServer, ServerThread]:
    server_options = options.pop("server", {})
    server = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[StatusHandler(), Plain(), WebSocketHandler(**options)],
        access_log=None,
        **server_options,
    )
    thread = ServerThread([server], backend=backend).start()
    return server, thread


@pytest.fixture(params=loop_backends())
def backend(request: pytest.FixtureRequest) -> str:
    EVENTS.clear()
    return str(request.param)


@pytest.fixture
def served(backend: str) -> Iterator[tuple[HTTPServer, ServerThread]]:
    server, thread = start(backend, max_size=4096, ping_interval=0)
    try:
        yield server, thread
    finally:
        thread.stop()


def client(server: HTTPServer, path: str, **options: Any) -> ClientConnection:
    connection: ClientConnection = connect(
        f"ws://127.0.0.1:{server.port}{path}",
        proxy=None,
        open_timeout=10,
        close_timeout=10,
        **options,
    )
    return connection


def seen(kind: str) -> list[Any]:
    return [value for name, value in list(EVENTS) if name == kind]


def sessions(server: HTTPServer) -> list[WebSocketSession]:
    return [
        channel.upgraded  # type: ignore[attr-defined]
        for channel in list(server.channels)
        if getattr(channel, "upgraded", None) is not None
    ]


# -- raw sockets -----------------------------------------------------------------------------

KEY = base64.b64encode(b"0123456789abcdef").decode()


def handshake(
    port: int, headers: dict[str, str] | None = None, extra: bytes = b"", path: str = "/x"
) -> tuple[socket.socket, bytes]:
    """Send a handshake (``headers`` replace the usual ones; a None value drops one) and
    return the socket and the response head."""
    fields = {
        "Host": f"127.0.0.1:{port}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": KEY,
        "Sec-WebSocket-Version": "13",
    }
    fields.update(headers or {})
    head = f"GET {path} HTTP/1.1\r\n" + "".join(
        f"{name}: {value}\r\n" for name, value in fields.items() if value is not None
    )
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head.encode() + b"\r\n" + extra)
    received = b""
    while b"\r\n\r\n" not in received:
        data = sock.recv(65536)
        if not data:
            break
        received += data
    response, _, rest = received.partition(b"\r\n\r\n")
    sock_rest[sock] = rest
    return sock, response


sock_rest: dict[socket.socket, bytes] = {}
"""Bytes read after a response head, per raw socket."""


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """A masked client frame (RFC 6455 §5.2)."""
    mask = os.urandom(4)
    first = (0x80 if fin else 0) | opcode
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", first, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, size)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return head + mask + masked


def read_frame(sock: socket.socket) -> tuple[int, bytes]:
    """Read one unmasked server frame: (opcode, payload); (-1, b"") at end of file."""

    def take(count: int) -> bytes:
        data = sock_rest.get(sock, b"")
        while len(data) < count:
            more = sock.recv(65536)
            if not more:
                raise EOFError
            data += more
        sock_rest[sock] = data[count:]
        return data[:count]

    try:
        first, second = take(2)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", take(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", take(8))
        return first & 0x0F, take(size)
    except EOFError:
        return -1, b""


def code_of(payload: bytes) -> int:
    """The status code of a close frame's payload."""
    return int(struct.unpack("!H", payload[:2])[0])


def received_code(closed: ConnectionClosed) -> int | None:
    """The code of the close frame the client received, None when it received none."""
    return closed.rcvd.code if closed.rcvd is not None else None


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


# -- Starlette --------------------------------------------------------------------------------


def test_starlette_echo_text_and_binary(served: tuple[HTTPServer, ServerThread]) -> None:
    server, _ = served
    with client(server, "/ws") as ws:
        ws.send("hello")
        assert ws.recv() == "hello"
        ws.send(b"\x00\x01\xff")
        assert ws.recv() == b"\x00\x01\xff"
        ws.send(["frag", "mented"])  # one message in two frames
        assert ws.recv() == "fragmented"
        ws.ping(b"are you there").wait(10)  # answered by the server (wsproto)


def test_starlette_subprotocol_and_headers(served: tuple[HTTPServer, ServerThread]) -> None:
    server, _ = served
    with client(server, "/ws", subprotocols=["chat.v1", "chat.v2"]) as ws:
        assert ws.subprotocol == "chat.v2"
        assert ws.response is not None
        assert ws.response.headers["x-echo"] == "yes"
        assert ws.response.status_code == 101
    with client(server, "/ws") as ws:
        assert ws.subprotocol is None


def test_close_codes_both_ways(served: tuple[HTTPServer, ServerThread]) -> None:
    server, _ = served
    with client(server, "/ws") as ws:
        ws.send("close-4001")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "bye")
    with client(server, "/ws") as ws:
        ws.send("x")
        assert ws.recv() == "x"
        ws.close(4002, "done")
    wait_until(lambda: seen("disconnect") == [4002], what="the disconnect with 4002")


# -- plain ASGI callables ---------------------------------------------------------------------


def test_plain_asgi_app(served: tuple[HTTPServer, ServerThread]) -> None:
    server, _ = served
    with client(server, "/upper") as ws:
        ws.send("abc")
        assert ws.recv() == "ABC"
        ws.send(b"\x01\x02")
        assert ws.recv() == b"\x02\x01"
    wait_until(lambda: seen("disconnect") == [1000], what="the disconnect with 1000")


def test_close_before_accept_is_403(served: tuple[HTTPServer, ServerThread]) -> None:
    server, _ = served
    with pytest.raises(InvalidStatus) as refused:
        client(server, "/refuse")
    assert refused.value.response.status_code == 403


def test_http_response_extension(served: tuple[HTTPServer, ServerThread]) -> None:
    server, _ = served
    with pytest.raises(InvalidStatus) as refused:
        client(server, "/teapot")
    assert refused.value.response.status_code == 418
    assert refused.value.response.body == b"short and stout"


def test_application_errors(
    served: tuple[HTTPServer, ServerThread], caplog: pytest.LogCaptureFixture
) -> None:
    server, _ = served
    with caplog.at_level(logging.ERROR, logger="medusa"):
        with pytest.raises(InvalidStatus) as refused:
            client(server, "/raise-before")
        assert refused.value.response.status_code == 500
        with client(server, "/raise-after") as ws, pytest.raises(ConnectionClosed) as closed:
            ws.recv()
        assert received_code(closed.value) == 1011
        wait_until(lambda: len([r for r in caplog.records if r.exc_info]) == 2, what="2 logs")
    assert "failing before" in str(caplog.records[0].exc_info)
    assert "failing after" in str(caplog.records[1].exc_info)
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    conn.request("GET", "/plain")
    assert conn.getresponse().read() == b"plain"  # the server serves on
    conn.close()


# -- handshakes and frames from raw sockets ---------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Sec-WebSocket-Key": None}, 400),
        ({"Sec-WebSocket-Key": "c2hvcnQ="}, 400),
        ({"Sec-WebSocket-Version": "8"}, 426),
        ({"Sec-WebSocket-Version": None}, 426),
        ({"Connection": "keep-alive"}, 400),
    ],
)
def test_bad_handshakes(
    served: tuple[HTTPServer, ServerThread], headers: dict[str, str], status: int
) -> None:
    server, _ = served
    sock, response = handshake(server.port, headers)
    with sock:
        assert status_of(response) == status
        if status == 426:
            assert b"\r\nSec-WebSocket-Version: 13" in response
    assert EVENTS == []  # the application never saw them


def test_accept_answer_and_frames_in_the_handshake_read(
    served: tuple[HTTPServer, ServerThread],
) -> None:
    server, _ = served
    # A frame sent in the same write as the handshake is the WebSocket's first.
    sock, response = handshake(server.port, extra=frame(0x1, b"early"))
    with sock:
        assert status_of(response) == 101
        assert b"\r\nSec-WebSocket-Accept: " + b"BACScCJPNqyz+UBoqMH89VmURoA=" in response
        assert read_frame(sock) == (0x1, b"EARLY")


def test_message_over_max_size_closes_1009(served: tuple[HTTPServer, ServerThread]) -> None:
    server, _ = served
    with client(server, "/upper") as ws:
        ws.send("a" * 4096)  # max_size: accepted
        assert ws.recv() == "A" * 4096

        def send_too_much() -> None:
            # One message over it, in two frames: the server may close (1009) after the
            # first, before the client has sent the second; the send then raises.
            ws.send(["b" * 3000, "b" * 3000])
            ws.recv()

        with pytest.raises(ConnectionClosed) as closed:
            send_too_much()
    assert received_code(closed.value) == 1009
    wait_until(lambda: seen("disconnect") == [1009], what="the disconnect with 1009")


def test_client_leaving_without_close(served: tuple[HTTPServer, ServerThread]) -> None:
    server, _ = served
    sock, response = handshake(server.port, path="/upper")
    assert status_of(response) == 101
    sock.sendall(frame(0x1, b"hi"))
    assert read_frame(sock) == (0x1, b"HI")
    sock.close()  # no close frame
    wait_until(lambda: seen("disconnect") == [1006], what="the disconnect with 1006")
    wait_until(lambda: not server.channels, what="the channel to close")


def test_protocol_error_closes_1002(served: tuple[HTTPServer, ServerThread]) -> None:
    server, _ = served
    sock, response = handshake(server.port, path="/upper")
    with sock:
        assert status_of(response) == 101
        sock.sendall(frame(0x3, b"reserved opcode"))
        opcode, payload = read_frame(sock)
        assert (opcode, code_of(payload)) == (0x8, 1002)
        assert read_frame(sock)[0] == -1
    wait_until(lambda: seen("disconnect") == [1002], what="the disconnect with 1002")


# -- flow control, timeouts, shutdown ---------------------------------------------------------


def test_the_status_page_sees_an_open_websocket(served: tuple[HTTPServer, ServerThread]) -> None:
    server, _ = served
    with client(server, "/upper") as ws:
        ws.send("x" * 1000)
        assert ws.recv() == "X" * 1000
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/status?format=json")
        document = json.loads(conn.getresponse().read())
        conn.close()
    [entry] = [e for e in document["servers"] if e["listening"] == server.listening]
    assert entry["open_channels"] == 2  # the WebSocket and the status request's own
    assert max(row["bytes_out"] for row in entry["channels"]) > 1000  # the echo counted


def test_send_waits_for_a_slow_client(served: tuple[HTTPServer, ServerThread]) -> None:
    server, thread = served
    sock, response = handshake(server.port, path="/flood")
    with sock:
        assert status_of(response) == 101
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)

        def waiting() -> bool:
            return any(s.drain is not None for s in thread.call(lambda: sessions(server)))

        wait_until(waiting, what="the application's send to wait")
        sent = len(seen("sent"))
        assert sent * 65536 < 32 * 1024 * 1024  # held back, not buffered without bound
        for _ in range(sent + 8):  # reading lets it go on
            assert read_frame(sock)[0] == 0x2
        assert len(seen("sent")) > sent
    assert seen("scheme") == ["ws"]


def test_reading_pauses_while_the_application_does_not_receive(
    served: tuple[HTTPServer, ServerThread],
) -> None:
    server, thread = served
    with client(server, "/deaf") as ws:
        wait_until(lambda: seen("deaf"), what="the application")
        for number in range(MAX_QUEUE + 4):
            ws.send(f"m{number}")

        def paused() -> bool:
            return any(
                len(s.inbox) >= MAX_QUEUE and s.channel.reading_paused
                for s in thread.call(lambda: sessions(server))
            )

        wait_until(paused, what="reading to pause")
        # The application takes one message, answers, then echoes the rest upper-cased.
        thread.call(GATES["deaf"].set)
        assert ws.recv() == "done"
        assert seen("deaf-got") == ["m0"]
        assert [ws.recv() for _ in range(MAX_QUEUE + 3)][-1] == f"M{MAX_QUEUE + 3}"


def test_keepalive_timeout_does_not_close_a_websocket(backend: str) -> None:
    server, thread = start(backend, ping_interval=0, server={"keepalive_timeout": 0.1})
    try:
        with client(server, "/upper") as ws:
            idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            idle.request("GET", "/plain")
            assert idle.getresponse().read() == b"plain"
            assert idle.sock is not None
            # The idle keep-alive connection is closed by the sweep; the WebSocket is not.
            assert idle.sock.recv(1) == b""
            idle.close()
            ws.send("still here")
            assert ws.recv() == "STILL HERE"
    finally:
        thread.stop()


def test_silent_client_is_pinged_then_closed_1011(backend: str) -> None:
    server, thread = start(backend, ping_interval=0.05)
    try:
        sock, response = handshake(server.port, path="/upper")
        with sock:
            assert status_of(response) == 101
            opcode, _ = read_frame(sock)
            assert opcode == 0x9  # a ping
            opcode, payload = read_frame(sock)  # not answered: closed
            assert (opcode, code_of(payload)) == (0x8, 1011)
        wait_until(lambda: seen("disconnect") == [1011], what="the disconnect with 1011")
    finally:
        thread.stop()


def test_graceful_shutdown_closes_1001(backend: str) -> None:
    server, thread = start(backend, ping_interval=0)
    try:
        with client(server, "/upper") as ws:
            ws.send("before")
            assert ws.recv() == "BEFORE"
            stopper = threading.Thread(target=thread.stop)
            stopper.start()
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv()
        assert received_code(closed.value) == 1001
        stopper.join(30)
        assert not stopper.is_alive()
        assert seen("disconnect") == [1001]
    finally:
        thread.stop()


def test_wss_over_tls(backend: str, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    context = ssl.create_default_context()
    ca.configure_trust(context)
    server, thread = start(
        backend, ping_interval=0, server={"certfile": str(certfile), "keyfile": str(keyfile)}
    )
    try:
        url = f"wss://127.0.0.1:{server.port}/upper"
        with connect(url, ssl=context, proxy=None, open_timeout=10, close_timeout=10) as ws:
            ws.send("over tls")
            assert ws.recv() == "OVER TLS"
        wait_until(lambda: seen("scheme") == ["wss"], what="the application's scope")
    finally:
        thread.stop()
