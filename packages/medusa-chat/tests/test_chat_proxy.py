"""Chat behind a trusted proxy (PROXY protocol v1 and v2) over real sockets, on both event
loops: the client's address from the header is its host in WHOIS and in the prefix of its
JOIN lines, and ``max_clients_per_address`` counts it (not the proxy's address); the
simple mode takes the header too; a peer outside ``proxy_trusted`` that sends one is
closed."""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest

from medusa.chat.server import ChatServer
from medusa.core.options import ConfigError
from medusa.core.proxyprotocol import V2_SIGNATURE
from medusa.core.testing import ServerThread

TIMEOUT = 10.0


def v1(source: str) -> bytes:
    return f"PROXY TCP4 {source} 127.0.0.1 40000 6667\r\n".encode()


def v2(source: str) -> bytes:
    body = socket.inet_aton(source) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", 4, 6667)
    return V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", len(body)) + body


def connect(port: int, header: bytes = b"", source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(
        ("127.0.0.1", port), timeout=TIMEOUT, source_address=(source, 0)
    )
    if header:
        sock.sendall(header)
    return sock


def read_until(sock: socket.socket, needle: bytes) -> bytes:
    data = b""
    while needle not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    assert needle in data, data
    return data


def read_to_eof(sock: socket.socket) -> bytes:
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk


def register(sock: socket.socket, nick: str) -> bytes:
    sock.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
    return read_until(sock, b" 422 ")


@pytest.fixture(params=["asyncio", "uvloop"])
def served(request: pytest.FixtureRequest) -> Iterator[ChatServer]:
    chat = ChatServer(
        ("127.0.0.1", 0),
        flood_rate=0,
        max_clients_per_address=2,
        proxy_protocol=True,
        proxy_trusted=["127.0.0.1/32"],
        simple="127.0.0.1:0",
        web="127.0.0.1:0",
    )
    with ServerThread([chat], backend=request.param):
        yield chat


@pytest.mark.parametrize("header", [v1, v2])
def test_host_mask_from_header(served: ChatServer, header: object) -> None:
    make = header if callable(header) else v1
    with (
        connect(served.port, make("127.0.0.5")) as alice,
        connect(served.port, make("127.0.0.6")) as bob,
    ):
        register(alice, "alice")
        register(bob, "bob")
        bob.sendall(b"WHOIS alice\r\n")
        assert b" 311 bob alice alice 127.0.0.5 * alice" in read_until(bob, b" 318 ")
        alice.sendall(b"JOIN #room\r\n")
        read_until(alice, b" 366 ")
        bob.sendall(b"JOIN #room\r\n")
        read_until(bob, b" 366 ")
        assert b":bob!bob@127.0.0.6 JOIN #room" in read_until(alice, b"JOIN #room")


def test_connections_per_client_address(served: ChatServer) -> None:
    first = connect(served.port, v1("127.0.0.5"))
    second = connect(served.port, v2("127.0.0.5"))
    try:
        register(first, "one")
        register(second, "two")
        # A third from the same client is refused, though the proxy's address is shared.
        with connect(served.port, v1("127.0.0.5")) as third:
            assert b"too many connections from your address" in read_to_eof(third)
        # Another client through the same proxy is served.
        with connect(served.port, v1("127.0.0.6")) as other:
            register(other, "other")
    finally:
        first.close()
        second.close()


def test_simple_mode_takes_the_header(served: ChatServer) -> None:
    port = served.extra_port("simple")
    with connect(port, v1("127.0.0.5")) as simple, connect(served.port, v1("127.0.0.6")) as irc:
        read_until(simple, b"nickname: ")
        simple.sendall(b"carol\r\n")
        register(irc, "dave")
        irc.sendall(b"WHOIS carol\r\n")
        assert b" 311 dave carol " in (data := read_until(irc, b" 318 "))
        assert b" 127.0.0.5 " in data


def test_untrusted_peer_sending_header_closed(served: ChatServer) -> None:
    with connect(served.port, v1("127.0.0.5"), source="127.0.0.7") as sock:
        assert read_to_eof(sock) == b""
    with connect(served.port, source="127.0.0.7") as sock:
        register(sock, "direct")
        sock.sendall(b"WHOIS direct\r\n")
        assert b" 311 direct direct direct 127.0.0.7 " in read_until(sock, b" 318 ")


def test_configuration(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match=r"server\[0\]\.proxy_trusted: proxy_protocol"):
        ChatServer.from_config(
            {"proxy_protocol": True}, source="medusa.toml", prefix="server[0]", base_dir="/"
        )


def test_web_listener_takes_the_header_and_counts_the_client(served: ChatServer) -> None:
    port = served.extra_port("web")
    page = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with connect(port, v1("127.0.0.5") + page) as sock:
        assert read_to_eof(sock).startswith(b"HTTP/1.1 200 ")
    # Two IRC connections of 127.0.0.5 fill its quota; its web page request is refused,
    # another client's is served.
    first, second = connect(served.port, v1("127.0.0.5")), connect(served.port, v2("127.0.0.5"))
    try:
        register(first, "w1")
        register(second, "w2")
        with connect(port, v1("127.0.0.5") + page) as sock:
            assert b"too many connections from your address" in read_to_eof(sock)
        with connect(port, v1("127.0.0.6") + page) as sock:
            assert read_to_eof(sock).startswith(b"HTTP/1.1 200 ")
    finally:
        first.close()
        second.close()
