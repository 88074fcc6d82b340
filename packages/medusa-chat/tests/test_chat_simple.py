"""The original's simple mode on its own port: a telnet user (a raw socket) and an IRC
user (the irc library) in one channel."""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import irc.client  # type: ignore[import-untyped]
import pytest

from medusa.chat.commands import COMMANDS
from medusa.chat.message import Message
from medusa.chat.network import Network
from medusa.chat.server import ChatServer
from medusa.chat.user import User
from medusa.core.testing import ServerThread

TIMEOUT = 10.0


def read_until(sock: socket.socket, needle: bytes) -> bytes:
    data = b""
    while needle not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    assert needle in data, data
    return data


@pytest.fixture
def served() -> Iterator[ChatServer]:
    chat = ChatServer(("127.0.0.1", 0), simple="127.0.0.1:0", simple_channel="#Lobby")
    with ServerThread([chat]):
        yield chat


class IRCUser:
    def __init__(self, port: int, nick: str) -> None:
        self.reactor = irc.client.Reactor()
        self.events: list[Any] = []
        self.reactor.add_global_handler("all_events", lambda c, e: self.events.append(e), -10)
        self.conn = self.reactor.server().connect("127.0.0.1", port, nick)
        self.wait("welcome")

    def wait(self, kind: str, text: str | None = None) -> Any:
        deadline = time.monotonic() + TIMEOUT
        while True:
            for event in self.events:
                if event.type == kind and (text is None or text in " ".join(event.arguments)):
                    self.events.remove(event)
                    return event
            assert time.monotonic() < deadline, f"no {kind} {text!r}"
            self.reactor.process_once(0.01)


def test_simple_mode_with_irc_user(served: ChatServer) -> None:
    port = served.extra_port("simple")
    assert port
    assert port != served.port
    irc_user = IRCUser(served.port, "ircuser")
    irc_user.conn.join("#lobby")
    irc_user.wait("join")
    irc_user.wait("endofnames")
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as telnet:
        read_until(telnet, b"nickname: ")
        telnet.sendall(b"9lives\r\n")
        assert b"not a valid nickname" in read_until(telnet, b"nickname: ")
        telnet.sendall(b"IRCUSER\r\n")
        assert b"taken" in read_until(telnet, b"nickname: ")
        telnet.sendall(b"\xff\xfb\x01telly\r\n")  # with a telnet option negotiation
        data = read_until(telnet, b"* Here: ")
        assert b"* telly has joined #lobby" in data  # named by its creator
        assert irc_user.wait("join").source.nick == "telly"
        # a typed line is a PRIVMSG to the channel
        telnet.sendall(b"hello from telnet\r\n")
        event = irc_user.wait("pubmsg")
        assert (event.source.nick, event.target, event.arguments) == (
            "telly",
            "#lobby",
            ["hello from telnet"],
        )
        irc_user.conn.privmsg("#lobby", "hello from irc")
        assert b"<ircuser> hello from irc\r\n" in read_until(telnet, b"hello from irc")
        irc_user.conn.privmsg("telly", "psst")
        assert b"*ircuser* psst" in read_until(telnet, b"psst")
        irc_user.conn.action("#lobby", "waves")
        assert b"* ircuser waves" in read_until(telnet, b"waves")
        telnet.sendall(b"/me nods\r\n")
        assert irc_user.wait("action").arguments == ["nods"]
        telnet.sendall(b"/msg ircuser just you\r\n")
        assert irc_user.wait("privmsg").arguments == ["just you"]
        telnet.sendall(b"/who\r\n")
        assert b"* Here: ircuser telly" in read_until(telnet, b"telly\r\n")
        telnet.sendall(b"/nick telly2\r\n")
        assert irc_user.wait("nick").target == "telly2"
        telnet.sendall(b"/frobnicate\r\n")
        assert b"unknown command /frobnicate" in read_until(telnet, b"frobnicate")
        telnet.sendall(b"/quit good night\r\n")
        data = read_until(telnet, b"Closing link")
        assert b"* Closing link (Quit: good night)" in data
        assert telnet.recv(100) == b""
    event = irc_user.wait("quit")
    assert (event.source.nick, event.arguments) == ("telly2", ["Quit: good night"])
    irc_user.conn.disconnect()


def test_simple_mode_is_off_by_default() -> None:
    chat = ChatServer(("127.0.0.1", 0))
    with ServerThread([chat]):
        assert chat.extra_port("simple") == 0
        assert len(chat.listening) == 1


@contextlib.contextmanager
def lobby(chat: ChatServer, watcher: str, typist: bytes) -> Iterator[tuple[IRCUser, socket.socket]]:
    """An IRC user (``watcher``) in #lobby, and a simple-mode user who took the nick
    ``typist`` and is in #lobby too."""
    irc_user = IRCUser(chat.port, watcher)
    irc_user.conn.join("#lobby")
    irc_user.wait("endofnames")
    with socket.create_connection(("127.0.0.1", chat.extra_port("simple")), timeout=TIMEOUT) as t:
        read_until(t, b"nickname: ")
        t.sendall(typist + b"\r\n")
        read_until(t, b"* Here: ")
        yield irc_user, t
    irc_user.conn.disconnect()


def test_simple_mode_refuses_nul_cr_and_invalid_utf8(served: ChatServer) -> None:
    """As on the IRC port: not relayed, a line says why, the user stays."""
    with lobby(served, "watcher", b"plain") as (irc_user, t):
        t.sendall(b"caf\xe9\r\n")
        assert b"* line refused: not UTF-8" in read_until(t, b"refused")
        t.sendall(b"a\x00b\r\n")
        assert b"* line refused: it holds NUL or CR" in read_until(t, b"refused")
        t.sendall(b"one\rtwo\r\n")
        assert b"* line refused: it holds NUL or CR" in read_until(t, b"refused")
        t.sendall("fine ²\r\n".encode())
        event = irc_user.wait("pubmsg")
        assert event.arguments == ["fine ²"]  # the first line relayed is the good one


def privmsg_failing_on_boom(net: Network, user: User, msg: Message) -> None:
    """PRIVMSG, with a bug when the text is ``boom``."""
    if msg.param(1) == "boom":
        raise ValueError("boom")
    COMMANDS["PRIVMSG"](net, user, msg)


def test_simple_mode_handler_failure(caplog: pytest.LogCaptureFixture) -> None:
    """A simple-mode user's line runs through the server's command table: a handler that
    raises is shown as an error line and logged once; the user stays and goes on talking."""
    table = {**COMMANDS, "PRIVMSG": privmsg_failing_on_boom}
    chat = ChatServer(("127.0.0.1", 0), simple="127.0.0.1:0", commands=table)
    with ServerThread([chat]), lobby(chat, "listener", b"typist") as (irc_user, t):
        t.sendall(b"boom\r\n")
        assert b"* PRIVMSG Internal error: not done\r\n" in read_until(t, b"not done")
        t.sendall(b"/who\r\n")
        assert b"* Here: listener typist" in read_until(t, b"typist\r\n")
        t.sendall(b"still here\r\n")
        assert irc_user.wait("pubmsg").arguments == ["still here"]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["chat: PRIVMSG from typist!simple@127.0.0.1 failed"]


def test_simple_mode_user_is_told_of_shutdown() -> None:
    """On shutdown a simple-mode user is closed as IRC users are: it is told why."""
    chat = ChatServer(("127.0.0.1", 0), simple="127.0.0.1:0")
    thread = ServerThread([chat]).start()
    try:
        irc_user = IRCUser(chat.port, "stayer")
        irc_user.conn.join("#lobby")
        irc_user.wait("endofnames")
        t = socket.create_connection(("127.0.0.1", chat.extra_port("simple")), timeout=TIMEOUT)
        read_until(t, b"nickname: ")
        t.sendall(b"leaver\r\n")
        read_until(t, b"* Here: ")
    finally:
        thread.stop()
    with t:
        data = read_until(t, b"Closing link")
        assert b"* Closing link (Server shutting down)\r\n" in data
    irc_user.conn.disconnect()
