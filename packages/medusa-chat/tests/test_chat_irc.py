"""The IRC protocol with the ``irc`` library as real clients (several at once), on the
standard asyncio loop and on uvloop: registration, every command, the error numerics."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import irc.client  # type: ignore[import-untyped]
import irc.events  # type: ignore[import-untyped]
import pytest

from medusa.chat.server import ChatServer
from medusa.core.testing import ServerThread

TIMEOUT = 10.0


def kind_of(code: str) -> str:
    """The irc library's event type for a numeric (``"401"`` -> ``"nosuchnick"``)."""
    return str(irc.events.numeric.get(code, code))


class Client:
    """One irc-library connection and the events it received, consumed in order."""

    def __init__(self, hub: Hub, conn: Any) -> None:
        self.hub = hub
        self.conn = conn
        self.events: list[Any] = []
        self.seen = 0

    def find(self, kind: str, test: Callable[[Any], bool] | None = None) -> Any:
        kind = kind_of(kind) if kind.isdigit() else kind
        for index in range(self.seen, len(self.events)):
            event = self.events[index]
            if event.type == kind and (test is None or test(event)):
                self.seen = index + 1
                return event
        return None

    def expect(self, kind: str, test: Callable[[Any], bool] | None = None) -> Any:
        """Wait for the next event of ``kind`` (an irc-library type or a numeric)."""
        found: list[Any] = []

        def check() -> bool:
            event = self.find(kind, test)
            if event is not None:
                found.append(event)
            return bool(found)

        self.hub.run_until(check, f"{kind} for {self.conn.get_nickname()}")
        return found[0]

    def got(self, kind: str, test: Callable[[Any], bool] | None = None) -> bool:
        """Whether an event of ``kind`` arrived (after those already consumed)."""
        kind = kind_of(kind) if kind.isdigit() else kind
        return any(e.type == kind and (test is None or test(e)) for e in self.events[self.seen :])

    def sync(self) -> None:
        """Round trip through the server (PING/PONG): everything sent before has been
        handled and its replies received."""
        token = f"sync{time.monotonic_ns()}"
        self.conn.ping(token)
        self.expect("pong", lambda e: token in e.arguments)


class Hub:
    """A reactor with several clients of one server."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reactor = irc.client.Reactor()
        self.reactor.add_global_handler("all_events", self._record, -100)
        self.clients: dict[Any, Client] = {}

    def _record(self, conn: Any, event: Any) -> None:
        client = self.clients.get(conn)
        if client is not None:
            client.events.append(event)

    def connect(self, nick: str, *, welcome: bool = True, **kwargs: Any) -> Client:
        conn = self.reactor.server()
        client = self.clients[conn] = Client(self, conn)
        conn.connect("127.0.0.1", self.port, nick, **kwargs)
        if welcome:
            client.expect("welcome")
        return client

    def run_until(self, predicate: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            self.reactor.process_once(0.01)

    def close(self) -> None:
        for conn in list(self.clients):
            if conn.is_connected():
                conn.disconnect("bye")


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def server(request: pytest.FixtureRequest) -> Iterator[ChatServer]:
    chat = ChatServer(("127.0.0.1", 0), flood_rate=0, max_clients_per_address=100)
    with ServerThread([chat], backend=request.param):
        yield chat


@pytest.fixture
def hub(server: ChatServer) -> Iterator[Hub]:
    h = Hub(server.port)
    try:
        yield h
    finally:
        h.close()


def raw(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    return sock


def read_until(sock: socket.socket, needle: bytes) -> bytes:
    """Read until ``needle`` was received (the socket's timeout bounds each read)."""
    data = b""
    while needle not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    assert needle in data, data
    return data


# -- registration ----------------------------------------------------------------------------


def test_welcome_numerics(hub: Hub) -> None:
    alice = hub.connect("reg_alice")
    welcome = alice.events[alice.seen - 1]
    assert "reg_alice!reg_alice@127.0.0.1" in welcome.arguments[0]
    alice.expect("002")
    alice.expect("003")
    myinfo = alice.expect("004")
    assert myinfo.arguments[0] == "medusa"
    features = alice.expect("005")
    assert "CASEMAPPING=rfc1459" in features.arguments
    alice.expect("422")  # no MOTD configured
    assert alice.conn.features.network == "Medusa"


def test_nick_errors_and_case_mapping(hub: Hub) -> None:
    first = hub.connect("Nick[a]")
    second = hub.connect("other_nick")
    second.conn.nick("nick{A}")  # the same nick under RFC 2812's case mapping
    second.expect("433")
    second.conn.nick("1bad")
    second.expect("432")
    second.conn.send_raw("NICK")
    second.expect("431")
    # a nick change is seen by the user and by those sharing a channel
    first.conn.join("#nicks")
    first.expect("366")
    second.conn.join("#nicks")
    first.expect("join", lambda e: e.source.nick == "other_nick")
    second.conn.nick("renamed")
    event = first.expect("nick")
    assert (event.source.nick, event.target) == ("other_nick", "renamed")
    assert second.expect("nick").target == "renamed"
    # the old nick is free again
    third = hub.connect("other_nick")
    third.sync()


def test_registration_order_errors(server: ChatServer) -> None:
    with raw(server.port) as sock:
        sock.sendall(b"JOIN #x\r\n")
        assert b" 451 * :You have not registered" in read_until(sock, b"451")
        sock.sendall(b"USER a\r\n")
        assert b" 461 * USER :Not enough parameters" in read_until(sock, b"461")
        sock.sendall(b"NICK order_a\r\nUSER a 0 * :A\r\n")
        read_until(sock, b" 422 ")
        sock.sendall(b"USER a 0 * :A\r\nPASS x\r\nFOO bar\r\n")
        data = read_until(sock, b" 421 ")
        assert data.count(b" 462 order_a :") == 2
        assert b" 421 order_a FOO :Unknown command" in data


def test_cap_negotiation_delays_registration(server: ChatServer) -> None:
    with raw(server.port) as sock:
        sock.sendall(b"CAP LS 302\r\nNICK cap_a\r\nUSER a 0 * :A\r\nPING :mid\r\n")
        data = read_until(sock, b"PONG")
        assert b"CAP * LS :" in data
        assert b" 001 " not in data
        sock.sendall(b"CAP REQ :sasl\r\nCAP END\r\n")
        data = read_until(sock, b" 001 ")
        assert b"CAP cap_a NAK :sasl" in data or b"CAP * NAK :sasl" in data


# -- ping ------------------------------------------------------------------------------------


def test_client_ping(hub: Hub) -> None:
    alice = hub.connect("ping_alice")
    alice.conn.ping("token-1")
    assert "token-1" in alice.expect("pong").arguments
    alice.conn.send_raw("PING")
    alice.expect("409")


# -- channels --------------------------------------------------------------------------------


def test_join_part_names_topic(hub: Hub) -> None:
    alice = hub.connect("jp_alice")
    bob = hub.connect("jp_bob")
    alice.conn.join("#one,#two,&three")
    for name in ("#one", "#two", "&three"):
        assert alice.expect("join").target == name
        names = alice.expect("353")
        assert names.arguments[1:] == [name, "@jp_alice"]
        alice.expect("366")
    alice.conn.topic("#one")
    alice.expect("331")
    alice.conn.topic("#one", "the first topic")
    assert alice.expect("topic").arguments == ["the first topic"]
    bob.conn.join("#ONE")  # case-insensitive: the same channel
    assert bob.expect("join").target == "#one"
    topic = bob.expect("332")
    assert topic.arguments == ["#one", "the first topic"]
    assert bob.expect("333").arguments[1].startswith("jp_alice!")
    assert bob.expect("353").arguments[2].split() == ["@jp_alice", "jp_bob"]
    assert alice.expect("join").source.nick == "jp_bob"
    bob.conn.names(["#one"])
    bob.expect("353")
    bob.expect("366")
    bob.conn.send_raw("PART #one :see you")  # the irc library's part() sends no ":"
    part = alice.expect("part")
    assert (part.source.nick, part.target, part.arguments) == ("jp_bob", "#one", ["see you"])
    bob.conn.part(["#one"])
    bob.expect("442")
    bob.conn.part(["#nowhere"])
    bob.expect("403")
    bob.conn.join("no-prefix")
    bob.expect("403")
    bob.conn.send_raw("JOIN")
    bob.expect("461")
    bob.conn.join("0")  # part every channel (bob is on none): nothing happens
    bob.sync()


def test_topic_rules_and_list(hub: Hub) -> None:
    alice = hub.connect("tl_alice")
    bob = hub.connect("tl_bob")
    alice.conn.join("#topics")
    alice.expect("366")
    bob.conn.topic("#topics", "not a member")
    bob.expect("442")
    bob.conn.join("#topics")
    bob.expect("366")
    bob.conn.topic("#topics", "not an operator")
    bob.expect("482")  # +t is on by default
    alice.conn.mode("#topics", "-t")
    bob.expect("mode", lambda e: e.arguments == ["-t"])
    bob.conn.topic("#topics", "anyone may")
    assert alice.expect("topic").arguments == ["anyone may"]
    bob.conn.list(["#topics"])
    bob.expect("321")
    entry = bob.expect("322")
    assert entry.arguments == ["#topics", "2", "anyone may"]
    bob.expect("323")
    bob.conn.topic("#missing")
    bob.expect("403")


def test_messages(hub: Hub) -> None:
    alice = hub.connect("msg_alice")
    bob = hub.connect("msg_bob")
    carol = hub.connect("msg_carol")
    for client in (alice, bob):
        client.conn.join("#talk")
        client.expect("366")
    alice.conn.privmsg("#talk", "hello channel")
    event = bob.expect("pubmsg")
    assert (event.source.nick, event.target, event.arguments) == (
        "msg_alice",
        "#talk",
        ["hello channel"],
    )
    alice.conn.privmsg("MSG_BOB", "hello bob")  # nicks are case-insensitive
    assert bob.expect("privmsg").arguments == ["hello bob"]
    alice.conn.notice("#talk", "a notice")
    assert bob.expect("pubnotice").arguments == ["a notice"]
    alice.conn.notice("msg_bob", "private notice")
    assert bob.expect("privnotice").arguments == ["private notice"]
    alice.conn.privmsg_many(["msg_bob", "msg_carol"], "to both")
    assert bob.expect("privmsg").arguments == ["to both"]
    assert carol.expect("privmsg").arguments == ["to both"]
    # +n: carol is not on #talk
    carol.conn.privmsg("#talk", "from outside")
    carol.expect("404")
    carol.conn.notice("#talk", "no error for a NOTICE")
    carol.conn.notice("nobody_here", "nor here")
    carol.conn.privmsg("nobody_here", "hi")
    carol.expect("401")
    carol.conn.privmsg("#no_such_channel", "hi")
    carol.expect("401")
    carol.conn.send_raw("PRIVMSG")
    carol.expect("411")
    carol.conn.send_raw("PRIVMSG msg_bob")
    carol.expect("412")
    carol.conn.send_raw("PRIVMSG msg_bob :")
    carol.expect("412")
    carol.sync()
    assert not carol.got("404")
    assert not carol.got("401")
    assert not alice.got("pubmsg")  # a channel message is not echoed to its sender


def test_modes_and_operator_rules(hub: Hub) -> None:
    op = hub.connect("mode_op")
    bob = hub.connect("mode_bob")
    carol = hub.connect("mode_carol")
    op.conn.join("#modes")
    op.expect("366")
    op.conn.mode("#modes", "")
    is_modes = op.expect("324")
    assert is_modes.arguments == ["#modes", "+nt"]
    op.expect("329")
    bob.conn.join("#modes")
    bob.expect("366")
    bob.conn.mode("#modes", "+m")
    bob.expect("482")
    bob.conn.mode("#modes", "b")  # the ban list is asked for by clients: empty
    bob.expect("368")
    # +k and +l
    op.conn.mode("#modes", "+kl secret 2")
    change = bob.expect("mode")
    assert change.arguments == ["+kl", "secret", "2"]
    bob.conn.mode("#modes", "")
    assert bob.expect("324").arguments == ["#modes", "+ntkl", "secret", "2"]
    carol.conn.join("#modes")
    carol.expect("475")
    carol.conn.join("#modes", "wrong")
    carol.expect("475")
    carol.conn.join("#modes", "secret")
    carol.expect("471")  # full: 2 members
    op.conn.mode("#modes", "-l")
    bob.expect("mode")
    carol.conn.join("#modes", "secret")
    carol.expect("366")
    carol.conn.mode("#modes", "")
    assert carol.expect("324").arguments[1:] == ["+ntk", "secret"]
    # +m: only +o and +v may speak
    op.conn.mode("#modes", "+m")
    carol.expect("mode")
    carol.conn.privmsg("#modes", "muted")
    carol.expect("404")
    op.conn.mode("#modes", "+v mode_carol")
    assert carol.expect("mode").arguments == ["+v", "mode_carol"]
    carol.conn.privmsg("#modes", "voiced")
    assert bob.expect("pubmsg").arguments == ["voiced"]
    # +o hands operator rights; NAMES shows the prefixes
    op.conn.mode("#modes", "+o mode_bob")
    bob.expect("mode", lambda e: e.arguments == ["+o", "mode_bob"])
    bob.conn.names(["#modes"])
    names = bob.expect("353").arguments[2].split()
    assert sorted(names) == ["+mode_carol", "@mode_bob", "@mode_op"]
    op.conn.mode("#modes", "+o nobody_x")
    op.expect("401")
    op.conn.mode("#modes", "+v mode_op_not_here")
    op.expect("401")
    hub.connect("mode_dave")
    op.conn.mode("#modes", "+o mode_dave")
    op.expect("441")
    op.conn.mode("#modes", "+z")
    op.expect("472")
    op.conn.mode("#nothing", "+m")
    op.expect("403")
    op.conn.send_raw("MODE")
    op.expect("461")


def test_user_modes(hub: Hub) -> None:
    alice = hub.connect("umode_alice")
    hub.connect("umode_bob")
    alice.conn.mode("umode_alice", "+i")
    assert alice.expect("umode").arguments == ["+i"]
    alice.conn.mode("umode_alice", "")
    assert alice.expect("221").arguments == ["+i"]
    alice.conn.mode("umode_alice", "+iwx")
    alice.expect("501")
    alice.conn.mode("umode_bob", "+i")
    alice.expect("502")
    alice.conn.mode("umode_nobody", "+i")
    alice.expect("401")


def test_kick_and_invite(hub: Hub) -> None:
    op = hub.connect("ki_op")
    bob = hub.connect("ki_bob")
    carol = hub.connect("ki_carol")
    op.conn.join("#kick")
    op.expect("366")
    bob.conn.join("#kick")
    bob.expect("366")
    bob.conn.kick("#kick", "ki_op")
    bob.expect("482")
    carol.conn.kick("#kick", "ki_bob")
    carol.expect("442")
    op.conn.kick("#kick", "ki_carol")
    op.expect("441")
    op.conn.kick("#kick", "ki_bob", "behave")
    event = bob.expect("kick")
    assert (event.source.nick, event.target, event.arguments) == (
        "ki_op",
        "#kick",
        ["ki_bob", "behave"],
    )
    op.expect("kick")
    bob.conn.privmsg("#kick", "still here?")
    bob.expect("404")  # +n: no longer a member
    op.conn.send_raw("KICK #kick")
    op.expect("461")
    op.conn.kick("#none", "ki_bob")
    op.expect("403")
    # invite-only channel: INVITE lets carol in
    op.conn.mode("#kick", "+i")
    op.expect("mode")
    carol.conn.join("#kick")
    carol.expect("473")
    carol.conn.invite("ki_bob", "#kick")
    carol.expect("442")
    op.conn.invite("ki_carol", "#kick")
    assert op.expect("341").arguments == ["ki_carol", "#kick"]
    invite = carol.expect("invite")
    assert (invite.source.nick, invite.arguments) == ("ki_op", ["#kick"])
    carol.conn.join("#kick")
    carol.expect("366")
    op.conn.invite("ki_carol", "#kick")
    op.expect("443")
    op.conn.invite("ki_nobody", "#kick")
    op.expect("401")
    op.conn.send_raw("INVITE ki_carol")
    op.expect("461")


def test_queries(hub: Hub) -> None:
    alice = hub.connect("q_alice", ircname="Alice Liddell")
    bob = hub.connect("q_bob")
    alice.conn.join("#query")
    alice.expect("366")
    bob.conn.whois(["q_alice"])
    user = bob.expect("311")
    assert user.arguments == ["q_alice", "q_alice", "127.0.0.1", "*", "Alice Liddell"]
    assert bob.expect("319").arguments == ["q_alice", "@#query"]
    bob.expect("312")
    bob.expect("317")
    bob.expect("318")
    bob.conn.whois(["q_nobody"])
    bob.expect("401")
    bob.expect("318")
    bob.conn.send_raw("WHOIS")
    bob.expect("431")
    bob.conn.who("#query")
    reply = bob.expect("352")
    assert reply.arguments[:6] == ["#query", "q_alice", "127.0.0.1", "medusa", "q_alice", "H@"]
    assert reply.arguments[6] == "0 Alice Liddell"
    bob.expect("315")
    bob.conn.who("q_a*")
    assert bob.expect("352").arguments[4] == "q_alice"
    bob.expect("315")
    bob.conn.ison(["q_ALICE", "q_nobody", "q_bob"])
    assert bob.expect("303").arguments == ["q_alice q_bob"]
    bob.conn.send_raw("ISON")
    bob.expect("461")
    alice.conn.send_raw("AWAY :gone fishing")
    alice.expect("306")
    bob.conn.userhost(["q_alice", "q_bob"])
    assert bob.expect("302").arguments == ["q_alice=-q_alice@127.0.0.1 q_bob=+q_bob@127.0.0.1"]
    bob.conn.privmsg("q_alice", "are you there?")
    assert bob.expect("301").arguments == ["q_alice", "gone fishing"]
    bob.conn.who("#query")
    assert bob.expect("352").arguments[5] == "G@"
    alice.conn.send_raw("AWAY")
    alice.expect("305")
    bob.conn.send_raw("USERHOST")
    bob.expect("461")


def test_server_queries(hub: Hub) -> None:
    """VERSION, TIME, LUSERS, ADMIN, INFO, WHOWAS: what irssi's and WeeChat's commands of
    those names send (RFC 2812 sections 3.4, 3.6.3)."""
    alice = hub.connect("sq_alice")
    alice.conn.join("#sq")
    alice.expect("366")
    alice.conn.send_raw("VERSION")
    version = alice.expect("351")
    assert version.arguments[:2] == ["medusa-chat-0.1.0.0", "medusa"]
    alice.expect("005")
    alice.conn.send_raw("TIME medusa")
    assert alice.expect("391").arguments[0] == "medusa"
    hub.connect("sq_bob")
    alice.conn.send_raw("LUSERS")
    users = alice.expect("251").arguments[0]
    assert re.fullmatch(r"There are \d+ users and 0 services on 1 servers", users)
    channels = alice.expect("254")
    assert int(channels.arguments[0]) >= 1
    assert alice.expect("255").arguments[0].endswith(" servers")
    alice.conn.send_raw("ADMIN")
    assert alice.expect("423").arguments == ["medusa", "No administrative info available"]
    alice.conn.send_raw("INFO")
    assert "medusa-chat" in alice.expect("371").arguments[0]
    alice.expect("374")
    alice.conn.send_raw("WHOWAS q_gone,q_too")
    assert alice.expect("406").arguments == ["q_gone", "There was no such nickname"]
    assert alice.expect("406").arguments[0] == "q_too"
    assert alice.expect("369").arguments[0] == "q_gone,q_too"
    alice.conn.send_raw("WHOWAS")
    alice.expect("431")
    for command in ("VERSION elsewhere.example", "TIME elsewhere", "ADMIN x", "INFO x"):
        alice.conn.send_raw(command)
        assert alice.expect("402").arguments == [command.split()[1], "No such server"]
    alice.conn.send_raw("LUSERS * m*")  # a mask matching this server's name
    alice.expect("251")
    alice.sync()
    assert not alice.got("421")


def test_quit_is_broadcast(hub: Hub) -> None:
    alice = hub.connect("quit_alice")
    bob = hub.connect("quit_bob")
    for client in (alice, bob):
        client.conn.join("#quit")
        client.expect("366")
    bob.conn.quit("off to bed")
    event = alice.expect("quit")
    assert (event.source.nick, event.arguments) == ("quit_bob", ["Quit: off to bed"])
    error = bob.expect("error")
    assert "Quit: off to bed" in error.target
    bob.expect("disconnect")
    alice.conn.names(["#quit"])
    assert alice.expect("353").arguments[2] == "@quit_alice"
    # a connection that just drops is announced too
    with raw(hub.port) as carol:
        carol.sendall(b"NICK quit_carol\r\nUSER c 0 * :C\r\nJOIN #quit\r\n")
        assert alice.expect("join").source.nick == "quit_carol"
    event = alice.expect("quit")
    assert (event.source.nick, event.arguments) == ("quit_carol", ["Connection closed"])


def test_motd_and_password() -> None:
    chat = ChatServer(
        ("127.0.0.1", 0),
        motd="Be nice.\nHave fun.",
        password="letmein",  # noqa: S106
        flood_rate=0,
    )
    with ServerThread([chat]):
        hub = Hub(chat.port)
        try:
            alice = hub.connect("pw_alice", password="letmein")  # noqa: S106
            alice.expect("375")
            assert alice.expect("372").arguments == ["- Be nice."]
            assert alice.expect("372").arguments == ["- Have fun."]
            alice.expect("376")
            alice.conn.send_raw("MOTD")
            alice.expect("375")
            alice.conn.pass_("again")
            alice.expect("462")
            bad = hub.connect("pw_bad", password="wrong", welcome=False)  # noqa: S106
            bad.expect("464")
            assert "Bad password" in bad.expect("error").target
            nopass = hub.connect("pw_none", welcome=False)
            nopass.expect("464")
            assert not nopass.got("welcome")
        finally:
            hub.close()
