"""The seams of medusa-core's channel code.

* A channel needs of its server only :class:`~medusa.core.channelserver.ChannelServer`:
  real connections on 127.0.0.1 (both loops) are served by channels whose server is a
  plain object with exactly those members (``__slots__``: anything else would raise),
  through the paths that use the server (registration, counters, an overlong line, a file
  by ``sendfile``, the PROXY protocol reader).
* No module of medusa-core reads another module's private names (``from m import _x``,
  ``obj._x`` for an ``_x`` its own module does not define).
"""

from __future__ import annotations

import ast
import asyncio
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

import medusa.core
from medusa.core.address import Address
from medusa.core.channel import Channel
from medusa.core.channelserver import ChannelServer
from medusa.core.loop import new_event_loop
from medusa.core.producers import FileProducer
from medusa.core.stats import Counters
from medusa.core.testing import loop_backends
from medusa.core.trusted import TrustedNetworks

TIMEOUT = 20.0
"""Seconds any wait may take before the test fails."""


@pytest.fixture(params=loop_backends())
def backend(request: pytest.FixtureRequest) -> str:
    """The event loop the test runs on."""
    return str(request.param)


class BareServer:
    """Exactly the members of :class:`ChannelServer`, and the channels it registered."""

    __slots__ = (
        "address",
        "channels",
        "counters",
        "idle_timeout",
        "name",
        "proxy_timeout",
        "proxy_trusted",
        "sendfile",
        "write_high_water",
        "write_low_water",
    )

    def __init__(self, proxy_trusted: TrustedNetworks | None = None) -> None:
        self.name = "bare"
        self.address = Address("127.0.0.1", 0)
        self.counters = Counters()
        self.write_high_water: int | None = None
        self.write_low_water: int | None = None
        self.idle_timeout = 0.0
        self.sendfile = True
        self.proxy_trusted = proxy_trusted
        self.proxy_timeout = 5.0
        self.channels: set[Channel] = set()

    def channel_opened(self, channel: Channel) -> bool:
        self.counters.active += 1
        self.channels.add(channel)
        return True

    def channel_closed(self, channel: Channel) -> None:
        self.counters.active -= 1
        self.channels.discard(channel)


class FileLines(Channel):
    """``FILE path`` sends the file (by ``sendfile``) then ``END``; other lines echo."""

    terminator = b"\n"

    def __init__(self, server: ChannelServer) -> None:
        super().__init__(server, max_incoming=1000)

    def found_terminator(self) -> None:
        line = self.get_incoming()
        if line.startswith(b"FILE "):
            self.cork()
            self.push(b"BEGIN\n")
            self.push_with_producer(FileProducer(open(os.fsdecode(line[5:]), "rb")))  # noqa: SIM115
            self.push(b"END\n")
        else:
            self.push(line + b" from %b\n" % str(self.peer[0]).encode())


def serve(
    backend: str,
    server: BareServer,
    client: Callable[[int], None],
    until: Callable[[], bool] = lambda: True,
) -> None:
    """Serve FileLines channels of ``server`` on a free port while ``client(port)`` runs in
    a thread; then wait (bounded) for ``until()``."""
    loop = new_event_loop(backend)

    async def main() -> None:
        listener = await loop.create_server(lambda: FileLines(server), "127.0.0.1", 0)
        port = listener.sockets[0].getsockname()[1]
        try:
            await asyncio.wait_for(loop.run_in_executor(None, client, port), TIMEOUT)
            deadline = loop.time() + TIMEOUT
            while not until():
                assert loop.time() < deadline, "condition not reached"
                await asyncio.sleep(0.01)
        finally:
            listener.close()
            for channel in list(server.channels):
                channel.abort()
            await asyncio.sleep(0)

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()


def read_until(sock: socket.socket, end: bytes) -> bytes:
    out = b""
    while not out.endswith(end):
        piece = sock.recv(65536)
        if not piece:
            return out
        out += piece
    return out


def test_channel_served_by_the_narrow_interface(backend: str, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    server = BareServer()

    def client(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            sock.sendall(b"hello\nFILE %b\n" % os.fsencode(path))
            assert read_until(sock, b"END\n") == b"hello from 127.0.0.1\nBEGIN\n" + data + b"END\n"
            sock.sendall(b"x" * 1500)  # over max_incoming without a terminator
            assert read_until(sock, b"never") == b""  # closed

    serve(backend, server, client, until=lambda: server.counters.active == 0)
    counters = server.counters
    assert counters.bytes_in == len(b"hello\nFILE %b\n" % os.fsencode(path)) + 1500
    assert counters.bytes_out == len(b"hello from 127.0.0.1\nBEGIN\nEND\n") + len(data)
    assert counters.errors == 1  # the overlong line


def test_proxy_reader_served_by_the_narrow_interface(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = BareServer(TrustedNetworks(["127.0.0.1/32"]))

    def client(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            sock.sendall(b"PROXY TCP4 192.0.2.7 192.0.2.1 4711 80\r\nhi\n")
            assert read_until(sock, b"\n") == b"hi from 192.0.2.7\n"
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
            sock.sendall(b"PROXY NONSENSE\r\n")
            assert read_until(sock, b"never") == b""

    with caplog.at_level(logging.WARNING, logger="medusa.error"):
        serve(backend, server, client, until=lambda: server.counters.active == 0)
    assert server.counters.errors == 1
    assert "bare on 127.0.0.1:0: bad PROXY header" in caplog.text


# -- private names ---------------------------------------------------------------------------


def private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def defined_privates(tree: ast.Module) -> set[str]:
    """The private names a module defines: functions, classes, names it assigns, the
    attributes it sets on ``self`` and its ``__slots__`` entries."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            names.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # __slots__ entries
    return {n for n in names if private(n)}


def foreign_private_uses(path: Path) -> list[str]:
    """``from m import _x`` and ``obj._x`` uses in the module at ``path`` of an ``_x`` it
    does not define (a standard library module's own, ``asyncio._x``, aside)."""
    tree = ast.parse(path.read_text(), str(path))
    own = defined_privates(tree)
    stdlib = {
        (alias.asname or alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if not alias.name.startswith("medusa")
    }
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [
                f"{path.name}:{node.lineno}: from {node.module} import {alias.name}"
                for alias in node.names
                if private(alias.name)
            ]
        elif isinstance(node, ast.Attribute) and private(node.attr):
            base = node.value
            if isinstance(base, ast.Name) and base.id in ("self", "cls", *stdlib):
                continue
            if node.attr not in own:
                found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_reads_another_modules_private_names() -> None:
    package = Path(next(iter(medusa.core.__path__)))
    found = [use for path in sorted(package.glob("*.py")) for use in foreign_private_uses(path)]
    assert found == []


def test_the_private_name_check_finds_a_foreign_field(tmp_path: Path) -> None:
    path = tmp_path / "sample.py"
    path.write_text(
        "from medusa.core.listener import _yielding\n"
        "def f(channel):\n    channel._corked = True\n    return channel._refill()\n"
    )
    assert len(foreign_private_uses(path)) == 3
