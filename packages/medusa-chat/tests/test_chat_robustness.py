"""Malformed and hostile input over real sockets (issue 13): each bad line gets an error
reply, the sender's connection stays usable (a PING afterwards is answered) and nothing is
logged as an error; MODE applies all of its changes or none; ``+s``/``+p`` channels; WHO on
an invisible nick; ``ERR_INVALIDMODEPARAM`` (696); USER without a realname; NUL, CR and
invalid UTF-8 refused instead of relayed."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import pytest

from medusa.chat.commands import COMMANDS
from medusa.chat.message import Message
from medusa.chat.network import Network
from medusa.chat.server import ChatServer
from medusa.chat.user import User
from medusa.core.testing import ServerThread

TIMEOUT = 10.0


class Recorder(logging.Handler):
    """Every log record at WARNING or above, and every record carrying a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING or record.exc_info:
            self.records.append(record)

    def problems(self) -> list[str]:
        return [f"{r.name} {r.levelname} {r.getMessage()}" for r in self.records]


@pytest.fixture
def logged() -> Iterator[Recorder]:
    recorder = Recorder()
    root = logging.getLogger()
    root.addHandler(recorder)
    try:
        yield recorder
    finally:
        root.removeHandler(recorder)


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def server(request: pytest.FixtureRequest) -> Iterator[ChatServer]:
    chat = ChatServer(("127.0.0.1", 0), flood_rate=0, max_clients_per_address=100)
    with ServerThread([chat], backend=request.param):
        yield chat


class Client:
    """A raw IRC connection: bytes out, bytes in, read up to a marker."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.buffer = b""
        self.pings = 0

    def send(self, *lines: bytes) -> None:
        self.sock.sendall(b"".join(line + b"\r\n" for line in lines))

    def until(self, needle: bytes) -> bytes:
        """Everything received up to and including the line holding ``needle``."""
        deadline = time.monotonic() + TIMEOUT
        while needle not in self.buffer:
            assert time.monotonic() < deadline, f"no {needle!r} in {self.buffer!r}"
            chunk = self.sock.recv(65536)
            assert chunk, f"connection closed before {needle!r}; got {self.buffer!r}"
            self.buffer += chunk
        end = self.buffer.index(b"\n", self.buffer.index(needle)) + 1
        data, self.buffer = self.buffer[:end], self.buffer[end:]
        return data

    def roundtrip(self) -> bytes:
        """PING the server and return what arrived before its PONG: the connection is
        usable and every line sent before was handled."""
        self.pings += 1
        token = f"alive{self.pings}".encode()
        self.send(b"PING :" + token)
        return self.until(b"PONG medusa :" + token)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def clients(server: ChatServer) -> Iterator[list[Client]]:
    made: list[Client] = []
    yield made
    for client in made:
        client.close()


def connect(server: ChatServer, clients: list[Client], nick: str | None = None) -> Client:
    client = Client(server.port)
    clients.append(client)
    if nick is not None:
        client.send(f"NICK {nick}".encode(), f"USER {nick} 0 * :{nick}".encode())
        client.until(b" 422 ")
    return client


def joined(client: Client, channel: bytes) -> None:
    client.send(b"JOIN " + channel)
    client.until(b" 366 ")


def test_user_with_a_unicode_digit_registers(
    server: ChatServer, clients: list[Client], logged: Recorder
) -> None:
    client = connect(server, clients)
    client.send(b"NICK udigit", "USER a ² * :x".encode())
    assert b" 001 udigit " in client.until(b" 422 ")
    client.roundtrip()
    client.send(b"MODE udigit")
    assert b" 221 udigit +\r\n" in client.roundtrip()  # '²' set no mode
    assert logged.problems() == []


@pytest.mark.parametrize("limit", ["²", "١٢", "0", "-3", "12345678901", "", "5x"])
def test_mode_limit_not_a_number(
    server: ChatServer, clients: list[Client], logged: Recorder, limit: str
) -> None:
    op = connect(server, clients, "limitop")
    joined(op, b"#limit")
    op.send(f"MODE #limit +l :{limit}".encode())
    reply = op.until(b" 696 ")
    assert b" 696 limitop #limit l " in reply
    op.send(b"MODE #limit")
    assert b" 324 limitop #limit +nt\r\n" in op.roundtrip()
    op.send(b"MODE #limit +l 12")
    assert b" MODE #limit +l 12\r\n" in op.roundtrip()
    assert logged.problems() == []


def test_join_invalid_utf8(server: ChatServer, clients: list[Client], logged: Recorder) -> None:
    client = connect(server, clients, "badjoin")
    client.send(b"JOIN #\xff\xfe")
    reply = client.roundtrip()
    assert b"FAIL JOIN INVALID_UTF8 :" in reply
    assert b"@127.0.0.1 JOIN" not in reply
    client.send(b"JOIN #ok")
    assert b" JOIN #ok" in client.until(b" 366 ")
    assert logged.problems() == []


def test_mode_applies_all_or_nothing(
    server: ChatServer, clients: list[Client], logged: Recorder
) -> None:
    op = connect(server, clients, "allop")
    member = connect(server, clients, "allmember")
    joined(op, b"#all")
    joined(member, b"#all")
    op.until(b"JOIN #all")
    op.send("MODE #all +mikl key ²".encode())
    assert b" 696 allop #all l \xc2\xb2 :" in op.until(b" 696 ")
    op.send(b"MODE #all +mi+o nobody_here")
    assert b" 401 allop nobody_here " in op.until(b" 401 ")
    op.send(b"MODE #all +ntz")
    op.until(b" 472 ")
    op.send(b"MODE #all")
    assert b" 324 allop #all +nt\r\n" in op.roundtrip()
    assert b"MODE" not in member.roundtrip()  # nothing was applied, so nothing was said
    member.send(b"NAMES #all")
    assert b" 353 allmember = #all :@allop allmember\r\n" in member.roundtrip()
    # a valid line is applied whole and told to the members once
    op.send(b"MODE #all +mikl key 5")
    assert b":allop!allop@127.0.0.1 MODE #all +mikl key 5\r\n" in member.until(b" MODE ")
    op.send(b"MODE #all")
    assert b" 324 allop #all +imntkl key 5\r\n" in op.roundtrip()
    assert logged.problems() == []


@pytest.mark.parametrize("key", [b":a b", b":", b"a,b", b":" + b"k" * 40])
def test_invalid_key_is_696(
    server: ChatServer, clients: list[Client], logged: Recorder, key: bytes
) -> None:
    op = connect(server, clients, "keyop")
    joined(op, b"#key")
    op.send(b"MODE #key +k " + key)
    assert b" 696 keyop #key k " in op.until(b" 696 ")
    op.send(b"MODE #key +k")
    assert b" 461 keyop MODE " in op.until(b" 461 ")
    op.send(b"MODE #key")
    assert b" 324 keyop #key +nt\r\n" in op.roundtrip()
    assert logged.problems() == []


def test_user_empty_realname(server: ChatServer, clients: list[Client], logged: Recorder) -> None:
    client = connect(server, clients)
    client.send(b"NICK norealname", b"USER a 0 * :")
    assert b" 461 norealname USER :" in client.until(b" 461 ")
    client.send(b"PRIVMSG norealname :hi")
    assert b" 451 " in client.until(b" 451 ")  # still not registered
    client.send(b"USER a 0 * :Real Name")
    assert b" 001 norealname " in client.until(b" 422 ")
    assert logged.problems() == []


@pytest.mark.parametrize(
    "line",
    [
        b"PRIVMSG #nul :a\x00b",
        b"PRIVMSG #nul\x00 :ab",
        b"TOPIC #nul :new\x00topic",
        b"PRIVMSG #nul :one\rPRIVMSG #nul :two",
    ],
)
def test_nul_and_cr_refused(
    server: ChatServer, clients: list[Client], logged: Recorder, line: bytes
) -> None:
    sender = connect(server, clients, "nulsender")
    watcher = connect(server, clients, "nulwatcher")
    joined(sender, b"#nul")
    joined(watcher, b"#nul")
    sender.send(line)
    reply = sender.roundtrip()
    assert b" 400 nulsender " in reply
    assert b"NUL or CR" in reply
    assert b"\x00" not in reply
    seen = watcher.roundtrip()
    assert b"PRIVMSG" not in seen
    assert b"TOPIC" not in seen
    assert logged.problems() == []


@pytest.mark.parametrize(
    "line",
    [
        b"PRIVMSG #utf :caf\xe9",
        b"PRIVMSG #utf :\xc3",
        b"PRIVMSG #utf :\xed\xa0\x80",  # an encoded surrogate
        b"PRIVMSG #utf :\xc0\xaf",  # an overlong '/'
        b"TOPIC #utf :\xff",
    ],
)
def test_invalid_utf8_refused(
    server: ChatServer, clients: list[Client], logged: Recorder, line: bytes
) -> None:
    sender = connect(server, clients, "utfsender")
    watcher = connect(server, clients, "utfwatcher")
    joined(sender, b"#utf")
    joined(watcher, b"#utf")
    sender.send(line)
    command = line.split()[0]
    assert b"FAIL " + command + b" INVALID_UTF8 :" in sender.roundtrip()
    seen = watcher.roundtrip()
    assert b"PRIVMSG" not in seen
    assert b"TOPIC" not in seen
    sender.send(b"VERSION")
    assert b" UTF8ONLY " in sender.roundtrip()
    assert logged.problems() == []


def test_secret_and_private_channels(
    server: ChatServer, clients: list[Client], logged: Recorder
) -> None:
    op = connect(server, clients, "sp_op")
    outsider = connect(server, clients, "sp_out")
    joined(op, b"#sp_secret")
    joined(op, b"#sp_private")
    joined(op, b"#sp_public")
    op.send(b"MODE #sp_secret +s", b"MODE #sp_private +p", b"TOPIC #sp_secret :hush")
    reply = op.roundtrip()
    assert b"MODE #sp_secret +s\r\n" in reply
    assert b"MODE #sp_private +p\r\n" in reply
    # members see the channel's kind in 353: @ secret, * private, = public
    op.send(b"NAMES #sp_secret,#sp_private,#sp_public")
    names = op.roundtrip()
    assert b" 353 sp_op @ #sp_secret :@sp_op\r\n" in names
    assert b" 353 sp_op * #sp_private :@sp_op\r\n" in names
    assert b" 353 sp_op = #sp_public :@sp_op\r\n" in names
    op.send(b"MODE #sp_secret")
    assert b" 324 sp_op #sp_secret +nst\r\n" in op.roundtrip()
    # LIST: neither is listed to a non-member; a private one asked for by name is
    outsider.send(b"LIST")
    listed = outsider.roundtrip()
    assert b"#sp_public" in listed
    assert b"#sp_secret" not in listed
    assert b"#sp_private" not in listed
    outsider.send(b"LIST #sp_secret,#sp_private")
    listed = outsider.roundtrip()
    assert b"#sp_secret" not in listed
    assert b" 322 sp_out #sp_private 1 :" in listed
    # NAMES: the secret one is as absent; the private one is named and shows its members
    outsider.send(b"NAMES #sp_secret", b"NAMES")
    names = outsider.roundtrip()
    assert b" 353 " not in names.split(b" 366 sp_out #sp_secret ")[0]
    assert b"#sp_secret" not in names.replace(b" 366 sp_out #sp_secret :", b"")
    assert b"#sp_private" not in names
    assert b" 353 sp_out = #sp_public :@sp_op\r\n" in names
    # WHOIS and WHO hide both from a non-member
    outsider.send(b"WHOIS sp_op")
    whois = outsider.roundtrip()
    assert b" 319 sp_out sp_op @#sp_public\r\n" in whois
    outsider.send(b"WHO #sp_secret", b"WHO sp_op")
    who = outsider.roundtrip()
    assert b" 352 sp_out #sp_secret " not in who
    assert b" 352 sp_out #sp_private " not in who
    # TOPIC of a secret channel: no such channel for a non-member
    outsider.send(b"TOPIC #sp_secret")
    assert b" 403 sp_out #sp_secret " in outsider.roundtrip()
    # 005 advertises both modes
    outsider.send(b"VERSION")
    assert b" CHANMODES=,k,l,imnpst " in outsider.roundtrip()
    assert logged.problems() == []


def test_who_exact_nick_finds_an_invisible_user(
    server: ChatServer, clients: list[Client], logged: Recorder
) -> None:
    hidden = connect(server, clients, "whohidden")
    asker = connect(server, clients, "whoasker")
    hidden.send(b"MODE whohidden +i")
    hidden.until(b"MODE whohidden +i")
    asker.send(b"WHO whohidden")
    assert b" 352 whoasker * whohidden 127.0.0.1 medusa whohidden H :0 whohidden\r\n" in (
        asker.roundtrip()
    )
    asker.send(b"WHO whohid*")  # a mask still hides invisible strangers
    assert b" 352 " not in asker.roundtrip()
    assert logged.problems() == []


def broken(net: Network, user: User, msg: Message) -> None:
    """A command handler with a bug."""
    raise RuntimeError("a bug")


def privmsg_failing_on_boom(net: Network, user: User, msg: Message) -> None:
    """PRIVMSG, with a bug when the text is ``boom``."""
    if msg.param(1) == "boom":
        raise ValueError("boom")
    COMMANDS["PRIVMSG"](net, user, msg)


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def broken_server(request: pytest.FixtureRequest) -> Iterator[ChatServer]:
    """A server whose table (given to ``ChatServer(commands=...)``) has two bugs."""
    table = {**COMMANDS, "BROKEN": broken, "PRIVMSG": privmsg_failing_on_boom}
    chat = ChatServer(("127.0.0.1", 0), flood_rate=0, max_clients_per_address=100, commands=table)
    with ServerThread([chat], backend=request.param):
        yield chat


def test_handler_failure_is_an_error_reply(broken_server: ChatServer, logged: Recorder) -> None:
    """A bug in a handler injected through the server's command table is answered with
    ``400 <command>`` and logged once (with its traceback); the connection goes on, and a
    handler that failed halfway leaves the channel usable for everyone."""
    clients: list[Client] = []
    try:
        client = connect(broken_server, clients, "broken")
        other = connect(broken_server, clients, "watcher")
        client.send(b"BROKEN now")
        assert b":medusa 400 broken BROKEN :Internal error: not done\r\n" in client.roundtrip()
        problems = logged.problems()
        assert len(problems) == 1
        assert "BROKEN" in problems[0]
        assert "broken" in problems[0]
        assert logged.records[0].exc_info is not None
        joined(client, b"#bugs")
        joined(other, b"#bugs")
        client.send(b"PRIVMSG #bugs :boom", b"PRIVMSG #bugs :after")
        assert b" 400 broken PRIVMSG :" in client.roundtrip()
        seen = other.until(b":after")
        assert b"PRIVMSG #bugs :after\r\n" in seen
        assert b"boom" not in seen
        assert len(logged.problems()) == 2
    finally:
        for made in clients:
            made.close()


def test_pathological_mask_is_answered(
    server: ChatServer, clients: list[Client], logged: Recorder
) -> None:
    """A WHO mask of many stars (exponential for a backtracking matcher) is answered."""
    victim = connect(server, clients)
    victim.send(b"NICK maskvictim", b"USER v 0 * :" + b"a" * 100)
    victim.until(b" 422 ")
    client = connect(server, clients, "maskuser")
    client.send(b"WHO " + b"*a" * 40 + b"b")
    assert b" 315 maskuser " in client.roundtrip()
    assert logged.problems() == []


def test_closing_link_line_fits_512_bytes(
    server: ChatServer, clients: list[Client], logged: Recorder
) -> None:
    """``ERROR :Closing Link: HOST (Quit: ...)`` with the longest QUIT message is cut to
    512 bytes like every other line (found by test_chat_fuzz.py)."""
    client = connect(server, clients, "longquit")
    client.send(b"QUIT :" + b"q" * (510 - len(b"QUIT :")))
    data = client.until(b"ERROR :Closing Link: 127.0.0.1 (Quit: qqq")
    line = data[data.index(b"ERROR") :]
    assert len(line) == 512
    assert line.endswith(b"q\r\n")
    assert logged.problems() == []
