"""End-to-end: one chat network over several ``medusa serve`` processes sharing a real
Redis (issue 18): ``bus = "redis://..."`` in medusa.toml and ``--chat-bus URL``.

Two and three nodes on different ports; IRC clients (raw sockets and the ``irc`` library)
on different nodes join one channel, exchange PRIVMSG and NOTICE (in order), change nicks,
kick, set modes and topics; NAMES, WHO, WHOIS, LIST and LUSERS show the whole network;
one nick registered on two nodes at once goes to exactly one; a node killed with SIGKILL
is lost after its heartbeat timeout (its users quit ``node lost``, its nicks are free);
Redis stopped and started again (empty); a simple-mode and a WebSocket user on one node
with an IRC user on another; ``--workers 2`` with a bus runs the chat in both workers.
Every wait is on a condition with a deadline.
"""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import IO_TIMEOUT, REPO, Medusa, Runner, free_port_range
from tests.redisserver import RedisServer, receive_stamped, redis_relay, stamp_receipts

pytestmark = pytest.mark.e2e


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own (skipped when Debian's redis-server is missing)."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.stop()


_OPEN: list[socket.socket] = []
"""The clients' sockets, closed after each test (:func:`close_clients`)."""


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    """Close every client socket a test opened, when it ends (passed or failed)."""
    yield
    while _OPEN:
        _OPEN.pop().close()


class Client:
    """A raw-socket IRC client: lines received are kept; :meth:`expect` waits for one
    matching a pattern (searching from the last line it matched). With ``stamped``, the
    kernel's receive time stamp of each line is kept too (``stamps``, beside ``lines``)."""

    def __init__(self, port: int, nick: str | None = None, *, stamped: bool = False) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        _OPEN.append(self.sock)
        self.stamped = stamped
        if stamped:
            stamp_receipts(self.sock)
        self.stamps: list[int] = []
        self.buffer = b""
        self.lines: list[str] = []
        self.cursor = 0
        self.nick = nick
        if nick is not None:
            self.send(f"NICK {nick}", f"USER {nick} 0 * :{nick} real")
            self.expect(rf"^:\S+ 001 {re.escape(nick)} ")

    def send(self, *lines: str) -> None:
        self.sock.sendall("".join(f"{line}\r\n" for line in lines).encode())

    def _receive(self, timeout: float) -> bool:
        self.sock.settimeout(timeout)
        try:
            data, stamp = receive_stamped(self.sock) if self.stamped else (self.sock.recv(65536), 0)
        except (TimeoutError, BlockingIOError):
            return True
        if not data:
            return False
        self.buffer += data
        *lines, self.buffer = self.buffer.split(b"\r\n")
        self.lines.extend(line.decode("utf-8", "replace") for line in lines)
        self.stamps.extend(stamp for _ in lines)
        return True

    def expect(self, pattern: str, timeout: float = IO_TIMEOUT) -> str:
        """The next line (after the last one matched) matching ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            for index in range(self.cursor, len(self.lines)):
                if regex.search(self.lines[index]):
                    self.cursor = index + 1
                    return self.lines[index]
            left = deadline - time.monotonic()
            if left <= 0 or not self._receive(min(left, 0.2)):
                pytest.fail(f"no line matching {pattern!r}; got:\n" + "\n".join(self.lines))

    def seen(self, pattern: str) -> str:
        """A line matching ``pattern`` received at any time (the cursor is not used nor
        moved): for lines from several senders, whose relative order is not defined."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + IO_TIMEOUT
        checked = 0
        while True:
            for line in self.lines[checked:]:
                if regex.search(line):
                    return line
            checked = len(self.lines)
            left = deadline - time.monotonic()
            if left <= 0 or not self._receive(min(left, 0.2)):
                pytest.fail(f"no line matching {pattern!r}; got:\n" + "\n".join(self.lines))

    def lines_until(self, pattern: str) -> list[str]:
        """Every line from the cursor up to the next one matching ``pattern`` (included)."""
        start = self.cursor
        self.expect(pattern)
        return self.lines[start : self.cursor]

    def close(self) -> None:
        self.sock.close()


def start_node(
    runner: Runner,
    tmp_path: Path,
    redis: RedisServer,
    name: str,
    *,
    heartbeat: float = 10.0,
    extra: str = "",
    listening: int = 1,
    url: str = "",
) -> Medusa:
    """``medusa serve -c`` with one chat server on a free port, named ``name``, on the bus
    (``redis``, or ``url``: a relay in front of it)."""
    config = tmp_path / f"{name}.toml"
    config.write_text(
        f"""
[medusa]
grace = 2

[[server]]
type = "chat"
listen = "127.0.0.1:0"
server_name = "{name}"
bus = "{url or redis.url}"
heartbeat_timeout = {heartbeat}
max_clients_per_address = 100
flood_rate = 0
{extra}
"""
    )
    return runner.start("serve", "-c", str(config), listening=listening)


def wait_network(client: Client, users: int, servers: int) -> None:
    """Ask LUSERS until the node of ``client`` sees ``users`` users on ``servers`` nodes."""
    deadline = time.monotonic() + IO_TIMEOUT
    want = f"There are {users} users and 0 services on {servers} servers"
    while True:
        client.send("LUSERS")
        line = client.expect(r" 251 ")
        if want in line:
            client.expect(r" 255 ")
            return
        if time.monotonic() > deadline:
            pytest.fail(f"the network never showed {want!r}: {line}")
        time.sleep(0.05)


def wait_reply(client: Client, command: str, end: str, want: str) -> None:
    """Send ``command`` until the reply (the lines up to the one matching ``end``) holds a
    line matching ``want``: the records of another node arrive a little later than its
    own clients' replies."""
    deadline = time.monotonic() + IO_TIMEOUT
    while True:
        client.send(command)
        lines = client.lines_until(end)
        if any(re.search(want, line) for line in lines):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{command!r} never answered {want!r}: {lines}")
        time.sleep(0.05)


def test_two_nodes_one_network(runner: Runner, tmp_path: Path, redis: RedisServer) -> None:
    one = start_node(runner, tmp_path, redis, "one.test")
    two = start_node(runner, tmp_path, redis, "two.test")
    alice = Client(one.endpoint.port, "alice")
    bob = Client(two.endpoint.port, "bob")
    wait_network(bob, 2, 2)
    alice.send("JOIN #bus")
    alice.expect(r" 366 alice #bus ")
    wait_reply(bob, "NAMES #bus", r" 366 bob #bus ", r" 353 bob = #bus :@alice$")
    bob.send("JOIN #bus")
    names = bob.lines_until(r" 366 bob #bus ")
    assert any(" 353 bob = #bus :@alice bob" in line for line in names), names
    alice.expect(r"^:bob!bob@127\.0\.0\.1 JOIN #bus$")

    # messages both ways, in the order each sender sent them
    alice.send(*(f"PRIVMSG #bus :line {i}" for i in range(100)))
    for i in range(100):
        bob.expect(rf"^:alice!alice@127\.0\.0\.1 PRIVMSG #bus :line {i}$")
    bob.send("NOTICE #bus :a notice", "PRIVMSG alice :private", "NOTICE alice :private notice")
    alice.expect(r"^:bob!\S+ NOTICE #bus :a notice$")
    alice.expect(r"^:bob!\S+ PRIVMSG alice :private$")
    alice.expect(r"^:bob!\S+ NOTICE alice :private notice$")

    # topic and modes set on one node hold on the other
    alice.send("TOPIC #bus :shared topic", "MODE #bus +m")
    bob.expect(r"^:alice!\S+ TOPIC #bus :shared topic$")
    bob.expect(r"^:alice!\S+ MODE #bus \+m$")
    bob.send("TOPIC #bus", "PRIVMSG #bus :muted?")
    bob.expect(r" 332 bob #bus :shared topic$")
    bob.expect(r" 404 bob #bus ")
    alice.send("MODE #bus +v bob")
    bob.expect(r"^:alice!\S+ MODE #bus \+v bob$")
    bob.send("PRIVMSG #bus :voiced")
    alice.expect(r"^:bob!\S+ PRIVMSG #bus :voiced$")
    alice.send("MODE #bus -m+kl sesame 5")
    bob.expect(r"MODE #bus -m\+kl sesame 5$")
    bob.send("MODE #bus")
    bob.expect(r" 324 bob #bus \+ntkl sesame 5$")

    # a nick change reaches the other node; queries show the whole network
    bob.send("NICK robert")
    alice.expect(r"^:bob!bob@127\.0\.0\.1 NICK robert$")
    alice.send("WHOIS robert", "WHO #bus", "LIST", "LUSERS", "NAMES #bus")
    alice.expect(r" 311 alice robert bob 127\.0\.0\.1 \* :bob real$")
    alice.expect(r" 312 alice robert two\.test ")
    who = alice.lines_until(r" 315 alice #bus ")
    assert any(" 352 alice #bus alice 127.0.0.1 one.test alice H@ " in line for line in who), who
    assert any(" 352 alice #bus bob 127.0.0.1 two.test robert H+ " in line for line in who), who
    alice.expect(r" 322 alice #bus 2 :shared topic$")
    alice.expect(r" 251 alice :There are 2 users and 0 services on 2 servers$")
    alice.expect(r" 353 alice = #bus :@alice \+robert$")

    # a nick taken on the other node is refused; the old one is free again
    carol = Client(one.endpoint.port)
    carol.send("NICK robert", "NICK bob", "USER carol 0 * :carol")
    carol.expect(r" 433 \* robert ")
    carol.expect(r" 001 bob ")

    # KICK from one node of a user on the other
    alice.send("KICK #bus robert :out")
    robert_kick = bob.expect(r"^:alice!\S+ KICK #bus robert :?out$")
    assert robert_kick
    bob.send("PRIVMSG #bus :still here?", "NAMES #bus")
    bob.expect(r" 404 robert #bus ")
    bob.expect(r" 353 robert = #bus :@alice$")

    # QUIT reaches the peers on the other node
    bob.send("JOIN #bus sesame")
    alice.expect(r"^:robert!\S+ JOIN #bus$")
    bob.send("QUIT :bye now")
    alice.expect(r"^:robert!\S+ QUIT :Quit: bye now$")
    for client in (alice, bob, carol):
        client.close()
    assert one.stop() == 0
    assert two.stop() == 0


def join_relayed_channel(
    runner: Runner, tmp_path: Path, redis: RedisServer, url: str
) -> tuple[Client, Client, Client]:
    """Node ``one`` on the bus through ``url`` (a relay), node ``two`` on Redis itself;
    alice and bob (stamped) on the first, carol on the second, all in ``#fast``."""
    one = start_node(runner, tmp_path, redis, "one.test", url=url, heartbeat=60.0)
    two = start_node(runner, tmp_path, redis, "two.test", heartbeat=60.0)
    alice = Client(one.endpoint.port, "alice")
    bob = Client(one.endpoint.port, "bob", stamped=True)
    carol = Client(two.endpoint.port, "carol")
    wait_network(carol, 3, 2)
    for client in (alice, bob, carol):
        client.send("JOIN #fast")
        client.expect(rf" 366 {client.nick} #fast ")
    wait_reply(carol, "NAMES #fast", r" 366 carol #fast ", r" 353 carol = #fast :.*bob")
    wait_reply(alice, "NAMES #fast", r" 366 alice #fast ", r" 353 alice = #fast :.*carol")
    return alice, bob, carol


def test_a_channel_message_leaves_for_redis_before_the_local_fan_out(
    runner: Runner, tmp_path: Path, redis: RedisServer
) -> None:
    """The other nodes' members do not wait for the sender's node to write to its own
    members: the PUBLISH is written first (kernel receive stamps of the relay's socket
    and of a local member's, both written by the node one after the other)."""
    with redis_relay(redis) as relay:
        alice, bob, carol = join_relayed_channel(runner, tmp_path, redis, relay.url)
        for i in range(5):
            alice.send(f"PRIVMSG #fast :order check {i}")
            bob.expect(rf"^:alice!\S+ PRIVMSG #fast :order check {i}$")
            local = bob.stamps[bob.cursor - 1]
            carol.expect(rf"^:alice!\S+ PRIVMSG #fast :order check {i}$")
            published = relay.chunks_with(f"order check {i}".encode())
            assert len(published) == 1, published
            assert published[0][0] < local, (
                f"PUBLISH reached Redis's relay {(published[0][0] - local) / 1e3:.0f} us "
                "after the local member's line"
            )


def test_a_publish_does_not_wait_for_the_previous_ones_reply(
    runner: Runner, tmp_path: Path, redis: RedisServer
) -> None:
    """PUBLISHes are pipelined: while Redis's replies to the sender's node are held back,
    the node's later messages still reach the other node (each in its own PUBLISH), in
    order; once the replies flow again, everything goes on."""
    with redis_relay(redis) as relay:
        alice, bob, carol = join_relayed_channel(runner, tmp_path, redis, relay.url)
        relay.hold_replies()
        for i in range(3):
            alice.send(f"PRIVMSG #fast :held {i}")
            bob.expect(rf"^:alice!\S+ PRIVMSG #fast :held {i}$")
            carol.expect(rf"^:alice!\S+ PRIVMSG #fast :held {i}$", timeout=5.0)
        assert len(relay.chunks_with(b"PUBLISH")) >= 3
        relay.release()
        alice.send("PRIVMSG #fast :released")
        carol.expect(r"^:alice!\S+ PRIVMSG #fast :released$")
        carol.send("PRIVMSG #fast :back")
        alice.expect(r"^:carol!\S+ PRIVMSG #fast :back$")


def test_a_freed_nick_is_free_in_redis_before_the_others_see_the_change(
    runner: Runner, tmp_path: Path, redis: RedisServer
) -> None:
    """NICK frees the old nick in Redis before the NICK record is published: a user who
    sees the change may take the old nick at once. The node's release (EVALSHA) reaches
    Redis before its PUBLISH (kernel receive stamps of the relay, both written by the
    node), and carol takes the nick as soon as alice sees it freed."""
    with redis_relay(redis) as relay:
        one = start_node(runner, tmp_path, redis, "one.test")
        two = start_node(runner, tmp_path, redis, "two.test", url=relay.url)
        alice = Client(one.endpoint.port, "alice")
        alice.send("JOIN #nicks")
        alice.expect(r" 366 alice #nicks ")
        for round_ in range(3):
            old, new = f"bob{round_}", f"robert{round_}"
            bob = Client(two.endpoint.port, old)
            bob.send("JOIN #nicks")
            bob.expect(rf" 366 {old} #nicks ")
            wait_reply(alice, "NAMES #nicks", r" 366 alice #nicks ", rf" 353 .*\b{old}\b")
            bob.send(f"NICK {new}")
            alice.expect(rf"^:{old}!\S+ NICK {new}$")
            releases = relay.chunks_with(f"nick:{old}".encode())
            published = relay.chunks_with(f'"nick","{old}","{new}"'.encode())
            assert releases, relay.written
            assert len(published) == 1, published
            assert releases[-1][0] < published[0][0], "the PUBLISH left before the release"
            carol = Client(one.endpoint.port)
            carol.send(f"NICK {old}", f"USER c{round_} 0 * :carol")
            carol.expect(rf" 001 {old} ")
            for client in (bob, carol):
                client.send("QUIT")
                client.close()


def test_invite_and_private_channel_across_nodes(
    runner: Runner, tmp_path: Path, redis: RedisServer
) -> None:
    one = start_node(runner, tmp_path, redis, "one.test")
    two = start_node(runner, tmp_path, redis, "two.test")
    alice = Client(one.endpoint.port, "alice")
    bob = Client(two.endpoint.port, "bob")
    wait_network(bob, 2, 2)
    alice.send("JOIN #club", "MODE #club +i")
    alice.expect(r"MODE #club \+i$")
    wait_reply(bob, "MODE #club", r" (329|403) bob #club ", r" 324 bob #club \+int$")
    bob.send("JOIN #club")
    bob.expect(r" 473 bob #club ")
    alice.send("INVITE bob #club")
    alice.expect(r" 341 alice bob #club$")
    bob.expect(r"^:alice!\S+ INVITE bob #club$")
    bob.send("JOIN #club")
    bob.expect(r" 366 bob #club ")
    alice.expect(r"^:bob!\S+ JOIN #club$")


def test_simultaneous_registration_gives_a_nick_to_one(
    runner: Runner, tmp_path: Path, redis: RedisServer
) -> None:
    one = start_node(runner, tmp_path, redis, "one.test")
    two = start_node(runner, tmp_path, redis, "two.test")
    for round_ in range(20):
        nick = f"same{round_}"
        left, right = Client(one.endpoint.port), Client(two.endpoint.port)
        line = f"NICK {nick}\r\nUSER x 0 * :x\r\n".encode()
        left.sock.sendall(line)
        right.sock.sendall(line)
        outcomes = []
        for client in (left, right):
            reply = client.expect(rf" (001 {nick}|433 \* {nick}) ")
            outcomes.append(" 001 " in reply)
        assert sorted(outcomes) == [False, True], (left.lines, right.lines)
        left.close()
        right.close()


def test_three_nodes(runner: Runner, tmp_path: Path, redis: RedisServer) -> None:
    nodes = [start_node(runner, tmp_path, redis, f"n{i}.test") for i in range(3)]
    clients = [Client(node.endpoint.port, f"user{i}") for i, node in enumerate(nodes)]
    wait_network(clients[0], 3, 3)
    for client in clients:
        client.send("JOIN #three")
        client.expect(rf" 366 {client.nick} #three ")
        for other in clients:  # every node knows the member before the next one joins
            wait_reply(other, "NAMES #three", r" 366 ", rf"[ @]{client.nick}( |$)")
    for i, client in enumerate(clients):
        client.send(f"PRIVMSG #three :from {i}")
    for i, client in enumerate(clients):
        for j in range(3):
            if j != i:
                client.seen(rf"^:user{j}!\S+ PRIVMSG #three :from {j}$")
    clients[2].send("NAMES #three")
    clients[2].expect(r" 353 user2 = #three :@user0 user1 user2$")
    clients[1].send("QUIT :leaving")
    clients[0].expect(r"^:user1!\S+ QUIT :Quit: leaving$")
    clients[2].expect(r"^:user1!\S+ QUIT :Quit: leaving$")


def alice_and_bob(
    runner: Runner, tmp_path: Path, redis: RedisServer, heartbeat: float
) -> tuple[Medusa, Medusa, Client, Client]:
    """Two nodes with a short heartbeat, alice on the first and bob on the second, both in
    ``#bus`` (alice its operator)."""
    one = start_node(runner, tmp_path, redis, "one.test", heartbeat=heartbeat)
    two = start_node(runner, tmp_path, redis, "two.test", heartbeat=heartbeat)
    alice = Client(one.endpoint.port, "alice")
    bob = Client(two.endpoint.port, "bob")
    alice.send("JOIN #bus")
    alice.expect(r" 366 alice ")
    wait_reply(bob, "NAMES #bus", r" 366 bob #bus ", r" 353 bob = #bus :@alice$")
    bob.send("JOIN #bus")
    alice.expect(r"^:bob!\S+ JOIN #bus$")
    return one, two, alice, bob


def test_killed_node_is_lost(runner: Runner, tmp_path: Path, redis: RedisServer) -> None:
    one, two, alice, _ = alice_and_bob(runner, tmp_path, redis, 1)
    two.send_signal(signal.SIGKILL)
    two.wait()
    alice.expect(r"^:bob!bob@127\.0\.0\.1 QUIT :node lost$")
    alice.send("NAMES #bus", "LUSERS")
    alice.expect(r" 353 alice = #bus :@alice$")
    alice.expect(r" 251 alice :There are 1 users and 0 services on 1 servers$")
    assert redis.command("EXISTS", "medusa-chat:Medusa:nick:bob") == b":0\r\n"
    again = Client(one.endpoint.port, "bob")  # the lost node's nick is free
    again.close()
    alice.close()


def test_redis_restart(runner: Runner, tmp_path: Path, redis: RedisServer) -> None:
    one, two, alice, bob = alice_and_bob(runner, tmp_path, redis, 2)
    alice.send("TOPIC #bus :kept", "MODE #bus +v bob")
    bob.expect(r"MODE #bus \+v bob$")
    redis.stop()
    alice.expect(r" NOTICE alice :The network's bus \(Redis\) is unreachable")
    bob.expect(r" NOTICE bob :The network's bus \(Redis\) is unreachable")
    alice.send("PRIVMSG bob :lost?", "PING still")
    alice.expect(r" PONG \S+ :still$")  # the local user is kept
    late = Client(one.endpoint.port)
    late.send("NICK newcomer", "USER n 0 * :n")
    late.expect(r" 437 \* newcomer ")  # no nick can be given without the bus
    redis.start()  # the same port, empty
    alice.expect(r" NOTICE alice :The network's bus \(Redis\) is back")
    bob.expect(r" NOTICE bob :The network's bus \(Redis\) is back")
    wait_network(bob, 2, 2)
    alice.send("PRIVMSG #bus :after the restart")
    bob.expect(r"^:alice!\S+ PRIVMSG #bus :after the restart$")
    bob.send("TOPIC #bus", "NAMES #bus")
    bob.expect(r" 332 bob #bus :?kept$")
    bob.expect(r" 353 bob = #bus :@alice \+bob$")
    # the nicks were claimed again in the new (empty) Redis
    assert redis.command("GET", "medusa-chat:Medusa:nick:alice").startswith(b"$")
    assert not redis.command("GET", "medusa-chat:Medusa:nick:alice").startswith(b"$-1")
    thief = Client(two.endpoint.port)
    thief.send("NICK alice", "USER t 0 * :t")
    thief.expect(r" 433 \* alice ")
    late.send("NICK newcomer")
    late.expect(r" 001 newcomer ")


def test_simple_and_web_users_meet_irc_users(
    runner: Runner, tmp_path: Path, redis: RedisServer
) -> None:
    pytest.importorskip("wsproto")
    one = start_node(
        runner,
        tmp_path,
        redis,
        "one.test",
        extra='simple = "127.0.0.1:0"\nsimple_channel = "#lobby"\nweb = "127.0.0.1:0"',
        listening=3,
    )
    two = start_node(runner, tmp_path, redis, "two.test")
    _, simple_end, web_end = one.endpoints
    ircer = Client(two.endpoint.port, "ircer")
    ircer.send("JOIN #lobby")
    ircer.expect(r" 366 ircer #lobby ")
    with socket.create_connection(("127.0.0.1", simple_end.port), timeout=IO_TIMEOUT) as telnet:
        data = b""
        while b"nickname: " not in data:
            data += telnet.recv(4096)
        telnet.sendall(b"teller\r\nhello from telnet\r\n")
        ircer.expect(r"^:teller!\S+ JOIN #lobby$")
        ircer.expect(r"^:teller!\S+ PRIVMSG #lobby :hello from telnet$")
        ircer.send("PRIVMSG #lobby :hello telnet")
        while b"<ircer> hello telnet" not in data:
            chunk = telnet.recv(4096)
            assert chunk, data
            data += chunk
    ws = WebSocketUser(web_end.port)
    ws.send("NICK webber", "USER webber 0 * :w", "JOIN #lobby", "PRIVMSG #lobby :from the web")
    ircer.expect(r"^:webber!\S+ JOIN #lobby$")
    ircer.expect(r"^:webber!\S+ PRIVMSG #lobby :from the web$")
    ircer.send("PRIVMSG #lobby :hello web")
    ws.expect(":ircer!")
    ws.close()


class WebSocketUser:
    """A WebSocket client of the chat page's bridge (wsproto over a blocking socket)."""

    def __init__(self, port: int) -> None:
        from wsproto import ConnectionType, WSConnection
        from wsproto.events import Request

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
        _OPEN.append(self.sock)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.text = ""
        host = f"127.0.0.1:{port}"
        self.sock.sendall(
            self.ws.send(
                Request(
                    host=host,
                    target="/ws",
                    subprotocols=["text.ircv3.net"],
                    extra_headers=[(b"origin", f"http://{host}".encode())],
                )
            )
        )
        self.accepted = False
        self.expect("")  # the handshake's answer first

    def send(self, *lines: str) -> None:
        from wsproto.events import TextMessage

        for line in lines:
            self.sock.sendall(self.ws.send(TextMessage(line)))

    def expect(self, text: str) -> None:
        from wsproto.events import AcceptConnection, TextMessage

        deadline = time.monotonic() + IO_TIMEOUT
        while not self.accepted or text not in self.text:
            assert time.monotonic() < deadline, self.text
            data = self.sock.recv(65536)
            assert data, self.text
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, TextMessage):
                    self.text += event.data
                assert isinstance(event, AcceptConnection | TextMessage), event
                self.accepted = self.accepted or isinstance(event, AcceptConnection)

    def close(self) -> None:
        self.sock.close()


def test_irc_library_clients_on_two_nodes(
    runner: Runner, tmp_path: Path, redis: RedisServer
) -> None:
    import irc.client  # type: ignore[import-untyped]

    one = start_node(runner, tmp_path, redis, "one.test")
    two = start_node(runner, tmp_path, redis, "two.test")
    reactor = irc.client.Reactor()
    got: list[object] = []
    ends: list[object] = []
    reactor.add_global_handler("pubmsg", lambda c, e: got.append(e))
    reactor.add_global_handler("endofnames", lambda c, e: ends.append(c))
    first = reactor.server().connect("127.0.0.1", one.endpoint.port, "libone")
    second = reactor.server().connect("127.0.0.1", two.endpoint.port, "libtwo")

    def pump(predicate: object) -> None:
        deadline = time.monotonic() + IO_TIMEOUT
        while not predicate():  # type: ignore[operator]
            assert time.monotonic() < deadline, "timed out"
            reactor.process_once(0.01)

    first.join("#lib")
    pump(lambda: len(ends) == 1)
    second.join("#lib")
    pump(lambda: len(ends) == 2)
    first.privmsg("#lib", "across nodes")
    pump(lambda: bool(got))
    event = got[0]
    assert event.source.nick == "libone"  # type: ignore[attr-defined]
    assert event.arguments == ["across nodes"]  # type: ignore[attr-defined]
    first.disconnect()
    second.disconnect()


def test_workers_with_a_bus_run_the_chat_in_every_worker(
    runner: Runner, redis: RedisServer
) -> None:
    port = free_port_range(1)
    process = runner.start(
        "serve",
        "--workers",
        "2",
        "--chat",
        f"127.0.0.1:{port}",
        "--chat-bus",
        redis.url,
        "--grace",
        "2",
    )
    line = process.stdout()
    assert f"medusa: chat listening on irc://127.0.0.1:{port}/" in line
    assert "worker 1 only" not in line
    watcher = Client(port, "watcher")
    wait_network(watcher, 1, 2)  # both workers are nodes of the bus
    watcher.send("JOIN #w")
    watcher.expect(r" 366 watcher ")
    clients = [Client(port, f"c{i}") for i in range(6)]
    for client in clients:
        client.send("JOIN #w", f"PRIVMSG #w :hi from {client.nick}")
    for client in clients:
        watcher.seen(rf"^:{client.nick}!\S+ PRIVMSG #w :hi from {client.nick}$")
    assert process.stop() == 0


def test_bus_without_redis_installed_names_the_extra(tmp_path: Path) -> None:
    """``--chat-bus`` and ``bus =`` without redis-py: a usage or configuration error that
    names ``pip install 'medusa-chat[redis]'`` (redis-py hidden from the import system)."""
    config = tmp_path / "medusa.toml"
    config.write_text('[[server]]\ntype = "chat"\nbus = "redis://127.0.0.1:1/0"\n')
    hide = "import sys; sys.modules['redis'] = None; from medusa.core.cli import main; "
    for args in (["--chat", "127.0.0.1:0", "--chat-bus", "redis://x:1/0"], ["-c", str(config)]):
        result = subprocess.run(
            [sys.executable, "-c", hide + f"sys.exit(main(['serve', *{args!r}]))"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert "pip install 'medusa-chat[redis]'" in result.stderr, result.stderr
        option = "--chat-bus" if "--chat-bus" in args else "server[0].bus"
        assert option in result.stderr, result.stderr
