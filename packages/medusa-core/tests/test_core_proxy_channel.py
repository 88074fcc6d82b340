"""The PROXY protocol at the start of a channel (:class:`medusa.core.proxyreader.ProxyHeaderReader`)
on real sockets, on both loops: the peer becomes the header's source before
``handle_connect``; untrusted peers are served but refused when they send a header; a
malformed, truncated (at every byte, then EOF) or late header closes the connection with
one warning line and no traceback."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
from collections.abc import Iterator
from typing import Any

import pytest

from medusa.core.channel import Channel
from medusa.core.log import peer_text
from medusa.core.proxyprotocol import V2_SIGNATURE, crc32c
from medusa.core.server import Server
from medusa.core.testing import ServerThread, loop_backends, wait_until

TIMEOUT = 20.0

V1 = b"PROXY TCP4 192.0.2.5 127.0.0.1 40000 21\r\n"


@pytest.fixture(params=loop_backends())
def backend(request: pytest.FixtureRequest) -> str:
    """The event loop the test runs on."""
    return str(request.param)


def v2_header(tlvs: bytes = b"", command: int = 1) -> bytes:
    addresses = (
        socket.inet_aton("192.0.2.5")
        + socket.inet_aton("127.0.0.1")
        + struct.pack("!HH", 40000, 21)
    )
    body = addresses + tlvs
    return V2_SIGNATURE + bytes([0x20 | command, 0x11]) + struct.pack("!H", len(body)) + body


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack("!H", len(value)) + value


class GreetingChannel(Channel):
    """Greets with the peer at ``handle_connect`` (as FTP does), then echoes lines with
    the peer in front."""

    terminator = b"\n"

    def handle_connect(self) -> None:
        self.push(b"HELLO " + peer_text(self.peer).encode() + b"\n")

    def found_terminator(self) -> None:
        self.push(peer_text(self.peer).encode() + b" " + self.get_incoming() + b"\n")


class GreetingServer(Server):
    name = "greet"

    def make_channel(self) -> Channel:
        return GreetingChannel(self)


@contextlib.contextmanager
def serving(backend: str, **kwargs: Any) -> Iterator[tuple[ServerThread, GreetingServer]]:
    kwargs.setdefault("proxy_protocol", True)
    kwargs.setdefault("proxy_trusted", ["127.0.0.1/32"])
    server = GreetingServer(("127.0.0.1", 0), **kwargs)
    with ServerThread([server], backend=backend) as st:
        yield st, server


def connect(server: Server, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(
        ("127.0.0.1", server.port), timeout=TIMEOUT, source_address=(source, 0)
    )
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        piece = sock.recv(1)
        if not piece:
            break
        data += piece
    return data


def read_to_eof(sock: socket.socket) -> bytes:
    out = b""
    while True:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            return out
        if not piece:
            return out
        out += piece


def warnings(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "medusa" and r.levelno >= logging.WARNING]


@pytest.mark.parametrize("header", [V1, v2_header(), v2_header(tlv(0x05, b"id") + tlv(0x04, b""))])
def test_trusted_peer_header_sets_peer_before_connect(backend: str, header: bytes) -> None:
    with serving(backend) as (st, server), connect(server) as sock:
        # The greeting waits for the header; the header and a line arrive together.
        sock.sendall(header + b"one\n")
        assert read_line(sock) == b"HELLO 192.0.2.5:40000\n"
        assert read_line(sock) == b"192.0.2.5:40000 one\n"
        channel = st.call(lambda: next(iter(server.channels)))
        assert channel.proxy_header is not None
        assert channel.proxy_header.source == ("192.0.2.5", 40000)
        assert st.call(lambda: channel.bytes_in) == len(header) + 4


def test_header_in_pieces_byte_by_byte(backend: str) -> None:
    with serving(backend) as (_st, server), connect(server) as sock:
        header = v2_header(tlv(0x02, b"example.com"))
        for byte in header:
            sock.sendall(bytes([byte]))
        sock.sendall(b"two\n")
        assert read_line(sock) == b"HELLO 192.0.2.5:40000\n"
        assert read_line(sock) == b"192.0.2.5:40000 two\n"


def test_local_command_keeps_the_real_peer(backend: str) -> None:
    with serving(backend) as (_st, server), connect(server) as sock:
        port = sock.getsockname()[1]
        sock.sendall(v2_header(command=0))
        assert read_line(sock) == b"HELLO 127.0.0.1:%d\n" % port


def test_crc32c_tlv_accepted_and_checked(backend: str, caplog: pytest.LogCaptureFixture) -> None:
    header = v2_header(tlv(0x03, b"\0\0\0\0"))
    header = header[:-4] + crc32c(header).to_bytes(4, "big")
    with serving(backend) as (_st, server):
        with connect(server) as sock:
            sock.sendall(header)
            assert read_line(sock) == b"HELLO 192.0.2.5:40000\n"
        with connect(server) as sock:
            sock.sendall(header[:-1] + bytes([header[-1] ^ 0xFF]))
            assert read_to_eof(sock) == b""
    assert any("CRC32C" in r.getMessage() for r in warnings(caplog))


def test_untrusted_peer_served_without_header(backend: str) -> None:
    with serving(backend, proxy_trusted=["10.0.0.0/8"]) as (_st, server), connect(server) as sock:
        port = sock.getsockname()[1]
        assert read_line(sock) == b"HELLO 127.0.0.1:%d\n" % port  # greeted at once
        sock.sendall(b"P")  # could begin a header: held until it cannot
        sock.sendall(b"UT x\n")
        assert read_line(sock) == b"127.0.0.1:%d PUT x\n" % port
        sock.sendall(b"PROXY later lines are data\n")
        assert read_line(sock) == b"127.0.0.1:%d PROXY later lines are data\n" % port


@pytest.mark.parametrize("header", [V1, v2_header(), V1[:6], V2_SIGNATURE])
def test_untrusted_peer_sending_a_header_is_closed(
    backend: str, header: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with serving(backend, proxy_trusted=["10.0.0.0/8"]) as (st, server), connect(server) as sock:
        assert read_line(sock).startswith(b"HELLO 127.0.0.1:")
        sock.sendall(header + b"one\n")
        assert read_to_eof(sock) == b""
        wait_until(lambda: st.call(lambda: server.counters.active) == 0, TIMEOUT, "unregister")
    lines = [r.getMessage() for r in warnings(caplog)]
    assert len(lines) == 1
    assert "not in proxy_trusted" in lines[0]
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.parametrize("header", [V1, v2_header(tlv(0x05, b"abc"))])
def test_truncated_at_every_byte_then_eof(
    backend: str, header: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with serving(backend) as (st, server):
        for cut in range(len(header)):
            with connect(server) as sock:
                if cut:
                    sock.sendall(header[:cut])
                sock.shutdown(socket.SHUT_WR)
                assert read_to_eof(sock) == b"", cut  # no greeting: no header
        wait_until(lambda: st.call(lambda: server.counters.active) == 0, TIMEOUT, "unregister")
        assert st.call(lambda: server.counters.errors) == len(header)
    lines = [r.getMessage() for r in warnings(caplog)]
    assert len(lines) == len(header)
    assert all("end of file" in line for line in lines)
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\n\r\n",
        b"PROXY TCP4 1.2.3.4 1.2.3.5 1 99999\r\n",
        b"PROXY UNKNOWN " + b"x" * 200,
        V2_SIGNATURE + b"\x21\x11\xff\xff" + b"\0" * 100,
        b"\x16\x03\x01\x00\xa5\x01",
    ],
)
def test_malformed_or_oversize_header_closes(
    backend: str, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with serving(backend) as (_st, server), connect(server) as sock:
        sock.sendall(data)
        assert read_to_eof(sock) == b""
    lines = [r.getMessage() for r in warnings(caplog)]
    assert len(lines) == 1
    assert "bad PROXY header" in lines[0]
    assert "127.0.0.1:" in lines[0]
    assert not any(r.exc_info for r in caplog.records)


def test_no_header_within_timeout_closes(backend: str, caplog: pytest.LogCaptureFixture) -> None:
    with (
        serving(backend, proxy_timeout=0.2, idle_timeout=0) as (_st, server),
        connect(server) as sock,
    ):
        sock.sendall(V1[:10])
        assert read_to_eof(sock) == b""
    lines = [r.getMessage() for r in warnings(caplog)]
    assert len(lines) == 1
    assert "no complete PROXY header within 0.2 s" in lines[0]


def test_off_by_default_a_header_is_data(backend: str) -> None:
    server = GreetingServer(("127.0.0.1", 0))
    with ServerThread([server], backend=backend), connect(server) as sock:
        port = sock.getsockname()[1]
        assert read_line(sock) == b"HELLO 127.0.0.1:%d\n" % port
        sock.sendall(V1[:-2] + b"\n")
        assert read_line(sock) == b"127.0.0.1:%d %b\n" % (port, V1[:-2])


def test_shutdown_while_waiting_for_a_header(backend: str) -> None:
    with serving(backend) as (st, server):
        sock = connect(server)
        sock.sendall(V1[:5])
        wait_until(
            lambda: (
                st.call(lambda: server.counters.bytes_in) == 0
                and st.call(lambda: server.counters.active) == 1
            ),
            TIMEOUT,
        )
    with sock:
        assert read_to_eof(sock) == b""


def test_reset_in_the_middle_of_a_header_logs_one_line(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A trusted peer that resets its connection after part of a header: one warning line
    (it used to leave none), no traceback."""
    with serving(backend) as (st, server):
        with connect(server) as sock:
            sock.sendall(V1[:20])
            wait_until(lambda: st.call(lambda: len(server.channels)) == 1, TIMEOUT, "accepted")
            channel = st.call(lambda: next(iter(server.channels)))
            wait_until(
                lambda: st.call(lambda: channel.last_activity > channel.connected_at),
                TIMEOUT,
                "the bytes read",
            )
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        wait_until(lambda: st.call(lambda: server.counters.errors) == 1, TIMEOUT, "the line")
    lines = [r.getMessage() for r in warnings(caplog)]
    assert len(lines) == 1
    assert "connection lost after 20 bytes of a PROXY header" in lines[0]
    assert not any(r.exc_info for r in caplog.records)
