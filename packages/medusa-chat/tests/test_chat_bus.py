"""The bus logic without Redis or sockets: several sans-IO networks (nodes) joined by an
in-memory bus that keeps :class:`~medusa.chat.bus.Bus`'s promises (records in publishing
order, atomic nick claims answered later), with sans-IO sessions as clients.

The records go through JSON on the way, as they do over Redis."""

from __future__ import annotations

import json

from medusa.chat import replica
from medusa.chat.bus import CLAIMED, TAKEN, UNREACHABLE, Record
from medusa.chat.casemap import irc_lower
from medusa.chat.network import MAX_HELD, Network, NetworkConfig
from medusa.chat.session import LinkPolicy, Session
from medusa.chat.user import User


class Hub:
    """The shared part: nick owners, claims waiting, records in flight."""

    def __init__(self) -> None:
        self.nicks: dict[str, str] = {}
        self.buses: list[MemoryBus] = []
        self.claims: list[tuple[MemoryBus, User, str]] = []
        self.records: list[tuple[str, Record]] = []

    def run(self) -> None:
        """Answer the claims and deliver the records until nothing is left."""
        while self.claims or self.records:
            if self.claims:
                bus, user, nick = self.claims.pop(0)
                key = irc_lower(nick)
                owner = f"{bus.node}/{user.serial}"
                if not bus.up:
                    result = UNREACHABLE
                elif self.nicks.setdefault(key, owner) == owner:
                    result = CLAIMED
                else:
                    result = TAKEN
                bus.network.nick_claimed(user, nick, result)
                continue
            node, record = self.records.pop(0)
            for bus in self.buses:
                if bus.node != node:
                    replica.apply(bus.network, node, record)


class MemoryBus:
    """One node's :class:`~medusa.chat.bus.Bus` on a :class:`Hub`."""

    def __init__(self, hub: Hub, network: Network, node: str) -> None:
        self.hub = hub
        self.network = network
        self.node = node
        self.up = True
        self.published: list[Record] = []
        network.bus = self
        hub.buses.append(self)

    def publish(self, record: Record) -> None:
        self.published.append(record)
        self.hub.records.append((self.node, json.loads(json.dumps(record))))

    def claim_nick(self, user: User, nick: str) -> None:
        self.hub.claims.append((self, user, nick))

    def release_nick(self, user: User, key: str) -> None:
        if self.hub.nicks.get(key) == f"{self.node}/{user.serial}":
            del self.hub.nicks[key]


class Client:
    """A sans-IO session with its output kept."""

    def __init__(self, net: Network, nick: str | None = None, hub: Hub | None = None) -> None:
        self.lines: list[str] = []
        self.closed: str | None = None
        self.session = Session(
            net, "10.0.0.1", self.receive, self.close, LinkPolicy(flood_rate=0), 0.0
        )
        self.user = self.session.user
        if nick is not None:
            self.say(f"NICK {nick}", f"USER {nick} 0 * :{nick}")
            if hub is not None:
                hub.run()

    def receive(self, data: bytes) -> None:
        self.lines.extend(data.decode().splitlines())

    def close(self, reason: str) -> None:
        self.closed = reason

    def say(self, *lines: str) -> None:
        for line in lines:
            self.session.receive_line(line.encode(), 1.0)

    def take(self) -> list[str]:
        lines, self.lines = self.lines, []
        return lines


def nodes(count: int) -> tuple[Hub, list[Network]]:
    hub = Hub()
    nets = []
    for i in range(count):
        net = Network(NetworkConfig(server_name=f"n{i}.test"))
        MemoryBus(hub, net, f"node{i}")
        nets.append(net)
    return hub, nets


def alice_and_bob() -> tuple[Hub, Network, Network, Client, Client]:
    """Two nodes, alice on the first and bob on the second, both in ``#bus`` (alice
    first: its operator)."""
    hub, (one, two) = nodes(2)
    alice, bob = Client(one, "alice", hub), Client(two, "bob", hub)
    alice.say("JOIN #bus")
    hub.run()
    bob.say("JOIN #bus")
    hub.run()
    return hub, one, two, alice, bob


def test_a_nick_is_the_whole_networks() -> None:
    hub, (one, two) = nodes(2)
    alice = Client(one, "alice", hub)
    assert any(" 001 alice " in line for line in alice.take())
    late = Client(two)
    late.say("NICK Alice")  # known on this node's replica: refused at once
    assert late.take() == [":n1.test 433 * Alice :Nickname is already in use"]
    # two nodes registering one nick at once: the bus gives it to exactly one
    left, right = Client(one), Client(two)
    for client in (left, right):
        client.say("NICK sam", "USER sam 0 * :sam")
    hub.run()
    welcomed = [any(" 001 sam " in line for line in c.take()) for c in (left, right)]
    assert sorted(welcomed) == [False, True]
    loser = right if welcomed[0] else left
    assert not loser.user.registered
    # the loser takes another nick; the first one is freed by QUIT
    alice.say("QUIT :bye")
    hub.run()
    loser.say("NICK alice")
    hub.run()
    assert any(" 001 alice " in line for line in loser.take())


def test_messages_wait_for_the_claim_and_run_in_order() -> None:
    hub, (one, _) = nodes(2)
    client = Client(one)
    client.say("NICK first", "USER f 0 * :f", "JOIN #wait", "PRIVMSG #wait :hi", "NICK second")
    assert client.take() == []  # everything waits for the bus's answer
    hub.run()
    lines = client.take()
    welcome = next(i for i, line in enumerate(lines) if " 001 first " in line)
    joined = lines.index(":first!f@10.0.0.1 JOIN #wait")
    renamed = lines.index(":first!f@10.0.0.1 NICK second")
    assert welcome < joined < renamed
    assert "first" not in hub.nicks
    assert "second" in hub.nicks


def test_lines_held_during_a_claim_are_bounded() -> None:
    _, (one, _) = nodes(2)
    client = Client(one)
    client.say("NICK waiting", *(f"PING {i}" for i in range(MAX_HELD + 1)))
    assert client.closed == "Excess Flood"
    assert client.user.gone


def test_unreachable_bus_gives_437() -> None:
    hub, (one, _) = nodes(2)
    hub.buses[0].up = False
    client = Client(one)
    client.say("NICK nobody", "USER n 0 * :n")
    hub.run()
    assert client.take() == [
        ":n0.test 437 * nobody :Nick is temporarily unavailable (no bus)",
    ]


def test_channels_are_the_whole_networks() -> None:
    hub, one, two, alice, bob = alice_and_bob()
    assert ":n1.test 353 bob = #bus :@alice bob" in bob.take()
    assert alice.take()[-1] == ":bob!bob@10.0.0.1 JOIN #bus"
    # channel messages: once per node, in order, never through a remote user's send
    alice.say(*(f"PRIVMSG #bus :{i}" for i in range(5)))
    hub.run()
    assert bob.take() == [f":alice!alice@10.0.0.1 PRIVMSG #bus :{i}" for i in range(5)]
    assert not [r for r in hub.buses[0].published if r[0] == "to"]
    # topic, modes, nick change, kick
    alice.say("TOPIC #bus :hello all", "MODE #bus +mv bob")
    hub.run()
    assert bob.take() == [
        ":alice!alice@10.0.0.1 TOPIC #bus :hello all",
        ":alice!alice@10.0.0.1 MODE #bus +mv bob",
    ]
    channel = two.channels["#bus"]
    assert channel.topic == "hello all"
    assert "m" in channel.modes
    assert channel.members[bob.user] == "v"
    alice.take()
    bob.say("NICK robert")
    hub.run()
    assert alice.take() == [":bob!bob@10.0.0.1 NICK robert"]
    assert one.find_user("robert") is not None
    assert one.find_user("bob") is None
    alice.say("KICK #bus robert :out")
    hub.run()
    assert bob.take() == [
        ":bob!bob@10.0.0.1 NICK robert",
        ":alice!alice@10.0.0.1 KICK #bus robert out",
    ]
    assert "#bus" not in bob.user.channels
    assert [m.nick for m in one.channels["#bus"].members] == ["alice"]
    # private messages and WHOIS of a user on another node
    alice.take()
    bob.say("PRIVMSG alice :psst", "WHOIS alice")
    hub.run()
    assert alice.take() == [":robert!bob@10.0.0.1 PRIVMSG alice :psst"]
    assert ":n1.test 312 robert alice n0.test :Medusa chat" in bob.take()


def test_lost_node_users_quit_and_free_their_nicks() -> None:
    _hub, one, _two, alice, _bob = alice_and_bob()
    alice.take()
    assert replica.lose_node(one, "node1") == ["bob"]
    assert alice.take() == [":bob!bob@10.0.0.1 QUIT :node lost"]
    assert one.find_user("bob") is None
    assert "node1" not in one.nodes
    assert [m.nick for m in one.channels["#bus"].members] == ["alice"]


def test_sync_rebuilds_a_replica() -> None:
    hub, (one, two) = nodes(2)
    alice = Client(one, "alice", hub)
    alice.say("JOIN #kept", "TOPIC #kept :still here", "MODE #kept +k key")
    hub.run()
    # a node that knew nothing (started later, or back from an outage)
    fresh = Network(NetworkConfig(server_name="n9.test"))
    watcher = Client(fresh)
    replica.apply(fresh, "node0", json.loads(json.dumps(replica.snapshot(one))))
    channel = fresh.channels["#kept"]
    assert channel.topic == "still here"
    assert channel.password == "key"  # noqa: S105
    assert channel.members == {fresh.users["alice"]: "o"}
    # a later sync without the user: it quits for the local peers
    watcher.say("NICK watcher", "USER w 0 * :w", "JOIN #kept key")
    watcher.take()
    replica.apply(fresh, "node0", ["sync", [], []])
    assert watcher.take() == [":alice!alice@10.0.0.1 QUIT Quit"]
    assert "alice" not in fresh.users
    assert two.find_user("alice") is not None


def test_hello_is_answered_with_a_sync() -> None:
    hub, (one, _two) = nodes(2)
    Client(one, "alice", hub)
    replica.apply(one, "node1", ["hello"])
    assert hub.buses[0].published[-1][0] == "sync"
    assert hub.buses[0].published[-1][1][0][0] == "alice"
