"""Limits and timers over real sockets: 512-byte lines, flood control, connections per
address, channels per client, ping and registration timeouts, a client that stops
reading, and shutdown."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import irc.client  # type: ignore[import-untyped]
import pytest

from medusa.chat.server import ChatServer
from medusa.core.testing import ServerThread, wait_until

TIMEOUT = 10.0


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


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
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def register(sock: socket.socket, nick: str) -> bytes:
    sock.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n".encode())
    return read_until(sock, b" 422 ")


@pytest.fixture
def served() -> Iterator[ChatServer]:
    chat = ChatServer(
        ("127.0.0.1", 0),
        flood_rate=1,
        flood_burst=10,
        max_clients_per_address=3,
        max_channels_per_client=2,
    )
    with ServerThread([chat]):
        yield chat


def test_line_length(served: ChatServer) -> None:
    with connect(served.port) as sock:
        register(sock, "long")
        # 512 bytes with CR LF: accepted (the echo to oneself is cut to 512 bytes)
        text = b"x" * (510 - len(b"PRIVMSG long :"))
        sock.sendall(b"PRIVMSG long :" + text + b"\r\nPING :one\r\n")
        data = read_until(sock, b":one")
        assert b" 417 " not in data
        assert b"PRIVMSG long :xxxxxxxxxx" in data
        # 513 bytes: refused with 417, the connection goes on
        sock.sendall(b"PRIVMSG long :" + text + b"y\r\nPING :after\r\n")
        data = read_until(sock, b"PONG")
        assert b" 417 long :Input line was too long" in data
        assert b"y\r\n" not in data
        # a much longer line is not buffered whole
        sock.sendall(b"PRIVMSG long :" + b"z" * 100_000 + b"\r\nPING :again\r\n")
        data = read_until(sock, b":again")
        assert b" 417 " in data
        assert b"zzz" not in data


def test_flood_disconnects_with_error(served: ChatServer) -> None:
    with connect(served.port) as watcher, connect(served.port) as flooder:
        register(watcher, "watcher")
        watcher.sendall(b"JOIN #flood\r\n")
        read_until(watcher, b" 366 ")
        register(flooder, "flooder")  # 2 of the 10 tokens
        flooder.sendall(b"JOIN #flood\r\n")
        read_until(flooder, b" 366 ")
        flooder.sendall(b"PRIVMSG #flood :spam\r\n" * 30)
        data = read_to_eof(flooder)
        assert b"ERROR :Closing Link: 127.0.0.1 (Excess Flood)" in data
        seen = read_until(watcher, b"QUIT")
        assert b":flooder!flooder@127.0.0.1 QUIT :Excess Flood" in seen
        assert seen.count(b"PRIVMSG #flood :spam") < 10


def test_connections_per_address(served: ChatServer) -> None:
    socks = [connect(served.port) for _ in range(3)]
    try:
        for i, sock in enumerate(socks):
            register(sock, f"per{i}")
        with connect(served.port) as extra:
            assert b"too many connections from your address" in read_to_eof(extra)
        socks.pop().close()
        wait_until(lambda: len(served.channels) == 2, what="the close to be seen")
        with connect(served.port) as again:
            register(again, "per9")
    finally:
        for sock in socks:
            sock.close()


def test_channels_per_client(served: ChatServer) -> None:
    with connect(served.port) as sock:
        register(sock, "chans")
        sock.sendall(b"JOIN #a,#b,#c\r\n")
        data = read_until(sock, b" 405 ")
        assert b" 405 chans #c :You have joined too many channels" in data
        sock.sendall(b"PART #a\r\nJOIN #c\r\n")
        assert b"JOIN #c" in read_until(sock, b"JOIN #c")


def test_ping_timeout() -> None:
    chat = ChatServer(
        ("127.0.0.1", 0), ping_interval=0.2, ping_timeout=0.3, max_clients_per_address=5
    )
    with ServerThread([chat]):
        # the irc library answers PING: it stays
        reactor = irc.client.Reactor()
        pings: list[object] = []
        reactor.add_global_handler("ping", lambda c, e: pings.append(e))
        conn = reactor.server().connect("127.0.0.1", chat.port, "ponger")
        with connect(chat.port) as silent:
            register(silent, "silent")
            deadline = time.monotonic() + TIMEOUT
            while len(pings) < 4 and time.monotonic() < deadline:
                reactor.process_once(0.01)
            assert len(pings) >= 4
            # the raw client never answers: it gets PING, then the timeout
            data = read_to_eof(silent)
            assert b"PING medusa\r\n" in data
            assert b"ERROR :Closing Link: 127.0.0.1 (Ping timeout: " in data
        assert conn.is_connected()
        conn.disconnect()


def test_registration_timeout() -> None:
    chat = ChatServer(("127.0.0.1", 0), registration_timeout=0.2)
    with ServerThread([chat]), connect(chat.port) as sock:
        sock.sendall(b"NICK halfway\r\n")
        assert b"(Registration timed out)" in read_to_eof(sock)


def test_client_that_stops_reading_is_dropped() -> None:
    chat = ChatServer(
        ("127.0.0.1", 0),
        flood_rate=0,
        max_sendq=50,
        write_high_water=4096,
        write_low_water=1024,
    )
    with ServerThread([chat]), connect(chat.port) as talker:
        sleeper = socket.socket()
        sleeper.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sleeper.settimeout(TIMEOUT)
        sleeper.connect(("127.0.0.1", chat.port))
        with sleeper:
            register(sleeper, "sleeper")
            sleeper.sendall(b"JOIN #slow\r\n")
            read_until(sleeper, b" 366 ")
            register(talker, "talker")
            talker.sendall(b"JOIN #slow\r\n")
            read_until(talker, b" 366 ")
            line = b"PRIVMSG #slow :" + b"w" * 400 + b"\r\n"
            data = b""
            for i in range(500):  # sleeper does not read
                talker.sendall(line * 100 + f"PING :t{i}\r\n".encode())
                data += read_until(talker, f":t{i}\r\n".encode())
                if b"QUIT :SendQ exceeded" in data:
                    break
            assert b":sleeper!sleeper@127.0.0.1 QUIT :SendQ exceeded" in data


def test_shutdown_sends_error() -> None:
    chat = ChatServer(("127.0.0.1", 0))
    thread = ServerThread([chat]).start()
    try:
        with connect(chat.port) as sock:
            register(sock, "stayer")
            thread.stop()
            assert b"ERROR :Closing Link: 127.0.0.1 (Server shutting down)" in read_to_eof(sock)
    finally:
        thread.stop()
