"""A 1,000-client room: 1,000 raw IRC connections and three irc-library clients in one
channel; every message reaches every member, and the room empties cleanly."""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable
from typing import Any

import irc.client  # type: ignore[import-untyped]
import pytest

from medusa.chat.server import ChatServer
from medusa.core.testing import ServerThread, wait_until

CLIENTS = 1000
TIMEOUT = 60.0


class Crowd:
    """Many raw connections read through one selector; each keeps what it received."""

    def __init__(self, port: int, count: int) -> None:
        self.selector = selectors.DefaultSelector()
        self.socks: list[socket.socket] = []
        self.data: dict[int, bytearray] = {}
        for i in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
            sock.setblocking(False)
            sock.sendall(f"NICK room{i}\r\nUSER r{i} 0 * :member {i}\r\nJOIN #room\r\n".encode())
            self.socks.append(sock)
            self.data[sock.fileno()] = bytearray()
            self.selector.register(sock, selectors.EVENT_READ)
            if i % 50 == 49:
                self.drain(0)

    def drain(self, timeout: float) -> set[int]:
        """Read what arrived; return the descriptors that got data."""
        fresh: set[int] = set()
        for key, _ in self.selector.select(timeout):
            sock: Any = key.fileobj
            try:
                chunk = sock.recv(262144)
            except BlockingIOError:
                continue
            self.data[sock.fileno()] += chunk
            fresh.add(sock.fileno())
        return fresh

    def wait_all(self, needles: Callable[[int], list[bytes]], what: str) -> None:
        """Wait until client ``i`` received every line of ``needles(i)``; then forget what
        was received (the next phase starts from nothing)."""
        deadline = time.monotonic() + TIMEOUT
        index = {s.fileno(): i for i, s in enumerate(self.socks)}
        wanted = {fd: needles(i) for fd, i in index.items()}
        pending = set(wanted)
        fresh = set(pending)
        scanned: dict[int, int] = {}
        while True:
            for fd in fresh & pending:
                buffer = self.data[fd]
                start = max(0, scanned.get(fd, 0) - 600)  # a line is at most 512 bytes
                left = [n for n in wanted[fd] if buffer.find(n, start) < 0]
                scanned[fd] = len(buffer)
                if len(left) < len(wanted[fd]):
                    wanted[fd] = left
                if not left:
                    pending.discard(fd)
            if not pending:
                break
            assert time.monotonic() < deadline, f"{len(pending)} clients still wait for {what}"
            fresh = self.drain(0.05)
        for fd in self.data:
            self.data[fd] = bytearray()

    def close(self) -> None:
        for sock in self.socks:
            self.selector.unregister(sock)
            sock.close()
        self.selector.close()


@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
def test_thousand_client_room(backend: str) -> None:
    chat = ChatServer(("127.0.0.1", 0), flood_rate=0, max_clients_per_address=CLIENTS + 10)
    with ServerThread([chat], backend=backend) as thread:
        # The irc library selects with select(): its sockets are opened first, so their
        # descriptors stay below FD_SETSIZE.
        reactor = irc.client.Reactor()
        heard: dict[str, list[str]] = {}
        reactor.add_global_handler(
            "pubmsg",
            lambda c, e: heard.setdefault(c.get_nickname(), []).append(e.arguments[0]),
        )
        names: list[str] = []
        reactor.add_global_handler("namreply", lambda c, e: names.extend(e.arguments[2].split()))
        ends: list[Any] = []
        reactor.add_global_handler("endofnames", lambda c, e: ends.append(c))
        conns = [reactor.server().connect("127.0.0.1", chat.port, f"lib{i}") for i in range(3)]
        crowd = Crowd(chat.port, CLIENTS)
        try:
            crowd.wait_all(lambda i: [b" 366 "], "their JOIN")

            def pump(predicate: Any) -> None:
                deadline = time.monotonic() + TIMEOUT
                while not predicate():
                    assert time.monotonic() < deadline
                    reactor.process_once(0.01)
                    crowd.drain(0)

            for conn in conns:
                conn.join("#room")
            pump(lambda: len(ends) == 3)
            room = chat.network.find_channel("#room")
            assert room is not None
            assert thread.call(lambda: len(room.members)) == CLIENTS + 3
            assert "@room0" in names
            assert "room999" in names
            conns[0].privmsg("#room", "hello room")
            hello = b":lib0!lib0@127.0.0.1 PRIVMSG #room :hello room\r\n"
            crowd.wait_all(lambda i: [hello], "the message")
            pump(
                lambda: heard.get("lib1") == ["hello room"] and heard.get("lib2") == ["hello room"]
            )
            # ten members of the crowd speak: 10 x 1,002 deliveries
            speakers = range(0, CLIENTS, CLIENTS // 10)
            for i in speakers:
                crowd.socks[i].sendall(f"PRIVMSG #room :from {i}\r\n".encode())
            crowd.wait_all(
                lambda j: [f"PRIVMSG #room :from {i}\r\n".encode() for i in speakers if i != j],
                "the crowd's messages",
            )
            pump(lambda: len(heard.get("lib0", [])) == 10)
            assert heard["lib0"] == [f"from {i}" for i in range(0, CLIENTS, CLIENTS // 10)]
            for conn in conns:
                conn.disconnect("bye")
        finally:
            crowd.close()
        wait_until(lambda: not chat.network.users, timeout=TIMEOUT, what="the room to empty")
        assert chat.network.channels == {}
