"""The web side: the chat page over HTTP, the WebSocket bridge (RFC 6455) with wsproto as
a real client, and two headless Chromium users chatting with an IRC user."""

from __future__ import annotations

import http.client
import logging
import shutil
import socket
import time
from collections.abc import Iterator
from typing import Any

import irc.client  # type: ignore[import-untyped]
import pytest
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Request,
    TextMessage,
)

from medusa.chat.commands import COMMANDS
from medusa.chat.message import Message
from medusa.chat.network import Network
from medusa.chat.server import ChatServer
from medusa.chat.user import User
from medusa.core.testing import ServerThread

TIMEOUT = 15.0
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def served() -> Iterator[ChatServer]:
    chat = ChatServer(("127.0.0.1", 0), web="127.0.0.1:0")
    with ServerThread([chat]):
        yield chat


def get(port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    conn.request(method, path, headers=headers or {})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


def test_page_and_http_errors(served: ChatServer) -> None:
    port = served.extra_port("web")
    response, body = get(port, "/")
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"
    assert b"new WebSocket(" in body
    assert b"textContent" in body
    response, body = get(port, "/", "HEAD")
    assert response.status == 200
    assert body == b""
    assert get(port, "/elsewhere")[0].status == 404
    assert get(port, "/", "POST")[0].status == 405
    assert get(port, "/ws")[0].status == 426
    upgrade = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "Origin": "http://evil.example",
    }
    assert get(port, "/ws", headers=upgrade)[0].status == 403


class WSClient:
    """A WebSocket client: wsproto over a blocking socket."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(
            self.ws.send(
                Request(
                    host=f"127.0.0.1:{port}",
                    target="/ws",
                    subprotocols=["text.ircv3.net"],
                    extra_headers=[(b"Origin", f"http://127.0.0.1:{port}".encode())],
                )
            )
        )
        self.texts: list[str] = []
        self.closed = False
        self.accepted: AcceptConnection | None = None
        self.pump(lambda: self.accepted is not None)

    def pump(self, done: Any) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not done():
            assert time.monotonic() < deadline, self.texts[-10:]
            data = self.sock.recv(65536)
            self.ws.receive_data(data or None)
            for event in self.ws.events():
                if isinstance(event, AcceptConnection):
                    self.accepted = event
                elif isinstance(event, TextMessage):
                    self.texts.append(event.data)
                elif isinstance(event, CloseConnection):
                    self.closed = True
            if not data:
                self.closed = True
                return

    def send(self, line: str) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=line)))

    def wait_for(self, fragment: str) -> str:
        found: list[str] = []

        def check() -> bool:
            found.extend(t for t in self.texts if fragment in t)
            return bool(found)

        self.pump(check)
        self.texts = self.texts[self.texts.index(found[0]) + 1 :]
        return found[0]


def test_websocket_bridge(served: ChatServer) -> None:
    web = WSClient(served.extra_port("web"))
    assert web.accepted is not None
    assert web.accepted.subprotocol == "text.ircv3.net"
    web.send("NICK webby")
    web.send("USER webby 0 * :web user")
    assert web.wait_for(" 001 ").startswith(":medusa 001 webby ")
    web.send("JOIN #web\nPING :two-lines-in-one-message")
    web.wait_for(" 366 ")
    web.wait_for("two-lines-in-one-message")
    reactor = irc.client.Reactor()
    events: list[Any] = []
    reactor.add_global_handler("pubmsg", lambda c, e: events.append(e))
    conn = reactor.server().connect("127.0.0.1", served.port, "ircfriend")
    conn.join("#web")
    assert web.wait_for("JOIN").startswith(":ircfriend!")
    conn.privmsg("#web", "hello browser")
    assert (
        web.wait_for("hello browser")
        == ":ircfriend!ircfriend@127.0.0.1 PRIVMSG #web :hello browser"
    )
    web.send("PRIVMSG #web :hello irc")
    deadline = time.monotonic() + TIMEOUT
    while not events and time.monotonic() < deadline:
        reactor.process_once(0.01)
    assert events
    assert events[0].arguments == ["hello irc"]
    assert events[0].source == "webby!webby@127.0.0.1"
    web.send("x" * 3000)  # a message over 512 bytes
    web.wait_for(" 417 ")
    web.send("QUIT :done")
    assert "Quit: done" in web.wait_for("ERROR")
    web.pump(lambda: web.closed)
    conn.disconnect()
    web.sock.close()


def test_websocket_refuses_nul_and_invalid_utf8(served: ChatServer) -> None:
    """Over the WebSocket as over TCP: NUL or CR in a text message is refused with 400, a
    binary message that is not UTF-8 with FAIL INVALID_UTF8 (not relayed with U+FFFD)."""
    web = WSClient(served.extra_port("web"))
    web.send("NICK webcheck")
    web.send("USER webcheck 0 * :web user")
    web.wait_for(" 001 ")
    web.send("PRIVMSG webcheck :a\x00b")
    assert "NUL or CR" in web.wait_for(" 400 webcheck PRIVMSG ")
    web.sock.sendall(web.ws.send(BytesMessage(data=b"PRIVMSG webcheck :caf\xe9")))
    assert web.wait_for("FAIL").startswith(":medusa FAIL PRIVMSG INVALID_UTF8 :")
    web.sock.sendall(web.ws.send(BytesMessage(data="PRIVMSG webcheck :café".encode())))
    assert web.wait_for("PRIVMSG webcheck").endswith("PRIVMSG webcheck :café")
    web.send("PING :still-here")
    web.wait_for("still-here")
    web.sock.close()


def broken(net: Network, user: User, msg: Message) -> None:
    """A command handler with a bug."""
    raise RuntimeError("a bug")


def test_websocket_handler_failure(caplog: pytest.LogCaptureFixture) -> None:
    """Over the WebSocket as over TCP: a handler that raises (injected through the
    server's command table) is answered with 400 and logged once; the session goes on."""
    chat = ChatServer(("127.0.0.1", 0), web="127.0.0.1:0", commands={**COMMANDS, "BROKEN": broken})
    with ServerThread([chat]):
        web = WSClient(chat.extra_port("web"))
        web.send("NICK webbug")
        web.send("USER webbug 0 * :web user")
        web.wait_for(" 001 ")
        web.send("BROKEN now")
        assert web.wait_for(" 400 ") == ":medusa 400 webbug BROKEN :Internal error: not done"
        web.send("PING :still-here")
        web.wait_for("still-here")
        assert not web.closed
        web.sock.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["chat: BROKEN from webbug!webbug@127.0.0.1 failed"]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    _chromium() is None or shutil.which(CHROMEDRIVER) is None,
    reason="chromium is not installed (apt-get install chromium chromium-driver)",
)
def test_two_browsers_and_an_irc_client(served: ChatServer) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.binary_location = str(_chromium())
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    reactor = irc.client.Reactor()
    received: list[Any] = []
    reactor.add_global_handler("pubmsg", lambda c, e: received.append(e))
    joins: list[str] = []
    reactor.add_global_handler("join", lambda c, e: joins.append(e.source.nick))
    conn = reactor.server().connect("127.0.0.1", served.port, "carol")
    try:
        conn.join("#browsers")
        url = f"http://127.0.0.1:{served.extra_port('web')}/?channel=%23browsers"
        windows: dict[str, str] = {}
        for nick in ("alice", "bob"):
            if windows:
                driver.switch_to.new_window("window")
            driver.get(url)
            driver.find_element(By.ID, "nick").send_keys(nick)
            driver.find_element(By.ID, "connect").click()
            WebDriverWait(driver, TIMEOUT).until(
                lambda d: "connected as" in d.find_element(By.ID, "status").text
            )
            windows[nick] = driver.current_window_handle

        def irc_wait(predicate: Any) -> None:
            deadline = time.monotonic() + TIMEOUT
            while not predicate():
                assert time.monotonic() < deadline
                reactor.process_once(0.01)

        irc_wait(lambda: {"alice", "bob"} <= set(joins))

        def say(nick: str, text: str) -> None:
            driver.switch_to.window(windows[nick])
            box = driver.find_element(By.ID, "text")
            box.send_keys(text)
            driver.find_element(By.ID, "send").click()

        def log_of(nick: str) -> str:
            driver.switch_to.window(windows[nick])
            return str(driver.find_element(By.ID, "log").text)

        def browser_wait(nick: str, text: str) -> None:
            driver.switch_to.window(windows[nick])
            WebDriverWait(driver, TIMEOUT).until(lambda d: text in log_of(nick))

        say("alice", "hello from alice")
        browser_wait("bob", "<alice> hello from alice")
        irc_wait(lambda: any(e.arguments == ["hello from alice"] for e in received))
        say("bob", "hi alice, bob here")
        browser_wait("alice", "<bob> hi alice, bob here")
        irc_wait(lambda: any(e.arguments == ["hi alice, bob here"] for e in received))
        conn.privmsg("#browsers", "carol on irc <b>bold?</b>")
        browser_wait("alice", "<carol> carol on irc <b>bold?</b>")  # shown as text
        browser_wait("bob", "<carol> carol on irc <b>bold?</b>")
        assert {e.source.nick for e in received} == {"alice", "bob"}
    finally:
        driver.quit()
        conn.disconnect()
