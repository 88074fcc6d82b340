"""Channel fan-out through shared lines (medusa.chat.fanout): nobody receives its own
message, order is kept per recipient, and membership changes in the middle of an
iteration are respected; sans-IO and over real sockets on both loops."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from medusa.chat.fanout import SharedLines
from medusa.chat.ircchannel import IRCChannel
from medusa.chat.network import Network
from medusa.chat.server import ChatServer
from medusa.chat.user import User
from medusa.core.testing import ServerThread

TIMEOUT = 10.0


def make_user(nick: str, shared: list[SharedLines] | None, sent: list[bytes]) -> User:
    """A user whose ``send`` records lines; with ``shared`` it takes shared lines too."""
    user = User(
        "10.0.0.1",
        sent.append,
        lambda reason: None,
        share=shared.append if shared is not None else None,
    )
    user.nick = nick
    user.registered = True
    return user


def test_shared_lines_skip_each_sender() -> None:
    alice, bob, carol = (make_user(n, [], []) for n in ("alice", "bob", "carol"))
    shared = SharedLines()
    shared.append(b"1\r\n", alice)
    shared.append(b"2\r\n", bob)
    shared.append(b"3\r\n", None)
    shared.append(b"4\r\n", alice)
    assert shared.take(carol, 0) == b"1\r\n2\r\n3\r\n4\r\n"
    assert shared.take(alice, 0) == b"2\r\n3\r\n"
    assert shared.take(bob, 0) == b"1\r\n3\r\n4\r\n"
    assert shared.take(bob, 2) == b"3\r\n4\r\n"
    assert shared.take(alice, 3) == b""
    shared.seal()
    everything = shared.take(carol, 0)
    assert everything == b"1\r\n2\r\n3\r\n4\r\n"
    assert shared.take(carol, 0) is everything  # joined once for every non-sender


def test_broadcast_shares_one_object_per_iteration() -> None:
    net = Network()
    channel = IRCChannel("#f", "#f")
    net.channels["#f"] = channel
    shares: dict[str, list[SharedLines]] = {}
    sent: dict[str, list[bytes]] = {}
    users = {}
    for nick, sharing in (("alice", True), ("bob", True), ("web", False)):
        shares[nick], sent[nick] = [], []
        users[nick] = make_user(nick, shares[nick] if sharing else None, sent[nick])
        channel.members[users[nick]] = ""
    net.broadcast(channel, b"a1\r\n", users["alice"])
    net.broadcast(channel, b"b1\r\n", users["bob"])
    # One SharedLines per iteration for the sharing members; the other gets each line.
    assert len(shares["alice"]) == len(shares["bob"]) == 1
    assert shares["alice"][0] is shares["bob"][0]
    assert sent["web"] == [b"a1\r\n", b"b1\r\n"]
    assert shares["bob"][0].take(users["bob"], 0) == b"a1\r\n"
    net.seal_shared()
    first = shares["alice"][0]
    assert first.sealed
    net.broadcast(channel, b"a2\r\n", users["alice"])
    assert len(shares["bob"]) == 2
    assert shares["bob"][1] is not first
    assert len(first) == 2  # nothing added after the seal


def test_membership_change_seals_the_shared_lines() -> None:
    net = Network()
    channel = IRCChannel("#f", "#f")
    net.channels["#f"] = channel
    shares: list[SharedLines] = []
    alice = make_user("alice", [], [])
    bob = make_user("bob", shares, [])
    channel.members[alice] = "o"
    channel.members[bob] = ""
    net.broadcast(channel, b"before\r\n", alice)
    newcomer_shares: list[SharedLines] = []
    newcomer = make_user("carol", newcomer_shares, [])
    net.join(newcomer, channel)
    net.broadcast(channel, b"after\r\n", alice)
    # Bob has both lines (two SharedLines); the newcomer only the line after its JOIN.
    assert [s.take(bob, 0) for s in shares] == [b"before\r\n", b"after\r\n"]
    assert [s.take(newcomer, 0) for s in newcomer_shares] == [b"after\r\n"]
    net.leave(bob, channel)
    net.broadcast(channel, b"gone\r\n", alice)
    assert len(shares) == 2  # bob took no part in the line after he left
    assert shares[1].take(bob, 0) == b"after\r\n"


# -- over sockets --------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def server(request: pytest.FixtureRequest) -> Iterator[ChatServer]:
    chat = ChatServer(("127.0.0.1", 0), flood_rate=0, max_clients_per_address=100)
    with ServerThread([chat], backend=request.param):
        yield chat


class Raw:
    """A registered IRC client on a plain socket."""

    def __init__(self, port: int, nick: str) -> None:
        self.nick = nick
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.data = b""
        self.send(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\n")
        self.read_until(b" 001 ")

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode())

    def read_until(self, needle: bytes) -> bytes:
        """Everything received up to and including the line holding ``needle``."""
        while needle not in self.data:
            chunk = self.sock.recv(65536)
            assert chunk, f"{self.nick}: closed before {needle!r}: {self.data!r}"
            self.data += chunk
        end = self.data.index(b"\n", self.data.index(needle)) + 1
        got, self.data = self.data[:end], self.data[end:]
        return got

    def lines_from(self, nick: str, until: bytes) -> list[str]:
        """The lines whose prefix is ``nick``, up to the line holding ``until``."""
        text = self.read_until(until).decode()
        return [
            line.split(" ", 1)[1] for line in text.split("\r\n") if line.startswith(f":{nick}!")
        ]

    def close(self) -> None:
        self.sock.close()


def test_order_kept_per_recipient(server: ChatServer) -> None:
    alice, bob, carol = (Raw(server.port, n) for n in ("alice", "bob", "carol"))
    try:
        for client in (alice, bob, carol):
            client.send("JOIN #f\r\n")
            client.read_until(b" 366 ")
        bob.read_until(b"JOIN")  # carol's JOIN, seen by bob
        # One write: the server reads it in one go, so these lines share an iteration.
        alice.send(
            "PRIVMSG #f :one\r\nPRIVMSG bob :two\r\nPRIVMSG #f :three\r\nNOTICE #f :four\r\n"
            "KICK #f carol :out now\r\nPRIVMSG #f :five\r\nPART #f :bye now\r\nPRIVMSG bob :end\r\n"
        )
        assert bob.lines_from("alice", b":end") == [
            "PRIVMSG #f :one",
            "PRIVMSG bob :two",
            "PRIVMSG #f :three",
            "NOTICE #f :four",
            "KICK #f carol :out now",
            "PRIVMSG #f :five",
            "PART #f :bye now",
            "PRIVMSG bob :end",
        ]
        # Alice sees her KICK and PART, none of her messages to the channel.
        assert alice.lines_from("alice", b"PART #f") == [
            "KICK #f carol :out now",
            "PART #f :bye now",
        ]
        bob.send("PRIVMSG carol :sentinel\r\n")
        assert carol.lines_from("alice", b"sentinel") == [
            "PRIVMSG #f :one",
            "PRIVMSG #f :three",
            "NOTICE #f :four",
            "KICK #f carol :out now",
        ]
    finally:
        for client in (alice, bob, carol):
            client.close()


def test_many_senders_in_one_room(server: ChatServer) -> None:
    """Every member receives every other member's lines exactly once and never its own."""
    clients = [Raw(server.port, f"m{i}") for i in range(12)]
    try:
        for client in clients:
            client.send("JOIN #many\r\n")
            client.read_until(b" 366 ")
        for round_no in range(3):
            for client in clients:
                client.send(f"PRIVMSG #many :{client.nick}-{round_no}\r\n")
        for client in clients:
            client.send(f"PRIVMSG {client.nick} :done\r\n")
        for client in clients:
            text = client.read_until(f"PRIVMSG {client.nick} :done".encode()).decode()
            got = sorted(
                line.rsplit(":", 1)[1] for line in text.split("\r\n") if " PRIVMSG #many :" in line
            )
            # Each sender's "done" goes out after its three lines, but other members' lines
            # may still be on the way: read on until all arrived.
            while len(got) < 3 * (len(clients) - 1):
                more = client.read_until(b"PRIVMSG #many :").decode()
                got += [
                    line.rsplit(":", 1)[1]
                    for line in more.split("\r\n")
                    if " PRIVMSG #many :" in line
                ]
            expected = sorted(
                f"{other.nick}-{r}" for other in clients if other is not client for r in range(3)
            )
            assert sorted(got) == expected
    finally:
        for client in clients:
            client.close()
