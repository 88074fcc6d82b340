"""Python's :mod:`http.client` (and raw sockets for HTTP/1.0) against the example startup
script run by ``medusa run``: persistence rules and request bodies, on both loops.

* HTTP/1.1 keeps the connection for several requests; ``Connection: close`` is echoed and
  the server closes;
* HTTP/1.0 closes after the response unless the request says ``Connection: keep-alive``;
* request bodies with ``Content-Length`` and chunked, answered by the script's echo handler,
  and ``Expect: 100-continue``.
"""

from __future__ import annotations

import http.client
import random
from collections.abc import Iterator

import pytest
from tests.conftest import IO_TIMEOUT, Medusa, request_bytes, site_files

pytestmark = pytest.mark.e2e

FILES = site_files()


@pytest.fixture
def conn(example_server: Medusa) -> Iterator[http.client.HTTPConnection]:
    endpoint = example_server.endpoint
    connection = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=IO_TIMEOUT)
    try:
        yield connection
    finally:
        connection.close()


def test_keep_alive_many_requests(conn: http.client.HTTPConnection) -> None:
    names = ["hello.txt", "data.bin", "medium.bin", "big.bin", "index.html", "hello.txt"]
    conn.connect()
    sock = conn.sock
    for name in names:
        conn.request("GET", "/" + name)
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == FILES[name]
        assert not response.will_close
        assert conn.sock is sock, f"the connection was reopened before /{name}"
    conn.request("GET", "/missing")
    response = conn.getresponse()
    assert response.status == 404
    response.read()
    conn.request("HEAD", "/big.bin")
    response = conn.getresponse()
    assert response.status == 200
    assert response.read() == b""
    assert response.getheader("Content-Length") == str(len(FILES["big.bin"]))
    assert conn.sock is sock


def test_http11_connection_close_is_echoed(example_server: Medusa) -> None:
    endpoint = example_server.endpoint
    with endpoint.client() as client:
        client.get("/hello.txt", extra="Connection: close\r\n")
        response = client.read_response()
        assert response.status == 200
        assert response.body == FILES["hello.txt"]
        assert response.header("Connection") == "close"
        assert client.wait_closed() == b""


def test_http11_connection_close_with_http_client(conn: http.client.HTTPConnection) -> None:
    conn.request("GET", "/hello.txt", headers={"Connection": "close"})
    response = conn.getresponse()
    assert response.getheader("Connection") == "close"
    assert response.will_close
    assert response.read() == FILES["hello.txt"]


def test_http10_closes_by_default(example_server: Medusa) -> None:
    endpoint = example_server.endpoint
    with endpoint.client() as client:
        client.send(b"GET /hello.txt HTTP/1.0\r\n\r\n")
        response = client.read_response()
        assert response.status == 200
        assert response.body == FILES["hello.txt"]
        assert "keep-alive" not in (response.header("Connection") or "").lower()
        assert client.wait_closed() == b""


def test_http10_keep_alive(example_server: Medusa) -> None:
    endpoint = example_server.endpoint
    with endpoint.client() as client:
        for name in ("hello.txt", "data.bin", "medium.bin"):
            client.send(f"GET /{name} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".encode())
            response = client.read_response()
            assert response.status == 200
            assert response.body == FILES[name]
            assert (response.header("Connection") or "").lower() == "keep-alive"
            assert response.header("Content-Length") == str(len(FILES[name]))
        assert not client.closed_now(0.2)
        client.send(b"GET /hello.txt HTTP/1.0\r\n\r\n")
        assert client.read_response().body == FILES["hello.txt"]
        assert client.wait_closed() == b""


def test_post_content_length_echo(conn: http.client.HTTPConnection) -> None:
    body = random.Random(7).randbytes(100_000)
    conn.request("POST", "/echo", body=body, headers={"Content-Type": "application/x-test"})
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/x-test"
    assert response.read() == body


def test_put_chunked_echo(conn: http.client.HTTPConnection) -> None:
    pieces = [random.Random(i).randbytes(1000 + 37 * i) for i in range(40)]
    conn.request("PUT", "/echo", body=iter(pieces), encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 200
    assert response.read() == b"".join(pieces)
    # and the connection goes on
    conn.request("GET", "/hello.txt")
    response = conn.getresponse()
    assert response.read() == FILES["hello.txt"]


def test_chunked_body_then_next_request(example_server: Medusa) -> None:
    """A chunked body with extensions and a trailer, pipelined with the next request."""
    endpoint = example_server.endpoint
    with endpoint.client() as client:
        client.send(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"5;ext=1\r\nhello\r\n1\r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: yes\r\n\r\n"
            + request_bytes("GET", "/hello.txt", "x")
        )
        echoed = client.read_response()
        assert echoed.status == 200
        assert echoed.body == b"hello world!"
        following = client.read_response()
        assert following.status == 200
        assert following.body == FILES["hello.txt"]


def test_expect_100_continue(example_server: Medusa) -> None:
    endpoint = example_server.endpoint
    with endpoint.client() as client:
        client.send(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = client.read_response()
        assert interim.status == 100
        client.send(b"abcde")
        final = client.read_response()
        assert final.status == 200
        assert final.body == b"abcde"


def test_status_page_counts_requests(conn: http.client.HTTPConnection) -> None:
    def requests_served() -> int:
        conn.request("GET", "/status")
        response = conn.getresponse()
        assert response.status == 200
        text = response.read().decode()
        for line in text.splitlines():
            if line.strip().startswith("requests"):
                return int(line.split()[-1])
        raise AssertionError(f"no requests line in {text!r}")

    before = requests_served()
    for _ in range(3):
        conn.request("GET", "/hello.txt")
        conn.getresponse().read()
    assert requests_served() == before + 4


def test_echo_rejects_get(conn: http.client.HTTPConnection) -> None:
    conn.request("GET", "/echo")
    response = conn.getresponse()
    assert response.status == 405
    assert "POST" in (response.getheader("Allow") or "")
    response.read()
