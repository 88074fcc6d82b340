"""The sans-IO parts without sockets: message parsing and formatting, case mapping and
names, the token bucket, the network state machine and its command table, the simple
mode's session and rendering, the HTTP head parser; the package's import graph."""

from __future__ import annotations

import ast
import logging
import random
import subprocess
import sys
from pathlib import Path

import pytest

import medusa.chat
from medusa.chat.casemap import irc_lower, is_valid_channel, is_valid_nick, mask_matcher
from medusa.chat.commands import COMMANDS
from medusa.chat.flood import TokenBucket
from medusa.chat.message import (
    Message,
    command_name,
    decode_line,
    encode_line,
    format_line,
    has_forbidden,
    parse_message,
    parse_number,
)
from medusa.chat.network import Network, NetworkConfig
from medusa.chat.session import LinkPolicy, Session
from medusa.chat.simplesession import SimpleSession, render_plain, strip_telnet
from medusa.chat.user import User
from medusa.chat.websocket import parse_head


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("PING :abc def", Message("PING", ["abc def"])),
        (":n!u@h PRIVMSG #c :hi :)", Message("PRIVMSG", ["#c", "hi :)"], "n!u@h")),
        ("privmsg  #c   x", Message("PRIVMSG", ["#c", "x"])),
        ("@time=1;id=2 :srv 001 me :Welcome", Message("001", ["me", "Welcome"], "srv")),
        ("TOPIC #c :", Message("TOPIC", ["#c", ""])),
        (
            "A " + " ".join("p" * 1 for _ in range(20)),
            Message("A", ["p"] * 14 + [" ".join(["p"] * 6)]),
        ),
    ],
)
def test_parse(line: str, expected: Message) -> None:
    assert parse_message(line) == expected


@pytest.mark.parametrize("line", ["", "   ", ":prefix-only", "@tags-only"])
def test_parse_nothing(line: str) -> None:
    assert parse_message(line) is None


def test_format_and_encode() -> None:
    assert format_line("srv", "001", "me", "Welcome here") == ":srv 001 me :Welcome here"
    assert format_line(None, "PING", "srv") == "PING srv"
    assert format_line("s", "X", "a", "") == ":s X a :"
    assert format_line("s", "X", ":colon") == ":s X ::colon"
    assert encode_line("x" * 600) == b"x" * 510 + b"\r\n"
    # never half of a UTF-8 character at the cut
    cut = encode_line("x" * 509 + "é")
    assert cut == b"x" * 509 + b"\r\n"
    assert encode_line("caf\udce9") == b"caf\xe9\r\n"  # surrogateescape round trip


def test_case_mapping_and_names() -> None:
    assert irc_lower("Nick[A]\\~") == "nick{a}|^"
    assert is_valid_nick("[Bob]_-9")
    assert not is_valid_nick("9bob")
    assert not is_valid_nick("bo b")
    assert not is_valid_nick("a" * 31)
    assert is_valid_nick("a" * 9, max_length=9)
    assert is_valid_channel("#medusa")
    assert is_valid_channel("&local")
    for bad in ("medusa", "#", "#a b", "#a,b", "#a:b", "#a\x07", "#" + "x" * 50):
        assert not is_valid_channel(bad)
    assert mask_matcher("Al?c*")(irc_lower("ALICE_2"))
    assert not mask_matcher("al?c")("alice")


def _reference_match(mask: str, name: str) -> bool:
    """Wildcard matching by dynamic programming, to check mask_matcher against."""
    mask = irc_lower(mask)
    ends = {0}
    for c in mask:
        if c == "*":
            ends = set(range(min(ends), len(name) + 1)) if ends else set()
        else:
            ends = {e + 1 for e in ends if e < len(name) and (c == "?" or name[e] == c)}
    return len(name) in ends


def test_mask_matcher_agrees_with_a_reference() -> None:
    rng = random.Random(13)
    for _ in range(3000):
        mask = "".join(rng.choice("ab*?") for _ in range(rng.randint(0, 7)))
        name = "".join(rng.choice("ab") for _ in range(rng.randint(0, 7)))
        assert mask_matcher(mask)(name) == _reference_match(mask, name), (mask, name)


def test_mask_matcher_has_no_exponential_case() -> None:
    """``*a*a*...*b`` against ``aaa...``: a backtracking regular expression takes longer than
    the age of the universe; the matcher scans the name once per piece. Run in a child
    process so that a regression fails by its deadline instead of hanging the tests."""
    code = (
        "from medusa.chat.casemap import mask_matcher\n"
        "assert not mask_matcher('*a' * 40 + 'b')('a' * 400)\n"
        "assert mask_matcher('*a' * 40 + '*')('a' * 400)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], timeout=60, check=False)
    assert done.returncode == 0


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("42", 42), ("999999999", 999999999), ("1234567890", None), ("", None)]
    + [(bad, None) for bad in ("²", "١٢", "٣", "-1", "+1", " 1", "1 ", "1.5", "0x10", "\uff11")],
)
def test_parse_number_ascii_only(text: str, value: int | None) -> None:
    assert parse_number(text) == value


def test_parse_number_digit_bound() -> None:
    assert parse_number("123", max_digits=3) == 123
    assert parse_number("1234", max_digits=3) is None


def test_line_checks() -> None:
    assert has_forbidden("PRIVMSG #c :a\x00b")
    assert has_forbidden("PRIVMSG #c :a\rb")
    assert not has_forbidden("PRIVMSG #c :\x01ACTION waves\x01")
    assert command_name(b"privmsg #c :\xff") == "PRIVMSG"
    assert command_name(b"@a=b :n!u@h JOIN #\xff") == "JOIN"
    assert command_name(b"\xffJOIN #c") == "*"
    assert command_name("") == "*"
    assert command_name("PRIV\x00MSG x") == "*"
    with pytest.raises(UnicodeDecodeError):
        decode_line(b"caf\xe9")
    assert decode_line("café".encode()) == "café"


def test_format_keeps_the_shape_of_the_line() -> None:
    """A middle parameter that cannot be one (a client's text echoed in an error) is
    written as ``*``: the line still has as many parameters."""
    assert format_line("s", "401", "me", ":x", "No such") == ":s 401 me * :No such"
    assert format_line("s", "401", "me", "a b", "No such") == ":s 401 me * :No such"
    assert format_line("s", "401", "me", "", "No such") == ":s 401 me * :No such"


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=2.0, burst=3.0, now=0.0)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.5)  # one token back after half a second
    assert not bucket.take(0.5)
    assert TokenBucket(rate=0, burst=1, now=0).take(0.0)


class Sink:
    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.closed: str | None = None

    def send(self, data: bytes) -> None:
        self.lines.append(data)

    def close(self, reason: str) -> None:
        self.closed = reason

    def text(self) -> str:
        return b"".join(self.lines).decode()


def session(net: Network, sink: Sink, policy: LinkPolicy | None = None) -> Session:
    return Session(net, "10.0.0.1", sink.send, sink.close, policy or LinkPolicy(), 0.0)


def test_network_state_machine() -> None:
    net = Network(NetworkConfig(server_name="irc.test"))
    a_sink, b_sink = Sink(), Sink()
    a, b = session(net, a_sink), session(net, b_sink)
    for s, nick in ((a, "alice"), (b, "bob")):
        s.receive_line(f"NICK {nick}\r".encode(), 1.0)
        s.receive_line(f"USER {nick} 8 * :Real {nick}".encode(), 1.0)
    assert ":irc.test 001 alice :Welcome to the Internet Relay Network alice!alice@10.0.0.1" in (
        a_sink.text()
    )
    assert a.user.modes == {"i"}  # USER mode 8 is +i
    a.receive_line(b"JOIN #x", 2.0)
    b.receive_line(b"JOIN #X", 2.0)
    assert ":bob!bob@10.0.0.1 JOIN #x\r\n" in a_sink.text()
    b.receive_line(b"PRIVMSG #x :hi there", 3.0)
    assert a_sink.lines[-1] == b":bob!bob@10.0.0.1 PRIVMSG #x :hi there\r\n"
    assert net.find_channel("#X") is not None
    assert len(net.channels) == 1
    b.receive_line(b"QUIT :later", 4.0)
    assert b_sink.closed == "Quit: later"
    assert a_sink.lines[-1] == b":bob!bob@10.0.0.1 QUIT :Quit: later\r\n"
    assert net.find_user("bob") is None
    a.receive_line(b"PART #x", 5.0)
    assert net.channels == {}


def test_session_ping_and_flood() -> None:
    net = Network()
    sink = Sink()
    policy = LinkPolicy(flood_rate=1, flood_burst=3, ping_interval=10, ping_timeout=5)
    s = session(net, sink, policy)
    s.receive_line(b"NICK p", 0.0)
    s.receive_line(b"USER p 0 * :p", 0.0)
    s.check_timeout(9.0)
    assert not sink.lines[-1].startswith(b"PING")
    s.check_timeout(10.5)
    assert sink.lines[-1] == b"PING medusa\r\n"
    s.receive_line(b"PONG medusa", 11.0)
    s.check_timeout(17.0)  # answered: no timeout
    assert sink.closed is None
    s.check_timeout(21.5)  # silent again: a new PING
    assert sink.lines[-1] == b"PING medusa\r\n"
    s.check_timeout(27.0)
    assert sink.closed == "Ping timeout: 16 seconds"
    flooder_sink = Sink()
    flooder = session(net, flooder_sink, policy)
    for _ in range(4):
        flooder.receive_line(b"PING x", 100.0)
    assert flooder_sink.closed == "Excess Flood"


def broken(net: Network, user: User, msg: Message) -> None:
    """A command handler with a bug."""
    raise RuntimeError("a bug in " + msg.command)


def test_network_takes_its_command_table(caplog: pytest.LogCaptureFixture) -> None:
    """The table given to ``Network`` is the one served; ``Network()`` serves the standard
    one; a handler that raises is answered with 400 and logged once, and the session goes
    on (a PING afterwards is answered)."""

    def hello(net: Network, user: User, msg: Message) -> None:
        net.notice(user, f"hello {user.nick}")

    assert Network().commands is COMMANDS
    net = Network(commands={**COMMANDS, "HELLO": hello, "BROKEN": broken})
    sink = Sink()
    s = session(net, sink)
    s.receive_line(b"BROKEN", 0.0)  # not before registration
    assert sink.lines[-1] == b":medusa 451 * :You have not registered\r\n"
    s.receive_line(b"NICK tab", 0.0)
    s.receive_line(b"USER tab 0 * :t", 0.0)
    s.receive_line(b"HELLO", 1.0)
    assert sink.lines[-1] == b":medusa NOTICE tab :hello tab\r\n"
    caplog.clear()
    s.receive_line(b"BROKEN now", 2.0)
    assert sink.lines[-1] == b":medusa 400 tab BROKEN :Internal error: not done\r\n"
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "BROKEN" in errors[0].getMessage()
    assert errors[0].exc_info is not None  # a bug: its traceback is logged
    s.receive_line(b"PING :after", 3.0)
    assert sink.lines[-1] == b":medusa PONG medusa :after\r\n"
    assert sink.closed is None
    # a network without PRIVMSG does not serve it
    small = Network(commands={k: v for k, v in COMMANDS.items() if k != "PRIVMSG"})
    other = Sink()
    t = session(small, other)
    t.receive_line(b"NICK few", 0.0)
    t.receive_line(b"USER few 0 * :f", 0.0)
    t.receive_line(b"PRIVMSG few :x", 1.0)
    assert other.lines[-1] == b":medusa 421 few PRIVMSG :Unknown command\r\n"


def chat_imports() -> tuple[dict[str, set[str]], list[str]]:
    """The import graph of ``medusa.chat`` as run (imports under ``if TYPE_CHECKING:``
    left out), and the ``medusa.chat`` imports made inside functions."""
    root = Path(medusa.chat.__file__).parent
    names = {path.stem for path in root.glob("*.py")}
    graph: dict[str, set[str]] = {}
    inside: list[str] = []

    def targets(node: ast.Import | ast.ImportFrom) -> set[str]:
        found = set()
        if isinstance(node, ast.ImportFrom) and node.module == "medusa.chat":
            found = {alias.name for alias in node.names if alias.name in names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("medusa.chat."):
            found = {(node.module or "").split(".")[2]}
        elif isinstance(node, ast.Import):
            found = {a.name.split(".")[2] for a in node.names if a.name.startswith("medusa.chat.")}
        return found

    for path in root.glob("*.py"):
        tree = ast.parse(path.read_text())
        edges: set[str] = set()
        for statement in tree.body:
            if isinstance(statement, ast.Import | ast.ImportFrom):
                edges |= targets(statement)
        graph[path.stem] = edges
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Import | ast.ImportFrom) and targets(inner):
                        inside.append(f"{path.stem}.{node.name}")
    return graph, inside


def test_no_hidden_import_cycle() -> None:
    """Every ``medusa.chat`` import is at the top of its module and they form no cycle:
    the network is given its command table instead of importing it from inside
    ``dispatch`` (the handlers name ``Network`` as a type only)."""
    graph, inside = chat_imports()
    assert inside == []
    assert "commands" in graph["network"]
    assert "network" not in graph["commands"]
    state: dict[str, int] = {}  # 1: on the path being explored, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            assert state.get(target) != 1, " -> ".join([*path, module, target])
            if target not in state:
                visit(target, [*path, module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_simple_session_beside_an_irc_session() -> None:
    """A simple-mode user is a session of the same network: it picks a nick at a prompt,
    joins the channel, and talks with an IRC user; what it receives is plain text."""
    net = Network()
    irc_sink, plain = Sink(), Sink()
    irc = session(net, irc_sink)
    irc.receive_line(b"NICK ircer", 0.0)
    irc.receive_line(b"USER ircer 0 * :i", 0.0)
    irc.receive_line(b"JOIN #lobby", 0.0)
    telnet = SimpleSession(net, "10.0.0.2", plain.send, plain.close, LinkPolicy(), 0.0, "#lobby")
    telnet.greet()
    assert plain.text().endswith("nickname: ")
    telnet.receive_line(b"IRCER\r", 1.0)
    assert plain.text().endswith("* that nickname is taken\r\nnickname: ")
    telnet.receive_line(b"\xff\xfb\x01plain\r", 1.0)
    assert irc_sink.lines[-1] == b":plain!simple@10.0.0.2 JOIN #lobby\r\n"
    assert "* plain has joined #lobby\r\n* Here: @ircer plain\r\n" in plain.text()
    telnet.receive_line(b"hi all\r", 2.0)
    assert irc_sink.lines[-1] == b":plain!simple@10.0.0.2 PRIVMSG #lobby :hi all\r\n"
    irc.receive_line(b"PRIVMSG #lobby :hi plain", 2.0)
    net.seal_shared()
    assert plain.lines[-1] == b"<ircer> hi plain\r\n"
    telnet.receive_line(b"/who", 3.0)
    assert plain.lines[-1] == b"* Here: ircer plain\r\n"
    telnet.receive_line(b"caf\xe9", 3.0)
    assert plain.lines[-1] == b"* line refused: not UTF-8 (set your terminal to UTF-8)\r\n"
    telnet.receive_line(b"x" * 600, 3.0)
    assert plain.lines[-1] == b"* line too long (512 bytes at most)\r\n"
    telnet.receive_line(b"/quit bye", 4.0)
    assert plain.closed == "Quit: bye"
    assert irc_sink.lines[-1] == b":plain!simple@10.0.0.2 QUIT :Quit: bye\r\n"
    assert net.find_user("plain") is None
    # over 512 bytes costs a flood token like any line, at the prompt too
    flood = Sink()
    flooder = SimpleSession(net, "10.0.0.3", flood.send, flood.close, LinkPolicy(1, 2), 0.0, "#c")
    flooder.refuse_long_line(0.0)
    flooder.refuse_long_line(0.0)
    assert flood.closed is None
    flooder.refuse_long_line(0.0)
    assert flood.closed == "Excess Flood"


def test_render_plain() -> None:
    assert render_plain(b":a!u@h PRIVMSG #c :hi\r\n", "me") == "<a> hi"
    assert render_plain(b":a!u@h PRIVMSG me :psst\r\n", "me") == "*a* psst"
    assert render_plain(b":a!u@h PRIVMSG #c :\x01ACTION waves\x01\r\n", "me") == "* a waves"
    assert render_plain(b":a!u@h QUIT :Quit: bye\r\n", "me") == "* a has quit (Quit: bye)"
    assert render_plain(b":srv 366 me #c :End of NAMES list\r\n", "me") is None
    assert (
        render_plain(b":srv 401 me x :No such nick/channel\r\n", "me") == "* x No such nick/channel"
    )


def test_strip_telnet() -> None:
    assert strip_telnet(b"\xff\xfd\x18nick\xff\xf1") == b"nick"
    assert strip_telnet(b"a\xff\xffb") == b"a\xffb"
    assert strip_telnet(b"plain") == b"plain"


def test_parse_head() -> None:
    head = b"GET /ws?x=1 HTTP/1.1\r\nHost: h:1\r\nUpgrade: WebSocket\r\n\r\n"
    assert parse_head(head) == ("GET", "/ws", {"host": "h:1", "upgrade": "WebSocket"})
    assert parse_head(b"GARBAGE\r\n\r\n") is None
    assert parse_head(b"GET / HTTP/1.1\r\nno colon\r\n\r\n") is None
