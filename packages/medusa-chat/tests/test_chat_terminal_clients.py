"""irssi and WeeChat, the terminal IRC clients the issue names, as real processes with
their default settings against the chat server (both loops), an ``irc`` library client
watching: each joins a channel, sees its topic, says a line the observer receives, reads a
line the observer says, and quits with a message the observer sees. WeeChat does it once
more on the second node of a network shared through Redis (issue 18), the observer on the
first (skipped without ``redis-server``).

WeeChat runs as ``weechat-headless`` and takes its commands through its FIFO (the ``fifo``
plugin, Debian's ``weechat-plugins``); what it shows is read from the files of its
``logger`` plugin. irssi runs under a pseudo-terminal, its commands typed there; what it
shows is read from the file of a ``/log open`` typed first. Each test is skipped only when
the client's program is not installed (``irssi``, ``weechat-headless``; WeeChat's test
also needs ``weechat-plugins``, and fails without it).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import socket
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import irc.client  # type: ignore[import-untyped]
import pytest

from medusa.chat.server import ChatServer
from medusa.core.testing import ServerThread, require_tool, stop_process

TIMEOUT = 20.0
"""Seconds for any one step; WeeChat's default anti-flood sends a line every 2 s."""

IRSSI = shutil.which("irssi")
WEECHAT = shutil.which("weechat-headless")
WEECHAT_FIFO_PLUGIN = [*Path("/usr/lib").glob("*/weechat/plugins/fifo.so")]
"""WeeChat's fifo plugin, in Debian's ``weechat-plugins`` (the test's way to type)."""


def read_text(path: Path) -> str:
    """The file's text so far ('' while it does not exist)."""
    try:
        return path.read_text("utf-8", "replace")
    except FileNotFoundError:
        return ""


class Observer:
    """An ``irc`` library client in the test's thread; it pumps its reactor while waiting
    for any condition, so the server's lines are read while the terminal client works."""

    def __init__(self, port: int, nick: str = "observer") -> None:
        self.reactor = irc.client.Reactor()
        self.events: list[Any] = []
        self.reactor.add_global_handler("all_events", self._record, -100)
        self.conn = self.reactor.server()
        self.conn.connect("127.0.0.1", port, nick)
        self.wait_event("welcome")

    def _record(self, conn: Any, event: Any) -> None:
        self.events.append(event)

    def run_until(self, predicate: Callable[[], object], what: str) -> None:
        """Pump the reactor until ``predicate()`` is true, at most ``TIMEOUT`` seconds."""
        deadline = time.monotonic() + TIMEOUT
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {TIMEOUT} s waiting for {what}")
            self.reactor.process_once(0.02)

    def wait_event(self, kind: str, test: Callable[[Any], bool] | None = None) -> Any:
        """Wait for an event of ``kind`` (an irc-library event type) passing ``test``."""
        found: list[Any] = []

        def check() -> bool:
            found.extend(e for e in self.events if e.type == kind and (test is None or test(e)))
            return bool(found)

        self.run_until(check, f"{kind} event")
        return found[0]

    def close(self) -> None:
        if self.conn.is_connected():
            self.conn.disconnect("observer done")


class WeeChat:
    """``weechat-headless`` in its own directory, commands through its FIFO.

    Its only settings are where it lives (``--dir``), the nick of its server entry, plain
    TCP (``-notls``: the default from WeeChat 4 on is TLS) and ``logger.file.flush_delay 0``
    so that its log files, which the test reads, are written as lines are shown.
    """

    def __init__(self, home: Path, port: int, nick: str) -> None:
        assert WEECHAT is not None
        self.home = home
        self.logs = home / "logs"
        self._fifo: int | None = None
        commands = (
            "/set logger.file.flush_delay 0;"
            f" /server add medusa 127.0.0.1/{port} -notls -nicks={nick};"
            " /connect medusa"
        )
        with (home / "stdout.txt").open("wb") as out:
            self.process = subprocess.Popen(
                [WEECHAT, "--dir", str(home), "--stdout", "-r", commands],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "HOME": str(home), "TERM": "dumb"},
            )

    def server_log(self) -> str:
        return read_text(self.logs / "irc.server.medusa.weechatlog")

    def channel_log(self, channel: str) -> str:
        return read_text(self.logs / f"irc.medusa.{channel.lower()}.weechatlog")

    def fifo_ready(self) -> bool:
        """Open the FIFO once WeeChat made it (kept open: one writer for every command)."""
        if self._fifo is None:
            if self.process.poll() is not None:
                raise AssertionError(f"weechat exited with {self.process.returncode}")
            paths = list(self.home.glob("weechat_fifo_*"))
            if not paths:
                return False
            try:
                self._fifo = os.open(paths[0], os.O_WRONLY | os.O_NONBLOCK)
            except OSError as exc:  # not opened for reading yet
                if exc.errno == errno.ENXIO:
                    return False
                raise
        return True

    def command(self, buffer: str, text: str) -> None:
        """Run ``text`` (a /command or a line to say) in ``buffer`` (``"irc.medusa.#x"``;
        ``""`` for the current one)."""
        assert self._fifo is not None
        line = f"{buffer} *{text}\n" if buffer else f"*{text}\n"
        os.write(self._fifo, line.encode())

    def stop(self) -> None:
        if self._fifo is not None:
            os.close(self._fifo)
            self._fifo = None
        stop_process(self.process)


class Irssi:
    """irssi under a 120x40 pseudo-terminal, in its own ``--home``, connected by a typed
    ``/connect`` after a typed ``/log open``; what it prints is drained by a thread so that
    it never blocks on a full pty."""

    def __init__(self, home: Path, port: int, nick: str) -> None:
        assert IRSSI is not None
        self.log = home / "irssi.log"
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.master = master
        self.screen = bytearray()
        try:
            self.process = subprocess.Popen(
                [IRSSI, "--home", str(home), "-n", nick],
                stdin=slave,
                stdout=slave,
                stderr=slave,
                env={**os.environ, "HOME": str(home), "TERM": "xterm"},
                start_new_session=True,
            )
        finally:
            os.close(slave)
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        # Typed at once, read by irssi in this order once its interface is up: the log is
        # open before the connection starts, so it holds everything from the welcome on.
        self.type(f"/log open {self.log}")
        self.type(f"/connect 127.0.0.1 {port}")

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            self.screen += data

    def type(self, line: str) -> None:
        """Type one line and Enter."""
        os.write(self.master, line.encode() + b"\r")

    def log_text(self) -> str:
        return read_text(self.log)

    def stop(self) -> None:
        try:
            stop_process(self.process)
        finally:
            os.close(self.master)
            self._reader.join(5)


def exited(process: subprocess.Popen[bytes]) -> bool:
    return process.poll() is not None


@pytest.fixture(scope="module", params=["asyncio", "uvloop"])
def server(request: pytest.FixtureRequest) -> Iterator[ChatServer]:
    chat = ChatServer(("127.0.0.1", 0))
    with ServerThread([chat], backend=request.param):
        yield chat


@pytest.fixture
def observer(server: ChatServer) -> Iterator[Observer]:
    obs = Observer(server.port)
    try:
        yield obs
    finally:
        obs.close()


def open_channel(observer: Observer, channel: str, topic: str) -> None:
    """The observer creates ``channel`` (so it is its operator) and sets its topic."""
    observer.conn.join(channel)
    observer.wait_event("join", lambda e: e.target == channel)
    observer.conn.topic(channel, topic)
    observer.wait_event("topic", lambda e: e.arguments == [topic])


def from_nick(nick: str) -> Callable[[Any], bool]:
    return lambda e: irc.client.NickMask(e.source).nick == nick


@pytest.mark.skipif(
    WEECHAT is None,
    reason="weechat-headless is not installed (apt-get install weechat-headless weechat-plugins)",
)
def test_weechat(server: ChatServer, observer: Observer, tmp_path: Path) -> None:
    open_channel(observer, "#weechat", "Topic for the WeeChat test")
    run_weechat(observer, server.port, tmp_path)


@pytest.fixture(scope="module")
def bus_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerThread, ...]]:
    """Two chat servers (nodes ``one.test`` and ``two.test``) sharing a ``redis-server``
    of their own (issue 18), each in its own thread."""
    pytest.importorskip("redis", reason="the bus needs redis-py: pip install 'medusa-chat[redis]'")
    program = require_tool("redis-server", "apt-get install redis-server")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    directory = tmp_path_factory.mktemp("redis")
    redis = subprocess.Popen(
        [
            program,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(directory),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while not listening(port):
            assert redis.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.02)
        url = f"redis://127.0.0.1:{port}/0"
        threads = [
            ServerThread([ChatServer(("127.0.0.1", 0), bus=url, server_name=name)])
            for name in ("one.test", "two.test")
        ]
        with threads[0], threads[1]:
            yield tuple(threads)
    finally:
        stop_process(redis)


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
        return True
    return False


@pytest.mark.skipif(
    WEECHAT is None,
    reason="weechat-headless is not installed (apt-get install weechat-headless weechat-plugins)",
)
def test_weechat_on_another_node(bus_nodes: tuple[ServerThread, ...], tmp_path: Path) -> None:
    """The observer on one node, WeeChat on the other, one network through Redis."""
    one, two = (thread.servers[0] for thread in bus_nodes)
    assert isinstance(one, ChatServer)
    assert isinstance(two, ChatServer)
    observer = Observer(one.port)
    try:
        open_channel(observer, "#weechat", "Topic for the WeeChat test")

        def known_there() -> bool:
            found = two.network.find_channel("#weechat")
            return found is not None and found.topic != "" and len(found.members) == 1

        observer.run_until(lambda: bus_nodes[1].call(known_there), "the channel on node two")
        run_weechat(observer, two.port, tmp_path)
    finally:
        observer.close()


def run_weechat(observer: Observer, port: int, tmp_path: Path) -> None:
    """WeeChat joins ``#weechat`` (opened by the observer with its topic) at ``port``,
    shows the topic and the names, says a line the observer gets and reads one, quits."""
    # Not a skip: where weechat-headless is installed for this test, so must its plugins be.
    assert WEECHAT_FIFO_PLUGIN, "WeeChat's fifo plugin is missing: install weechat-plugins"
    channel, nick = "#weechat", "weenick"
    client = WeeChat(tmp_path, port, nick)
    try:
        observer.run_until(client.fifo_ready, "WeeChat's FIFO")
        observer.run_until(
            lambda: "Welcome to the Internet Relay Network" in client.server_log(),
            "WeeChat's welcome",
        )
        client.command("irc.server.medusa", f"/join {channel}")
        observer.wait_event("join", from_nick(nick))
        observer.run_until(
            lambda: (
                'Topic for #weechat is "Topic for the WeeChat test"' in client.channel_log(channel)
            ),
            "the topic in WeeChat",
        )
        observer.run_until(
            lambda: (
                "Channel #weechat: 2 nicks (1 op, 0 voices, 1 normal)"
                in client.channel_log(channel)
            ),
            "the names in WeeChat",
        )
        client.command(f"irc.medusa.{channel}", "hello from WeeChat")
        said = observer.wait_event("pubmsg", from_nick(nick))
        assert said.target == channel
        assert said.arguments == ["hello from WeeChat"]
        observer.conn.privmsg(channel, "hello to WeeChat")
        observer.run_until(
            lambda: "observer\thello to WeeChat" in client.channel_log(channel),
            "the observer's line in WeeChat",
        )
        client.command("", "/quit WeeChat says goodbye")
        gone = observer.wait_event("quit", from_nick(nick))
        assert gone.arguments == ["Quit: WeeChat says goodbye"]
        observer.run_until(lambda: exited(client.process), "WeeChat to exit")
        assert client.process.returncode == 0
        log = client.server_log() + client.channel_log(channel)
        assert "=!=" not in log  # WeeChat's prefix for errors
        assert "Unknown command" not in log
    finally:
        client.stop()


@pytest.mark.skipif(IRSSI is None, reason="irssi is not installed (apt-get install irssi)")
def test_irssi(server: ChatServer, observer: Observer, tmp_path: Path) -> None:
    channel, nick = "#irssi", "irsnick"
    open_channel(observer, channel, "Topic for the irssi test")
    client = Irssi(tmp_path, server.port, nick)
    try:
        observer.run_until(
            lambda: "Welcome to the Internet Relay Network" in client.log_text(),
            "irssi's welcome",
        )
        client.type(f"/join {channel}")
        observer.wait_event("join", from_nick(nick))
        observer.run_until(
            lambda: "Topic for #irssi: Topic for the irssi test" in client.log_text(),
            "the topic in irssi",
        )
        observer.run_until(
            lambda: "Total of 2 nicks [1 ops, 0 halfops, 0 voices, 1 normal]" in client.log_text(),
            "the names in irssi",
        )
        client.type("hello from irssi")
        said = observer.wait_event("pubmsg", from_nick(nick))
        assert said.target == channel
        assert said.arguments == ["hello from irssi"]
        observer.conn.privmsg(channel, "hello to irssi")
        observer.run_until(
            lambda: "observer> hello to irssi" in client.log_text(),
            "the observer's line in irssi",
        )
        client.type("/quit irssi says goodbye")
        gone = observer.wait_event("quit", from_nick(nick))
        assert gone.arguments == ["Quit: irssi says goodbye"]
        observer.run_until(lambda: exited(client.process), "irssi to exit")
        assert client.process.returncode == 0
        log = client.log_text()
        assert "Unknown command" not in log
        assert "You have not registered" not in log
    finally:
        with contextlib.suppress(OSError):
            client.stop()
