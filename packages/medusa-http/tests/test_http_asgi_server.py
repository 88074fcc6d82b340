"""The HTTP server's rules applied to ASGI requests as to files: TLS (``scheme`` https),
graceful shutdown of a request in flight, the body timeout, limits checked before the
application, pipelining order, and an application that blocks the loop."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import ssl
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import trustme

from medusa.core.testing import ServerThread, loop_backends, wait_until
from medusa.http import HTTPServer
from medusa.http.asgi import ASGIHandler
from medusa.http.channel import HTTPChannel


class App:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.release: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError("http only")
        path = scope["path"]
        self.seen.append(path)
        if path == "/wait":
            self.loop = asyncio.get_running_loop()
            self.release = asyncio.Event()
            await self.release.wait()
        elif path == "/body":
            message = await receive()
            while message["type"] == "http.request" and message.get("more_body"):
                message = await receive()
            self.seen.append(message["type"])
            if message["type"] == "http.disconnect":
                return
        elif path == "/block":
            time.sleep(0.3)  # the application's fault: the whole loop waits
        answer = json.dumps({"path": path, "scheme": scope["scheme"]}).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": answer})


def test_tls_scheme_is_https(tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    server = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[ASGIHandler(App())],
        access_log=None,
        certfile=str(certfile),
        keyfile=str(keyfile),
    )
    context = ssl.create_default_context()
    ca.configure_trust(context)
    with ServerThread([server]):
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=context, timeout=10)
        conn.request("GET", "/x")
        assert json.loads(conn.getresponse().read()) == {"path": "/x", "scheme": "https"}
        conn.close()


@pytest.mark.parametrize("backend", loop_backends())
def test_graceful_stop_answers_a_request_in_flight(backend: str) -> None:
    app = App()
    server = HTTPServer(("127.0.0.1", 0), handlers=[ASGIHandler(app)], access_log=None)
    thread = ServerThread([server], backend=backend, grace=10).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/wait")
        wait_until(lambda: app.release is not None, what="the application waiting")
        stopper = threading.Thread(target=thread.stop)
        stopper.start()
        wait_until(
            lambda: all(
                isinstance(channel, HTTPChannel) and channel.connection.stopping
                for channel in server.channels
            ),
            what="the stop to reach the connection",
        )
        assert app.loop is not None
        assert app.release is not None
        app.loop.call_soon_threadsafe(app.release.set)
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Connection") == "close"
        assert json.loads(response.read())["path"] == "/wait"
        conn.close()
        stopper.join(20)
    finally:
        thread.stop()


def test_body_timeout_applies_and_the_application_sees_a_disconnect() -> None:
    app = App()
    server = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[ASGIHandler(app)],
        access_log=None,
        body_timeout=0.5,
        body_min_rate=0,
    )
    with ServerThread([server]), socket.create_connection(("127.0.0.1", server.port), 10) as sock:
        sock.sendall(b"POST /body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n12345")
        answer = b""
        while chunk := sock.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 408 ")
        wait_until(lambda: "http.disconnect" in app.seen, what="http.disconnect")


def test_limits_are_checked_before_the_application() -> None:
    app = App()
    server = HTTPServer(
        ("127.0.0.1", 0), handlers=[ASGIHandler(app)], access_log=None, max_request_line=100
    )
    with ServerThread([server]):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/" + "a" * 200)
        assert conn.getresponse().status == 414
        conn.close()
    assert app.seen == []


@pytest.mark.parametrize("backend", loop_backends())
def test_pipelined_requests_are_answered_in_order(backend: str) -> None:
    app = App()
    server = HTTPServer(("127.0.0.1", 0), handlers=[ASGIHandler(app)], access_log=None)
    with ServerThread([server], backend=backend):
        with socket.create_connection(("127.0.0.1", server.port), 10) as sock:
            sock.sendall(
                b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in range(5))
                + b"GET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            )
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        order = [
            json.loads(body[: body.index(b"}") + 1])["path"] for body in data.split(b"\r\n\r\n")[1:]
        ]
        assert order == ["/0", "/1", "/2", "/3", "/4", "/last"]


def test_an_application_blocking_the_loop_delays_everyone_but_serving_goes_on() -> None:
    app = App()
    server = HTTPServer(("127.0.0.1", 0), handlers=[ASGIHandler(app)], access_log=None)
    with ServerThread([server]):
        results: list[int] = []

        def fetch(path: str) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            conn.request("GET", path)
            results.append(conn.getresponse().status)
            conn.close()

        threads = [threading.Thread(target=fetch, args=(p,)) for p in ("/block", "/x", "/y")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(20)
        assert results == [200, 200, 200]
