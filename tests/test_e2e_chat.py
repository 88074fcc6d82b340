"""The chat server through the real ``medusa`` command: ``--chat ADDR`` and a medusa.toml
with every option, IRC clients (the irc library), the simple mode and the web page."""

from __future__ import annotations

import http.client
import socket
import time
from pathlib import Path
from typing import Any

import irc.client  # type: ignore[import-untyped]
import pytest
from tests.conftest import BACKENDS, Runner

pytestmark = pytest.mark.e2e

TIMEOUT = 15.0


def pump(reactor: Any, predicate: Any) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        reactor.process_once(0.01)


@pytest.mark.parametrize("backend", BACKENDS)
def test_serve_chat_option(runner: Runner, backend: str) -> None:
    process = runner.start("serve", "--chat", "127.0.0.1:0", "--backend", backend)
    endpoint = process.endpoint
    assert endpoint.name == "chat"
    assert endpoint.where.startswith("irc://127.0.0.1:")
    reactor = irc.client.Reactor()
    got: list[Any] = []
    reactor.add_global_handler("pubmsg", lambda c, e: got.append(e))
    ends: list[Any] = []
    reactor.add_global_handler("endofnames", lambda c, e: ends.append(c))
    one = reactor.server().connect("127.0.0.1", endpoint.port, "one")
    two = reactor.server().connect("127.0.0.1", endpoint.port, "two")
    one.join("#e2e")
    pump(reactor, lambda: len(ends) == 1)
    two.join("#e2e")
    pump(reactor, lambda: len(ends) == 2)
    one.privmsg("#e2e", "through the medusa command")
    pump(reactor, lambda: bool(got))
    assert got[0].source.nick == "one"
    assert got[0].arguments == ["through the medusa command"]
    one.disconnect()
    two.disconnect()
    assert process.stop() == 0


def test_toml_with_every_option(runner: Runner, tmp_path: Path) -> None:
    (tmp_path / "motd.txt").write_text("Welcome to the e2e network.\n")
    config = tmp_path / "medusa.toml"
    config.write_text(
        """
[medusa]
backend = "asyncio"
grace = 2

[[server]]
type = "chat"
listen = "127.0.0.1:0"
server_name = "irc.e2e.test"
network_name = "E2E"
password = "sesame"
motd_file = "motd.txt"
max_clients_per_address = 20
max_channels_per_client = 5
flood_rate = 10
flood_burst = 40
ping_interval = 60
ping_timeout = 30
registration_timeout = 20
max_sendq = 5000
nick_length = 16
simple = "127.0.0.1:0"
simple_channel = "#telnet"
web = "127.0.0.1:0"
max_connections = 100
idle_timeout = 0
"""
    )
    process = runner.start("serve", "-c", str(config), listening=3, cwd=Path("/"))
    irc_end, simple_end, web_end = process.endpoints
    # each listening line names the protocol spoken there
    assert irc_end.where.startswith("irc://127.0.0.1:")
    assert simple_end.where.startswith("telnet://127.0.0.1:")
    assert web_end.where.startswith("http://127.0.0.1:")
    reactor = irc.client.Reactor()
    events: list[Any] = []
    reactor.add_global_handler("all_events", lambda c, e: events.append(e), -10)
    conn = reactor.server().connect("127.0.0.1", irc_end.port, "e2euser", password="sesame")  # noqa: S106
    pump(reactor, lambda: any(e.type == "endofmotd" for e in events))
    assert any(e.type == "motd" and "e2e network" in e.arguments[0] for e in events)
    assert conn.get_server_name() == "irc.e2e.test"
    conn.join("#telnet")
    pump(reactor, lambda: any(e.type == "endofnames" for e in events))
    with socket.create_connection(("127.0.0.1", simple_end.port), timeout=TIMEOUT) as telnet:
        data = b""
        while b"nickname: " not in data:
            data += telnet.recv(4096)
        telnet.sendall(b"teller\r\nhi from telnet\r\n")
        pump(reactor, lambda: any(e.type == "pubmsg" for e in events))
    page = http.client.HTTPConnection("127.0.0.1", web_end.port, timeout=TIMEOUT)
    page.request("GET", "/")
    response = page.getresponse()
    assert response.status == 200
    assert b"WebSocket" in response.read()
    page.close()
    conn.disconnect()
    assert process.stop() == 0


def test_bad_chat_option_is_reported(runner: Runner, tmp_path: Path) -> None:
    config = tmp_path / "medusa.toml"
    config.write_text('[[server]]\ntype = "chat"\nsimple_channel = "lobby"\n')
    result = runner.run("serve", "-c", str(config))
    assert result.returncode != 0
    assert "server[0].simple_channel: not a channel name" in result.stderr


def test_missing_motd_file_names_the_key(runner: Runner, tmp_path: Path) -> None:
    config = tmp_path / "medusa.toml"
    config.write_text('[[server]]\ntype = "chat"\nmotd_file = "motd.txt"\n')
    result = runner.run("serve", "-c", str(config))
    assert result.returncode == 2
    assert f"server[0].motd_file: cannot read {tmp_path / 'motd.txt'}: " in result.stderr
