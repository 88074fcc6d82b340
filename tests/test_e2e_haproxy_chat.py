"""Chat behind a real HAProxy (Debian's haproxy 2.6, mode tcp, ``send-proxy`` and
``send-proxy-v2``) in front of ``medusa serve -c`` with ``proxy_protocol``: IRC clients
(the irc library and a raw socket) connect from 127.0.0.5 and 127.0.0.6; WHOIS and the
prefix of JOIN lines show those addresses, not HAProxy's 127.0.0.1, and
``max_clients_per_address`` counts each client, not the proxy. A peer outside
``proxy_trusted`` that sends a header is closed and logged; a truncated header closes the
connection without a traceback."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import irc.client  # type: ignore[import-untyped]
import irc.connection  # type: ignore[import-untyped]
import pytest
from tests.conftest import Medusa, Runner, wait_until
from tests.haproxy import free_port, haproxy, haproxy_config, tcp_relay

pytestmark = pytest.mark.e2e

TIMEOUT = 15.0
CLIENT = "127.0.0.5"
OTHER = "127.0.0.6"


def pump(reactor: Any, predicate: Any) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        reactor.process_once(0.01)


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


def connect(port: int, source: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), TIMEOUT, (source, 0))


@pytest.fixture(params=["send-proxy", "send-proxy-v2"])
def deployed(
    request: pytest.FixtureRequest, runner: Runner, tmp_path: Path
) -> Iterator[tuple[Medusa, int]]:
    config = tmp_path / "medusa.toml"
    config.write_text(
        '[[server]]\ntype = "chat"\nlisten = "127.0.0.1:0"\nflood_rate = 0\n'
        'max_clients_per_address = 2\nproxy_protocol = true\nproxy_trusted = ["127.0.0.1/32"]\n'
    )
    medusa = runner.start("serve", "-c", str(config), cwd=tmp_path)
    port = free_port()
    options = "proxy-v2-options crc32c" if request.param == "send-proxy-v2" else ""
    relay = tcp_relay(
        "chat",
        ("127.0.0.1", port),
        [("127.0.0.1", medusa.endpoint.port)],
        str(request.param),
        options,
    )
    with haproxy(haproxy_config(relay, timeout="60s"), tmp_path, [("127.0.0.1", port)]):
        yield medusa, port


def test_whois_and_join_show_the_client(deployed: tuple[Medusa, int]) -> None:
    medusa, port = deployed
    reactor = irc.client.Reactor()
    joins: list[Any] = []
    reactor.add_global_handler("join", lambda c, e: joins.append(e))
    factory = irc.connection.Factory(bind_address=(CLIENT, 0))
    alice = reactor.server().connect("127.0.0.1", port, "alice", connect_factory=factory)
    alice.join("#room")
    pump(reactor, lambda: any(e.source.nick == "alice" for e in joins))
    assert joins[0].source == f"alice!alice@{CLIENT}"  # alice's own JOIN echo
    with connect(port, OTHER) as bob:
        bob.sendall(b"NICK bob\r\nUSER bob 0 * :bob\r\nWHOIS alice\r\n")
        assert f" 311 bob alice alice {CLIENT} * ".encode() in read_until(bob, b" 318 ")
        bob.sendall(b"JOIN #room\r\n")
        read_until(bob, b" 366 ")
        pump(reactor, lambda: any(e.source.nick == "bob" for e in joins))
        assert [str(e.source) for e in joins if e.source.nick == "bob"] == [f"bob!bob@{OTHER}"]
    alice.disconnect()
    assert "Traceback" not in medusa.stderr()


def test_connections_counted_per_client(deployed: tuple[Medusa, int]) -> None:
    _, port = deployed
    first, second = connect(port, CLIENT), connect(port, CLIENT)
    try:
        for n, sock in enumerate((first, second)):
            sock.sendall(f"NICK c{n}\r\nUSER c 0 * :c\r\n".encode())
            read_until(sock, b" 422 ")
        with connect(port, CLIENT) as third:
            assert b"too many connections from your address" in read_to_eof(third)
        with connect(port, OTHER) as other:
            other.sendall(b"NICK other\r\nUSER o 0 * :o\r\n")
            read_until(other, b" 422 ")
    finally:
        first.close()
        second.close()


def test_bad_headers_straight_to_medusa(deployed: tuple[Medusa, int]) -> None:
    medusa, _ = deployed
    port = medusa.endpoint.port
    with connect(port, "127.0.0.7") as untrusted:
        untrusted.sendall(b"PROXY TCP4 1.2.3.4 127.0.0.1 1 6667\r\nNICK x\r\n")
        assert read_to_eof(untrusted) == b""
    wait_until(lambda: "not in proxy_trusted" in medusa.stderr(), "the refusal line")
    header = b"PROXY TCP4 127.0.0.5 127.0.0.1 4000 6667\r\n"
    for cut in range(len(header)):
        with connect(port, "127.0.0.1") as sock:
            sock.sendall(header[:cut])
            sock.shutdown(socket.SHUT_WR)
            assert read_to_eof(sock) == b"", cut
    wait_until(lambda: medusa.stderr().count("end of file") >= len(header) - 1, "EOF lines")
    assert "Traceback" not in medusa.stderr()
