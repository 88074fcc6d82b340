"""WSGI hosting (PEP 3333, medusa.http.wsgi) over real sockets with http.client and raw
sockets, on both loops: the environ, the streamed ``wsgi.input`` (large, chunked, lines,
back-pressure), ``start_response`` with ``exc_info``, the ``write()`` callable, ``close()``
at every end, errors, and the bound of the thread pool."""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from medusa.core.testing import ServerThread, loop_backends, wait_until
from medusa.http import HTTPServer, StatusHandler
from medusa.http.wsgi import WSGIHandler
from medusa.http.wsgiinput import INPUT_LIMIT

App = Callable[..., Any]


@pytest.fixture(params=loop_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Served:
    """A WSGI application served on 127.0.0.1."""

    def __init__(self, app: App, backend: str, **options: Any) -> None:
        self.handler = WSGIHandler(app, **options)
        self.server = HTTPServer(("127.0.0.1", 0), handlers=[self.handler], access_log=None)
        self.thread = ServerThread([self.server], backend=backend)

    def __enter__(self) -> Served:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.stop()

    @property
    def port(self) -> int:
        return self.server.port

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def get(self, path: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
        connection = self.connect()
        try:
            connection.request(kwargs.pop("method", "GET"), path, **kwargs)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


# -- environ ---------------------------------------------------------------------------------

ENVIRON_KEYS = (
    "REQUEST_METHOD",
    "SCRIPT_NAME",
    "PATH_INFO",
    "QUERY_STRING",
    "CONTENT_TYPE",
    "CONTENT_LENGTH",
    "SERVER_NAME",
    "SERVER_PORT",
    "SERVER_PROTOCOL",
    "REMOTE_ADDR",
    "HTTP_X_TWICE",
    "HTTP_X_UNDER",
    "RAW_URI",
    "wsgi.url_scheme",
    "wsgi.multithread",
    "wsgi.multiprocess",
    "wsgi.run_once",
    "wsgi.version",
)


def environ_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    shown = {key: environ.get(key) for key in ENVIRON_KEYS}
    shown["remote_port_is_digits"] = environ["REMOTE_PORT"].isdigit()
    shown["under"] = [key for key in environ if "UNDER" in key]
    shown["input_type"] = type(environ["wsgi.input"]).__name__
    shown["file_wrapper"] = callable(environ["wsgi.file_wrapper"])
    environ["wsgi.errors"].write("an error line\nand a half")
    environ["wsgi.errors"].flush()
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(shown).encode()]


def test_environ(backend: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="medusa.http.wsgi")
    with Served(environ_app, backend, prefix="/app") as served:
        connection = served.connect()
        connection.putrequest("POST", "/app/caf%C3%A9/x?q=1&r=%20", skip_host=True)
        connection.putheader("Host", "example.test:8080")
        connection.putheader("Content-Type", "text/plain")
        connection.putheader("Content-Length", "2")
        connection.putheader("X-Twice", "a")
        connection.putheader("X-Twice", "b")
        connection.putheader("X_Under", "dropped")
        connection.endheaders(b"hi")
        response = connection.getresponse()
        assert response.status == 200
        shown = json.loads(response.read())
        connection.close()
        # Not under the prefix: not the application's.
        assert served.get("/application")[0] == 404
    assert shown["REQUEST_METHOD"] == "POST"
    assert shown["SCRIPT_NAME"] == "/app"
    assert shown["PATH_INFO"] == "/caf\u00c3\u00a9/x"  # the bytes as Latin-1 (PEP 3333)
    assert shown["QUERY_STRING"] == "q=1&r=%20"
    assert shown["RAW_URI"] == "/app/caf%C3%A9/x?q=1&r=%20"
    assert shown["CONTENT_TYPE"] == "text/plain"
    assert shown["CONTENT_LENGTH"] == "2"
    assert shown["SERVER_NAME"] == "example.test"
    assert shown["SERVER_PORT"] == "8080"
    assert shown["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert shown["REMOTE_ADDR"] == "127.0.0.1"
    assert shown["remote_port_is_digits"]
    assert shown["HTTP_X_TWICE"] == "a, b"
    assert shown["under"] == []  # gunicorn's rule: names with "_" are dropped
    assert shown["wsgi.url_scheme"] == "http"
    assert shown["wsgi.multithread"] is True
    assert shown["wsgi.multiprocess"] is False
    assert shown["wsgi.run_once"] is False
    assert shown["wsgi.version"] == [1, 0]
    assert shown["input_type"] == "WSGIInput"
    assert shown["file_wrapper"]
    lines = [r.getMessage() for r in caplog.records if r.name == "medusa.http.wsgi"]
    assert lines == ["an error line", "and a half"]


def test_environ_without_host_and_body(backend: str) -> None:
    """An HTTP/1.0 request without Host: SERVER_NAME/PORT from the socket, empty input."""
    with Served(environ_app, backend) as served:
        port = served.port
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /x HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    shown = json.loads(body)
    assert shown["SERVER_NAME"] == "127.0.0.1"
    assert shown["SERVER_PORT"] == str(port)
    assert shown["SERVER_PROTOCOL"] == "HTTP/1.0"
    assert shown["input_type"] == "_EmptyInput"
    assert shown["CONTENT_LENGTH"] is None


# -- wsgi.input ------------------------------------------------------------------------------


class Digest:
    """Reads the body in 4 KiB reads; records the most bytes received and not yet read."""

    def __init__(self) -> None:
        self.most_ahead = 0
        self.go = threading.Event()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        stream = environ["wsgi.input"]
        assert self.go.wait(30)
        digest = hashlib.sha256()
        read = 0
        while data := stream.read(4096):
            digest.update(data)
            read += len(data)
            self.most_ahead = max(self.most_ahead, stream.received - read)
        start_response("200 OK", [("Content-Type", "text/plain")])
        length = environ.get("CONTENT_LENGTH", "none")
        return [f"{digest.hexdigest()} {read} {length}".encode()]


def test_large_upload_streamed_with_back_pressure(backend: str) -> None:
    """A 16 MiB upload to an application that does not read yet: the server stops reading
    after about INPUT_LIMIT bytes (the client's sends block), then the whole body arrives
    intact (checked by digest), never more than about INPUT_LIMIT bytes ahead."""
    body = os.urandom(16 << 20)
    app = Digest()
    with Served(app, backend) as served:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)  # bounds the kernel's part
        sock.settimeout(10)
        sock.connect(("127.0.0.1", served.port))
        sock.sendall(b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body))
        sock.settimeout(0.5)
        sent = 0
        blocked = False
        while sent < len(body) and not blocked:
            try:
                sent += sock.send(body[sent : sent + 65536])
            except TimeoutError:
                blocked = True
        assert blocked, "the server read the whole body into memory"
        # The kernel's buffers hold the rest: well under the 16 MiB.
        assert sent < len(body)
        app.go.set()
        sock.settimeout(10)
        sock.sendall(body[sent:])
        response = http.client.HTTPResponse(sock)
        response.begin()
        answer = response.read().decode()
        sock.close()
    assert answer == f"{hashlib.sha256(body).hexdigest()} {len(body)} {len(body)}"
    # One socket read may land after the pause: up to 256 KiB on the loops.
    assert app.most_ahead <= INPUT_LIMIT + (256 << 10)


def test_chunked_upload(backend: str) -> None:
    pieces = [os.urandom(n) for n in (1, 70000, 3, 200000, 5)]
    app = Digest()
    app.go.set()
    with Served(app, backend) as served:
        status, _, answer = served.get("/c", method="POST", body=iter(pieces), encode_chunked=True)
    whole = b"".join(pieces)
    assert status == 200
    assert answer.decode() == f"{hashlib.sha256(whole).hexdigest()} {len(whole)} none"


def lines_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    stream = environ["wsgi.input"]
    got = [stream.readline(), stream.readline(2), stream.readline()]
    got.append(next(iter(stream)))
    got.extend(stream.readlines())
    got.append(stream.read())
    got.append(stream.readline())
    start_response("200 OK", [])
    return [json.dumps([line.decode() for line in got]).encode()]


def test_readline_and_iteration(backend: str) -> None:
    pieces = [b"one\ntw", b"o\nthr", b"ee\n", b"four\nfive\n", b"si", b"x"]
    with Served(lines_app, backend) as served:
        status, _, answer = served.get("/l", method="POST", body=iter(pieces), encode_chunked=True)
    assert status == 200
    assert json.loads(answer) == [
        "one\n",
        "tw",
        "o\n",
        "three\n",
        "four\n",
        "five\n",
        "six",
        "",
        "",
    ]


def test_unread_body_is_discarded(backend: str) -> None:
    """An application that reads none of a body: the connection stays usable."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [])
        return [b"ignored " + environ["PATH_INFO"].encode()]

    with Served(app, backend, input_limit=1024) as served:
        connection = served.connect()
        for path in ("/a", "/b"):
            connection.request("POST", path, body=b"x" * 300_000)
            response = connection.getresponse()
            assert response.read() == b"ignored " + path.encode()
        connection.request("GET", "/c")
        assert connection.getresponse().read() == b"ignored /c"
        connection.close()


# -- start_response, write() -----------------------------------------------------------------


def exc_info_app(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ["PATH_INFO"]
    if path == "/replaced":
        start_response("200 OK", [("X-First", "1")])
        try:
            raise ValueError("the application failed")
        except ValueError:
            start_response(
                "503 Service Unavailable", [("Content-Type", "text/plain")], sys.exc_info()
            )
        return [b"sorry"]
    if path == "/twice":
        start_response("200 OK", [])
        start_response("200 OK", [])
        return [b"never"]

    def late() -> Iterator[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"begun "
        try:
            raise KeyError("late")
        except KeyError:
            start_response("500 Internal Server Error", [], sys.exc_info())
        yield b"never"

    return late()


def test_start_response_exc_info(backend: str, caplog: pytest.LogCaptureFixture) -> None:
    with Served(exc_info_app, backend) as served:
        status, headers, body = served.get("/replaced")
        assert (status, body) == (503, b"sorry")
        assert "X-First" not in headers
        # Twice without exc_info: the application's error, a 500 with a traceback.
        status, _, _ = served.get("/twice")
        assert status == 500
        assert any("again without exc_info" in r.getMessage() or r.exc_info for r in caplog.records)
        # After the head went out, exc_info re-raises: the response is cut.
        connection = served.connect()
        connection.request("GET", "/late")
        response = connection.getresponse()
        assert response.status == 200
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
        assert cut.value.partial == b"begun "
        connection.close()
        assert served.get("/replaced")[0] == 503  # still serving
    logged = [r for r in caplog.records if r.exc_info and "KeyError" in repr(r.exc_info[1])]
    assert logged


def write_app(environ: dict[str, Any], start_response: Any) -> Any:
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    write(b"written ")
    write(b"twice, ")
    return iter([b"then ", b"", b"returned"])


def test_write_callable(backend: str) -> None:
    with Served(write_app, backend) as served:
        status, headers, body = served.get("/w")
    assert status == 200
    assert body == b"written twice, then returned"
    assert headers.get("Transfer-Encoding") == "chunked" or "Content-Length" in headers


def test_content_length_honoured(backend: str) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        start_response("200 OK", [("Content-Length", "10"), ("Connection", "close")])
        yield b"01234"
        yield b"56789"

    with Served(app, backend) as served:
        status, headers, body = served.get("/")
    assert (status, body) == (200, b"0123456789")
    assert headers["Content-Length"] == "10"
    assert headers["Connection"] == "close"
    assert "Transfer-Encoding" not in headers


def big_app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield b"a" * 70000  # past the output window: the head leaves before the end
    yield b"end"


def test_streamed_response_framing(backend: str) -> None:
    """Without a Content-Length: chunked over HTTP/1.1, ended by a close over HTTP/1.0."""
    with Served(big_app, backend) as served:
        status, headers, body = served.get("/")
        assert (status, headers["Transfer-Encoding"]) == (200, "chunked")
        assert body == b"a" * 70000 + b"end"
        with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Connection: close" in head
    assert b"Content-Length" not in head
    assert body == b"a" * 70000 + b"end"


# -- close(), errors, the pool ---------------------------------------------------------------


class Closing:
    """A response iterable recording its close(): ``fail`` raises after ``count`` pieces;
    ``count`` None yields forever."""

    def __init__(self, count: int | None, fail: bool = False) -> None:
        self.count = count
        self.fail = fail
        self.closed = threading.Event()
        self.given = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.count is None or self.given < self.count:
            self.given += 1
            yield b"x" * 1024
        if self.fail:
            raise RuntimeError("the iterator failed midway")

    def close(self) -> None:
        self.closed.set()


def test_close_called_on_every_end(backend: str, caplog: pytest.LogCaptureFixture) -> None:
    iterables: dict[str, Closing] = {}

    def app(environ: dict[str, Any], start_response: Any) -> Closing:
        path = environ["PATH_INFO"]
        iterable = iterables[path] = {
            "/normal": Closing(3),
            "/error": Closing(200, fail=True),
            "/forever": Closing(None),
        }[path]
        start_response("200 OK", [("Content-Type", "text/plain")])
        return iterable

    with Served(app, backend) as served:
        status, _, body = served.get("/normal")
        assert (status, len(body)) == (200, 3072)
        wait_until(iterables["/normal"].closed.is_set, what="close() after a normal end")
        # An iterator raising midway: the response is cut, logged, close() called.
        connection = served.connect()
        connection.request("GET", "/error")
        response = connection.getresponse()
        with pytest.raises(http.client.IncompleteRead):
            response.read()
        connection.close()
        wait_until(iterables["/error"].closed.is_set, what="close() after an error")
        # The client leaves in the middle of an endless response.
        sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
        sock.sendall(b"GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096)
        sock.close()
        wait_until(iterables["/forever"].closed.is_set, what="close() after a disconnect")
        # The pool and the server are still there.
        assert served.get("/normal")[0] == 200
    failures = [r for r in caplog.records if r.exc_info and "midway" in str(r.exc_info[1])]
    assert len(failures) == 1


def test_error_before_response(backend: str, caplog: pytest.LogCaptureFixture) -> None:
    calls = 0

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        nonlocal calls
        calls += 1
        if environ["PATH_INFO"] == "/bad":
            raise LookupError("no such thing")
        if environ["PATH_INFO"] == "/badhead":
            start_response("200 OK", [("X-Bad", "a\r\nInjected: yes")])
        if environ["PATH_INFO"] == "/short":
            start_response("200 OK", [("Content-Length", "100")])
            return [b"short"]
        start_response("200 OK", [])
        return [b"fine"]

    with Served(app, backend, threads=1) as served:
        connection = served.connect()
        for path in ("/bad", "/badhead", "/short"):
            connection = served.connect()
            connection.request("GET", path)
            response = connection.getresponse()
            assert response.status == 500, path
            assert b"Injected" not in response.read()
            connection.close()
        assert served.get("/good")[2] == b"fine"
    messages = [str(r.exc_info[1]) for r in caplog.records if r.exc_info]
    assert any("no such thing" in m for m in messages)
    assert any("CR, LF" in m for m in messages)
    assert any("Content-Length says 100" in m for m in messages)


def test_status_page_counts_the_application(backend: str) -> None:
    """The status page shows the application's own counters: requests, errors, threads
    (issue 17: per-application counters)."""

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/bad":
            raise LookupError("no such thing")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"fine"]

    handler = WSGIHandler(app, prefix="/app", threads=3)
    server = HTTPServer(
        ("127.0.0.1", 0), handlers=[StatusHandler("/status"), handler], access_log=None
    )
    with ServerThread([server], backend=backend):
        for path, status in (("/app/good", 200), ("/app/bad", 500), ("/app/good", 200)):
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
            connection.request("GET", path)
            assert connection.getresponse().status == status
            connection.close()
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("GET", "/status?format=json")
        document = json.loads(connection.getresponse().read())
        connection.request("GET", "/status")
        page = connection.getresponse().read().decode()
        connection.close()
    [row] = document["servers"][0]["applications"]
    assert row["handler"].startswith("<WSGIHandler ")
    assert (row["requests"], row["errors"], row["threads"], row["waiting"]) == (3, 1, 3, 0)
    assert "<h3>Applications</h3>" in page
    assert "<th>requests</th>" in page


def test_pool_bound(backend: str) -> None:
    """threads + 1 slow requests: the last waits for a thread, then all are answered."""
    entered: list[str] = []
    release = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        entered.append(environ["PATH_INFO"])
        assert release.wait(30)
        start_response("200 OK", [])
        return [environ["PATH_INFO"].encode()]

    results: dict[str, bytes] = {}
    with Served(app, backend, threads=2) as served:

        def fetch(path: str) -> None:
            results[path] = served.get(path)[2]

        clients = [threading.Thread(target=fetch, args=(f"/{n}",)) for n in range(3)]
        for client in clients:
            client.start()
        counters = served.server.counters
        wait_until(lambda: counters.requests == 3 and len(entered) == 2, what="two running")
        with pytest.raises(TimeoutError):
            wait_until(lambda: len(entered) > 2, timeout=0.5)
        assert served.handler.pool.busy == 2
        release.set()
        for client in clients:
            client.join(10)
    assert results == {"/0": b"/0", "/1": b"/1", "/2": b"/2"}


def test_request_in_flight_finishes_at_stop(backend: str) -> None:
    """The server's graceful stop waits for a response the application is still making."""
    started = threading.Event()
    release = threading.Event()

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        started.set()
        assert release.wait(30)
        start_response("200 OK", [])
        return [b"finished"]

    served = Served(app, backend)
    served.__enter__()
    results: list[tuple[int, dict[str, str], bytes]] = []
    client = threading.Thread(target=lambda: results.append(served.get("/")))
    client.start()
    assert started.wait(10)
    stopper = threading.Thread(target=served.thread.stop)
    stopper.start()
    with pytest.raises(TimeoutError):  # the stop waits for the response in flight
        wait_until(lambda: not stopper.is_alive(), timeout=0.5)
    release.set()
    stopper.join(30)
    client.join(10)
    assert not stopper.is_alive()
    assert [(status, body) for status, _, body in results] == [(200, b"finished")]
    assert served.handler.pool.alive == 0  # the stop hook ended the threads


def test_head_and_no_body_statuses(backend: str) -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] == "/204":
            start_response("204 No Content", [("X-A", "1")])
            return []
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else [b"hello"]

    with Served(app, backend) as served:
        connection = served.connect()
        connection.request("HEAD", "/")
        response = connection.getresponse()
        assert (response.status, response.getheader("Content-Length")) == (200, "5")
        assert response.read() == b""
        connection.request("GET", "/204")
        response = connection.getresponse()
        assert (response.status, response.getheader("X-A")) == (204, "1")
        assert response.read() == b""
        connection.request("GET", "/")
        assert connection.getresponse().read() == b"hello"
        connection.close()


def test_pipelined_requests_answered_in_order(backend: str) -> None:
    """Three pipelined requests run in three threads; the first finishes last, and the
    answers still leave in request order (RFC 9112 §9.3.2)."""
    first_may_answer = threading.Event()
    answered: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> Iterator[bytes]:
        path = environ["PATH_INFO"]
        if path == "/1":
            assert first_may_answer.wait(30)
        start_response("200 OK", [("Content-Type", "text/plain")])
        answered.append(path)
        if path == "/3":
            first_may_answer.set()
        yield path.encode() * 3

    requests = b"".join(b"GET /%d HTTP/1.1\r\nHost: x\r\n\r\n" % n for n in (1, 2, 3))
    data = b""
    with (
        Served(app, backend, threads=3) as served,
        socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock,
    ):
        sock.sendall(requests)
        while data.count(b"HTTP/1.1 200 OK") < 3 or b"/3/3/3" not in data:
            data += sock.recv(65536)
    assert data.index(b"/1/1/1") < data.index(b"/2/2/2") < data.index(b"/3/3/3")
    assert answered[0] != "/1"
