"""End-to-end: the chat server under ``--workers 2`` (issue 14). Its users and channels
live in one process, so it runs in worker 1 only and says so in its listening line; two
IRC clients (the ``irc`` library) meet in one channel; after a SIGHUP reload the new
worker 1 serves it at the same port (the old one's clients are closed by its graceful
stop; a new client connects and joins). A monitor prompt into each process shows where the
chat server runs.

The port is fixed (a free one chosen by the test): worker 1 binds it itself with
``SO_REUSEPORT``, so port 0 would give each new worker 1 another port."""

from __future__ import annotations

import ast
import http.client
import os
import re
import signal
import socket
import time
from pathlib import Path
from typing import Any

import irc.client  # type: ignore[import-untyped]
import pytest
from tests.conftest import IO_TIMEOUT, Medusa, Runner, free_port_range, wait_until

from medusa.monitor import MonitorConnection

pytestmark = pytest.mark.e2e

ONLY = re.compile(r"medusa: chat listening on (\S+) \(worker 1 only\)")
"""The chat server's listening line under workers (not anchored: lines of workers starting
together may be written into one another)."""


def free_ports(count: int) -> list[int]:
    """``count`` different TCP ports on 127.0.0.1 that are free now."""
    low = free_port_range(count)
    return list(range(low, low + count))


def start_chat(runner: Runner, tmp_path: Path) -> tuple[Medusa, int, Path]:
    """``medusa serve --workers 2`` with chat on a fixed port and a monitor on a Unix socket
    (grace 2 s); returns the process, the chat port and the monitor's socket path."""
    [port] = free_ports(1)
    sock = tmp_path / "run" / "mon.sock"
    process = runner.start(
        "serve",
        "--workers",
        "2",
        "--chat",
        f"127.0.0.1:{port}",
        "--monitor",
        f"unix:{sock}",
        "--grace",
        "2",
        listening=0,
    )
    return process, port, sock


def pump(reactor: Any, predicate: Any, what: str) -> None:
    """Run the IRC reactor until ``predicate()``; fail after IO_TIMEOUT seconds."""
    deadline = time.monotonic() + IO_TIMEOUT
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        reactor.process_once(0.01)


def ask(address: str, code: str) -> Any:
    """Run ``code`` in the monitor at ``address`` (a Unix socket: no secret); return the
    value it echoed."""
    with MonitorConnection.open(address, timeout=IO_TIMEOUT) as conn:
        conn.login(None)
        reply = conn.execute(code)
    assert reply.ok, reply.output
    return ast.literal_eval(reply.output.strip())


def chat_lines(process: Medusa, count: int) -> list[str]:
    """Wait for ``count`` chat listening lines with ``(worker 1 only)``; return where."""
    wait_until(
        lambda: len(ONLY.findall(process.stdout())) >= count,
        f"{count} chat listening line(s) (worker 1 only)\n{process.describe()}",
    )
    return ONLY.findall(process.stdout())


class Clients:
    """IRC clients on one reactor, with the events they saw."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reactor = irc.client.Reactor()
        self.messages: list[Any] = []
        self.names_ends: list[Any] = []
        self.reactor.add_global_handler("pubmsg", lambda c, e: self.messages.append(e))
        self.reactor.add_global_handler("endofnames", lambda c, e: self.names_ends.append(c))

    def join(self, nick: str, channel: str) -> Any:
        """Connect as ``nick`` and join ``channel``; wait for the NAMES reply."""
        ends = len(self.names_ends)
        conn = self.reactor.server().connect("127.0.0.1", self.port, nick)
        conn.join(channel)
        pump(self.reactor, lambda: len(self.names_ends) > ends, f"{nick} joining {channel}")
        return conn

    def say(self, conn: Any, channel: str, text: str) -> Any:
        """Send ``text`` to ``channel``; wait until another client gets it; return it."""
        count = len(self.messages)
        conn.privmsg(channel, text)
        pump(self.reactor, lambda: len(self.messages) > count, f"{text!r} delivered")
        return self.messages[-1]


def test_chat_runs_in_worker_one_and_after_reload(runner: Runner, tmp_path: Path) -> None:
    process, port, sock = start_chat(runner, tmp_path)
    assert chat_lines(process, 1) == [f"irc://127.0.0.1:{port}/"]
    # The master and worker 2 print no chat line: one "worker 1 only" line in all.
    assert process.stdout().count("chat listening") == 1
    wait_until(lambda: all(Path(f"{sock}{n}").exists() for n in ("", ".1", ".2")), "the monitors")
    where = "'chat' in servers, worker"
    assert ask(f"unix:{sock}", where) == (False, None)
    assert ask(f"unix:{sock}.1", where) == (True, 1)
    assert ask(f"unix:{sock}.2", where) == (False, 2)

    clients = Clients(port)
    one = clients.join("one", "#workers")
    two = clients.join("two", "#workers")
    got = clients.say(one, "#workers", "same process, same channel")
    assert (got.source.nick, got.target, got.arguments) == (
        "one",
        "#workers",
        ["same process, same channel"],
    )
    got = clients.say(two, "#workers", "and back")
    assert got.source.nick == "two"
    assert ask(f"unix:{sock}.1", "len(servers['chat'].channels)") == 2
    old_pid = ask(f"unix:{sock}.1", "import os\nos.getpid()")

    process.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload done" in process.stderr(), f"the reload\n{process.describe()}")
    # The old worker 1 closes its clients when its grace period ends.
    pump(
        clients.reactor,
        lambda: not one.is_connected() and not two.is_connected(),
        "the old worker 1 to close its chat clients",
    )
    assert chat_lines(process, 2)[-1] == f"irc://127.0.0.1:{port}/"
    wait_until(
        lambda: f"worker 1 (pid {old_pid}) stopped" in process.stderr(),
        f"the old worker 1 to exit\n{process.describe()}",
    )

    again = Clients(port)
    three = again.join("three", "#workers")
    four = again.join("four", "#workers")
    assert again.say(three, "#workers", "after the reload").source.nick == "three"
    new_pid = ask(f"unix:{sock}.1", "import os\nos.getpid()")
    assert new_pid != old_pid
    assert ask(f"unix:{sock}.1", "len(servers['chat'].channels)") == 2
    assert ask(f"unix:{sock}.2", where) == (False, 2)
    three.disconnect()
    four.disconnect()
    assert process.stop() == 0


def test_chat_extra_listeners_follow_worker_one(runner: Runner, tmp_path: Path) -> None:
    """The ``simple`` (telnet) and ``web`` listeners of the chat server are worker 1's
    too, each line saying so, and answer again after a reload."""
    irc_port, simple_port, web_port = free_ports(3)
    config = tmp_path / "medusa.toml"
    config.write_text(
        f"""
[medusa]
workers = 2
grace = 2

[[server]]
type = "chat"
listen = "127.0.0.1:{irc_port}"
simple = "127.0.0.1:{simple_port}"
web = "127.0.0.1:{web_port}"
"""
    )
    process = runner.start("serve", "-c", str(config), listening=0)
    expected = [
        f"irc://127.0.0.1:{irc_port}/",
        f"telnet://127.0.0.1:{simple_port}/",
        f"http://127.0.0.1:{web_port}/",
    ]
    assert sorted(chat_lines(process, 3)) == sorted(expected)
    assert process.stdout().count("chat listening") == 3
    check_simple_and_web(simple_port, web_port)
    process.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload done" in process.stderr(), f"the reload\n{process.describe()}")
    assert sorted(chat_lines(process, 6)[3:]) == sorted(expected)
    check_simple_and_web(simple_port, web_port)
    assert process.stop() == 0


def check_simple_and_web(simple_port: int, web_port: int) -> None:
    """The telnet listener asks for a nickname; the web one serves its page."""
    with socket.create_connection(("127.0.0.1", simple_port), timeout=IO_TIMEOUT) as telnet:
        data = b""
        while b"nickname: " not in data:
            chunk = telnet.recv(4096)
            assert chunk, f"closed before the nickname prompt: {data!r}"
            data += chunk
    page = http.client.HTTPConnection("127.0.0.1", web_port, timeout=IO_TIMEOUT)
    try:
        page.request("GET", "/")
        response = page.getresponse()
        assert response.status == 200
        assert b"WebSocket" in response.read()
    finally:
        page.close()


def test_chat_back_after_worker_one_is_killed(runner: Runner, tmp_path: Path) -> None:
    """``kill -9`` of worker 1 loses its chat clients (their state was in it); the worker
    that replaces it serves the chat at the same port."""
    process, port, sock = start_chat(runner, tmp_path)
    chat_lines(process, 1)
    wait_until(lambda: Path(f"{sock}.1").exists(), "worker 1's monitor")
    old_pid = ask(f"unix:{sock}.1", "import os\nos.getpid()")
    clients = Clients(port)
    one = clients.join("one", "#workers")
    os.kill(old_pid, signal.SIGKILL)
    pump(clients.reactor, lambda: not one.is_connected(), "the killed worker's client to drop")
    wait_until(
        lambda: f"worker 1 (pid {old_pid}) died (killed by SIGKILL)" in process.stderr(),
        f"the master to see worker 1 die\n{process.describe()}",
    )
    chat_lines(process, 2)
    again = Clients(port)
    two = again.join("two", "#workers")
    three = again.join("three", "#workers")
    assert again.say(two, "#workers", "served by the new worker 1").source.nick == "two"
    wait_until(
        lambda: process.stdout().count(f"monitor listening on unix:{sock}.1 (worker 1)") == 2,
        f"the new worker 1's monitor\n{process.describe()}",
    )
    assert ask(f"unix:{sock}.1", "import os\nos.getpid(), len(servers['chat'].channels)")[1] == 2
    two.disconnect()
    three.disconnect()
    assert process.stop() == 0
