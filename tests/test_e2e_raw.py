"""Raw sockets against ``medusa serve -c medusa.toml``: pipelining and every bad input.

The configuration runs two HTTP servers in one process: ``limits`` (``max_body_size =
1024``, other limits at their defaults: 8 KiB request-target, 64 KiB header block, 100
header fields), ``timeouts`` (``header_timeout = 0.5``, ``keepalive_timeout = 0.5``) and
``few`` (``max_connections = 2``).
Each bad input must get its status (400, 408, 413, 414, 431) and a close, and the server
must go on serving other clients afterwards.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import (
    Endpoint,
    Medusa,
    RawClient,
    Runner,
    request_bytes,
    site_files,
    wait_until,
)

pytestmark = pytest.mark.e2e

FILES = site_files()
HEADER_TIMEOUT = 0.5
KEEPALIVE_TIMEOUT = 0.5
MAX_BODY = 1024
MAX_CONNECTIONS = 2
HUGE_SIZE = 32 << 20
"""A file much larger than the kernel's socket buffers."""


@dataclass
class Servers:
    process: Medusa
    limits: Endpoint
    timeouts: Endpoint
    few: Endpoint


@pytest.fixture(scope="module")
def servers(
    backend: str, site: Path, module_runner: Runner, tmp_path_factory: pytest.TempPathFactory
) -> Servers:
    huge = site / "huge.bin"
    with open(huge, "wb") as f:
        for i in range(HUGE_SIZE >> 20):
            f.write(i.to_bytes(4, "big") * (1 << 18))
    config = tmp_path_factory.mktemp("config") / "medusa.toml"
    config.write_text(
        f"""
[medusa]
backend = "{backend}"
grace = 5
log_level = "warning"

[[server]]
type = "http"
listen = "127.0.0.1:0"
root = "{site}"
max_body_size = {MAX_BODY}
access_log = false

[[server]]
type = "http"
listen = "127.0.0.1:0"
root = "{site}"
header_timeout = {HEADER_TIMEOUT}
keepalive_timeout = {KEEPALIVE_TIMEOUT}
access_log = false

[[server]]
type = "http"
listen = "127.0.0.1:0"
root = "{site}"
max_connections = {MAX_CONNECTIONS}
access_log = false
"""
    )
    process = module_runner.start("serve", "-c", str(config), listening=3)
    limits, timeouts, few = process.endpoints
    return Servers(process, limits, timeouts, few)


def assert_serving(endpoint: Endpoint) -> None:
    """A new client gets a normal answer (the server carries on)."""
    with endpoint.client() as client:
        client.get("/hello.txt")
        response = client.read_response()
        assert response.status == 200
        assert response.body == FILES["hello.txt"]


def send_paced(client: RawClient, data: bytes, piece: int = 4096) -> None:
    """Send ``data`` in pieces as a slow network would deliver it, stopping early when the
    server answers or closes (it may reject the request before its end)."""
    for start in range(0, len(data), piece):
        try:
            client.send(data[start : start + piece])
        except (BrokenPipeError, ConnectionResetError):
            return
        if client.closed_or_data(0.01):
            return


def reject(endpoint: Endpoint, data: bytes, *, paced: bool = False) -> tuple[int, RawClient]:
    """Send ``data`` on a new connection (in one write, or ``paced`` in 4 KiB pieces);
    return the status of the one response and the client, after checking that the server
    closed the connection."""
    client = endpoint.client()
    try:
        if paced:
            send_paced(client, data)
        else:
            # rejected before the end of the data: the response is still there
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                client.send(data)
        response = client.read_response()
        assert response.closes, f"{response.status} without Connection: close"
        rest = client.wait_closed()
        assert rest == b"", f"data after the error response: {rest[:200]!r}"
    except BaseException:
        client.close()
        raise
    return response.status, client


# -- pipelining ------------------------------------------------------------------------------


def test_pipelined_requests_in_order(servers: Servers) -> None:
    endpoint = servers.limits
    host = endpoint.host_header
    plan = [
        ("GET", "/hello.txt", 200),
        ("GET", "/data.bin", 200),
        ("GET", "/missing", 404),
        ("HEAD", "/big.bin", 200),
        ("GET", "/docs/index.html", 200),
        ("GET", "/medium.bin", 200),
        ("DELETE", "/hello.txt", 405),
        ("GET", "/empty.txt", 200),
    ]
    with endpoint.client() as client:
        client.send(b"".join(request_bytes(m, t, host) for m, t, _ in plan))
        for method, target, status in plan:
            response = client.read_response(head=method == "HEAD")
            assert response.status == status, target
            if status == 200 and method == "GET":
                assert response.body == FILES[target[1:]], target
        assert not client.closed_now(0.1)


def test_pipelined_large_responses_in_order(servers: Servers) -> None:
    """Big files (producer / sendfile path) interleaved with small ones, ten in one write."""
    endpoint = servers.limits
    names = ["big.bin", "hello.txt", "docs/deep/blob.bin", "big.bin", "data.bin"] * 2
    data = b"".join(request_bytes("GET", "/" + n, endpoint.host_header) for n in names)
    with endpoint.client() as client:
        client.send(data)
        for name in names:
            response = client.read_response()
            assert response.status == 200
            assert response.body == FILES[name], name


def test_pipelined_connection_close_stops(servers: Servers) -> None:
    endpoint = servers.limits
    host = endpoint.host_header
    with endpoint.client() as client:
        client.send(
            request_bytes("GET", "/hello.txt", host)
            + request_bytes("GET", "/data.bin", host, headers=[("Connection", "close")])
            + request_bytes("GET", "/medium.bin", host)
        )
        assert client.read_response().body == FILES["hello.txt"]
        last = client.read_response()
        assert last.body == FILES["data.bin"]
        assert last.closes
        assert client.wait_closed() == b"", "a request after Connection: close was answered"


def test_pipelined_bodies_are_parsed(servers: Servers) -> None:
    """Requests with Content-Length and chunked bodies (to the file handler: 405) do not
    confuse the parsing of the requests after them."""
    endpoint = servers.limits
    host = endpoint.host_header
    chunked = (
        f"POST /hello.txt HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5\r\nGET /\r\n7\r\nx HTTP/\r\n0\r\n\r\n"
    ).encode()
    with endpoint.client() as client:
        client.send(
            request_bytes("POST", "/hello.txt", host, body=b"GET /data.bin HTTP/1.1\r\n\r\n")
            + request_bytes("GET", "/hello.txt", host)
            + chunked
            + request_bytes("GET", "/docs/guide.txt", host)
        )
        assert client.read_response().status == 405
        assert client.read_response().body == FILES["hello.txt"]
        assert client.read_response().status == 405
        assert client.read_response().body == FILES["docs/guide.txt"]
        assert not client.closed_now(0.1)


def test_pipelined_in_pieces(servers: Servers) -> None:
    """Three requests split at awkward places, one byte group per write."""
    endpoint = servers.limits
    host = endpoint.host_header
    data = b"".join(request_bytes("GET", f"/{n}", host) for n in ("hello.txt", "data.bin", "x"))
    with endpoint.client() as client:
        for start in range(0, len(data), 7):
            client.send(data[start : start + 7])
        assert client.read_response().body == FILES["hello.txt"]
        assert client.read_response().body == FILES["data.bin"]
        assert client.read_response().status == 404


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\nHost: x\r\n\r\n",
        b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
        b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(32) + b"\r\n\r\n",
        b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["garbage", "extra-token", "no-colon", "bad-length", "two-lengths", "tls", "bad-chunk"],
)
def test_malformed_request_400(servers: Servers, data: bytes) -> None:
    status, client = reject(servers.limits, data)
    client.close()
    assert status == 400
    assert_serving(servers.limits)


def test_malformed_after_good_request(servers: Servers) -> None:
    """A good request's response comes first, then the 400 and the close."""
    endpoint = servers.limits
    with endpoint.client() as client:
        client.send(request_bytes("GET", "/hello.txt", endpoint.host_header) + b"BAD\x01\r\n\r\n")
        assert client.read_response().body == FILES["hello.txt"]
        bad = client.read_response()
        assert bad.status == 400
        assert client.wait_closed() == b""
    assert_serving(endpoint)


def test_request_target_too_long_414(servers: Servers) -> None:
    target = "/" + "a" * 9000
    status, client = reject(servers.limits, request_bytes("GET", target, "x"))
    client.close()
    assert status == 414
    assert_serving(servers.limits)


def test_request_target_below_limit_accepted(servers: Servers) -> None:
    with servers.limits.client() as client:
        client.get("/" + "a" * 8000)
        assert client.read_response().status == 404


@pytest.mark.parametrize("paced", [False, True], ids=["one-write", "paced"])
def test_request_target_huge_414(servers: Servers, paced: bool) -> None:
    """A request line far over the limit (no CRLF at all): 414, not a hang or a reset."""
    status, client = reject(servers.limits, b"GET /" + b"b" * 100_000, paced=paced)
    client.close()
    assert status == 414
    assert_serving(servers.limits)


@pytest.mark.parametrize("paced", [False, True], ids=["one-write", "paced"])
def test_header_block_just_over_64k_431(servers: Servers, paced: bool) -> None:
    """66 fields of 1 KiB each: a header block a little over 64 KiB (but fewer than 100
    fields and with a short request line)."""
    headers = [(f"X-Filler-{i}", "v" * 1000) for i in range(66)]
    block = sum(len(f"{n}: {v}\r\n") for n, v in headers)
    assert 65536 < block < 70000
    data = request_bytes("GET", "/hello.txt", "x", headers=headers)
    status, client = reject(servers.limits, data, paced=paced)
    client.close()
    assert status == 431
    assert_serving(servers.limits)


@pytest.mark.parametrize("paced", [False, True], ids=["one-write", "paced"])
def test_header_block_huge_431(servers: Servers, paced: bool) -> None:
    """A 200 KB header block (50 fields of 4000 bytes)."""
    headers = [(f"X-Filler-{i}", "v" * 4000) for i in range(50)]
    data = request_bytes("GET", "/hello.txt", "x", headers=headers)
    status, client = reject(servers.limits, data, paced=paced)
    client.close()
    assert status == 431
    assert_serving(servers.limits)


def test_header_block_below_limit_accepted(servers: Servers) -> None:
    headers = [(f"X-Filler-{i}", "v" * 1000) for i in range(60)]
    with servers.limits.client() as client:
        client.send(request_bytes("GET", "/hello.txt", "x", headers=headers))
        response = client.read_response()
        assert response.status == 200
        assert response.body == FILES["hello.txt"]


def test_too_many_header_fields_431(servers: Servers) -> None:
    """Host and 100 more: 101 fields."""
    headers = [(f"X-F{i}", "1") for i in range(100)]
    status, client = reject(
        servers.limits, request_bytes("GET", "/hello.txt", "x", headers=headers)
    )
    client.close()
    assert status == 431
    assert_serving(servers.limits)


def test_too_many_repeated_header_fields_431(servers: Servers) -> None:
    """101 field lines with the same few names (well under 64 KiB): fields are counted as
    they are sent, not by distinct name."""
    headers = [("Cookie", f"c{i}=1") for i in range(60)] + [("X-Dup", "1")] * 60
    status, client = reject(
        servers.limits, request_bytes("GET", "/hello.txt", "x", headers=headers)
    )
    client.close()
    assert status == 431
    assert_serving(servers.limits)


def test_hundred_header_fields_accepted(servers: Servers) -> None:
    """Host and 99 more: exactly 100 fields."""
    headers = [(f"X-F{i}", "1") for i in range(99)]
    with servers.limits.client() as client:
        client.send(request_bytes("GET", "/hello.txt", "x", headers=headers))
        assert client.read_response().status == 200


def test_body_over_max_413(servers: Servers) -> None:
    """Content-Length over max_body_size: 413 from the head alone."""
    data = request_bytes("POST", "/hello.txt", "x", headers=[("Content-Length", "2048")])
    status, client = reject(servers.limits, data)
    client.close()
    assert status == 413
    assert_serving(servers.limits)


def test_chunked_body_over_max_413(servers: Servers) -> None:
    chunk = b"x" * 700
    data = (
        b"POST /hello.txt HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%b\r\n" % (len(chunk), chunk) * 2
        + b"0\r\n\r\n"
    )
    status, client = reject(servers.limits, data)
    client.close()
    assert status == 413
    assert_serving(servers.limits)


def test_body_at_max_accepted(servers: Servers) -> None:
    with servers.limits.client() as client:
        client.send(request_bytes("POST", "/hello.txt", "x", body=b"y" * MAX_BODY))
        client.get("/hello.txt")
        assert client.read_response().status == 405
        assert client.read_response().body == FILES["hello.txt"]


def test_slowloris_head_timeout_408(servers: Servers) -> None:
    """A head that never completes: 408 and a close after header_timeout, while other
    clients are served meanwhile."""
    endpoint = servers.timeouts
    with endpoint.client() as slow:
        started = time.monotonic()
        slow.send(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        assert_serving(endpoint)
        response = slow.read_response(timeout=15)
        elapsed = time.monotonic() - started
        assert response.status == 408
        assert slow.wait_closed(15) == b""
        assert elapsed >= HEADER_TIMEOUT * 0.9, "closed before header_timeout"
    assert_serving(endpoint)


def test_slowloris_trickle_408(servers: Servers) -> None:
    """A client that keeps sending a header one byte at a time never completes its head:
    the header timeout counts from the head's first byte, not from the last byte."""
    endpoint = servers.timeouts
    payload = b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
    with endpoint.client() as slow:
        started = time.monotonic()
        closed = False
        for byte in payload:
            try:
                slow.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if slow.closed_or_data(0.05):
                closed = True
                break
            assert time.monotonic() - started < 15, "not closed 15 s into a trickled head"
        assert closed, "the whole trickled head was accepted"
        response_bytes = slow.wait_closed(15)
        assert response_bytes.startswith(b"HTTP/1.1 408 "), response_bytes[:200]
    assert_serving(endpoint)


def test_idle_keepalive_closed(servers: Servers) -> None:
    endpoint = servers.timeouts
    with endpoint.client() as client:
        sent = time.monotonic()  # the server's last activity is after this
        client.get("/hello.txt")
        assert client.read_response().status == 200
        assert client.wait_closed(15) == b""
        assert time.monotonic() - sent >= KEEPALIVE_TIMEOUT * 0.9, "closed too early"
    assert_serving(endpoint)


def test_silent_connection_closed(servers: Servers) -> None:
    """A connection that never sends a byte is closed too (after the keep-alive timeout)."""
    endpoint = servers.timeouts
    with endpoint.client() as client:
        assert client.wait_closed(15) == b""
    assert_serving(endpoint)


def test_slow_reader_not_cut_by_keepalive_timeout(servers: Servers, site: Path) -> None:
    """A response in progress is not an idle keep-alive connection: a client that stops
    reading for longer than keepalive_timeout (here 4 times as long, while the server is
    blocked on a full socket) still gets the whole file once it reads again."""
    endpoint = servers.timeouts
    with endpoint.client(rcvbuf=65536) as client:
        client.get("/huge.bin")
        assert client.closed_or_data(15)
        assert client.buffer.startswith(b"HTTP/1.1 200 "), bytes(client.buffer[:100])
        time.sleep(KEEPALIVE_TIMEOUT * 4)  # the client under test is slow: not a sync
        response = client.read_response(timeout=60)
        assert len(response.body) == HUGE_SIZE
        assert response.body == (site / "huge.bin").read_bytes()
    assert_serving(endpoint)


def test_max_connections_refused_cleanly(servers: Servers) -> None:
    """Connections over max_connections get 503 with Retry-After and a close; once a slot
    is free, new connections are served again."""
    endpoint = servers.few
    holders = [endpoint.client() for _ in range(MAX_CONNECTIONS)]
    try:
        for holder in holders:  # each connection is accepted and served
            holder.get("/hello.txt")
            assert holder.read_response().status == 200
        status, extra = reject(endpoint, b"")
        extra.close()
        assert status == 503
        with endpoint.client() as another:
            assert another.wait_closed().startswith(b"HTTP/1.1 503 ")
        for holder in holders:  # the connections in use are not disturbed
            holder.get("/data.bin")
            assert holder.read_response().body == FILES["data.bin"]
    finally:
        holders.pop().close()

    def served() -> bool:
        with endpoint.client() as probe:
            probe.get("/hello.txt")
            return probe.read_response().status == 200

    try:
        wait_until(served, "a connection served after one was closed")
    finally:
        for holder in holders:
            holder.close()
