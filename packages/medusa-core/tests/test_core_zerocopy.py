"""Tests of :class:`medusa.core.zerocopy.ZeroCopySender` on its own, without a channel: a
real TCP connection on 127.0.0.1 whose server side is an asyncio transport (both loops),
real files, and the outcomes the sender returns for its caller to act on."""

from __future__ import annotations

import asyncio
import io
import os
import random
import socket
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from medusa.core.loop import new_event_loop
from medusa.core.producers import FileProducer
from medusa.core.testing import loop_backends
from medusa.core.zerocopy import (
    DONE,
    DRAIN,
    SHRANK,
    UNSUPPORTED,
    WAITING,
    YIELD,
    ZeroCopySender,
)

TIMEOUT = 20.0
"""Seconds any wait may take before the test fails."""

pytestmark = pytest.mark.skipif(not hasattr(os, "sendfile"), reason="no os.sendfile")


@pytest.fixture(params=loop_backends())
def backend(request: pytest.FixtureRequest) -> str:
    """The event loop the test runs on."""
    return str(request.param)


@contextmanager
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected pair of TCP sockets on 127.0.0.1: (server side, client side)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname(), timeout=TIMEOUT)
        server, _ = listener.accept()
    with server, client:
        yield server, client


Scenario = Callable[[asyncio.Transport, socket.socket], Awaitable[None]]


def run(backend: str, scenario: Scenario) -> None:
    """Run ``scenario(transport, client)`` on a fresh loop of ``backend``."""
    loop = new_event_loop(backend)
    try:
        with tcp_pair() as (server, client):

            async def main() -> None:
                transport, _ = await asyncio.get_running_loop().connect_accepted_socket(
                    asyncio.Protocol, server
                )
                try:
                    await asyncio.wait_for(scenario(transport, client), TIMEOUT)
                finally:
                    transport.abort()

            loop.run_until_complete(main())
    finally:
        loop.close()


def recv_exactly(client: socket.socket, size: int) -> bytes:
    out = bytearray()
    while len(out) < size:
        piece = client.recv(min(65536, size - len(out)))
        assert piece, f"end of file after {len(out)} of {size} bytes"
        out += piece
    return bytes(out)


@pytest.fixture(scope="module")
def data() -> bytes:
    return random.Random(5).randbytes(12 << 20)  # more than a full socket


@pytest.fixture
def big(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    return path


def test_sends_a_file_and_says_done(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "small.bin"
    path.write_bytes(b"0123456789" * 1000)

    async def scenario(transport: asyncio.Transport, client: socket.socket) -> None:
        sender = ZeroCopySender()
        producer = FileProducer(path.open("rb"), offset=5)
        assert sender.send(producer, transport, lambda: None) == DONE
        assert producer.remaining == 0
        assert producer.offset == 10000
        assert producer.file.closed
        loop = asyncio.get_running_loop()
        got = await loop.run_in_executor(None, recv_exactly, client, 9995)
        assert got == path.read_bytes()[5:]
        sender.close()

    run(backend, scenario)


def test_a_file_without_a_descriptor_is_unsupported(backend: str) -> None:
    async def scenario(transport: asyncio.Transport, client: socket.socket) -> None:
        sender = ZeroCopySender()
        producer = FileProducer(io.BytesIO(b"in memory"), count=9)
        assert sender.send(producer, transport, lambda: None) == UNSUPPORTED
        assert sender.usable  # only this file: the next one may go by sendfile
        assert producer.remaining == 9

    run(backend, scenario)


def test_bytes_in_the_transport_go_first(backend: str, big: Path) -> None:
    """Output already buffered by the transport must leave before the file: the sender
    says DRAIN and sends nothing."""

    async def scenario(transport: asyncio.Transport, client: socket.socket) -> None:
        transport.write(b"h" * (8 << 20))  # more than the socket takes: the rest buffered
        assert transport.get_write_buffer_size() > 0
        sender = ZeroCopySender()
        producer = FileProducer(big.open("rb"))
        assert sender.send(producer, transport, lambda: None) == DRAIN
        assert producer.offset == 0
        producer.close()

    run(backend, scenario)


def test_a_full_socket_is_watched_until_it_has_room(backend: str, big: Path, data: bytes) -> None:
    """The socket fills: WAITING, and the callback runs once the client reads; sending
    on from there delivers the whole file, all by sendfile, in order (YIELD when a client
    that reads fast let one call send a whole slice: the loop's turn, then on)."""

    async def scenario(transport: asyncio.Transport, client: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        sender = ZeroCopySender()
        producer = FileProducer(big.open("rb"))
        try:
            room = asyncio.Event()
            outcome = sender.send(producer, transport, room.set)
            assert outcome == WAITING
            assert sender.waiting
            assert sender.send(producer, transport, room.set) == WAITING  # still waiting
            reader = loop.run_in_executor(None, recv_exactly, client, len(data))
            while outcome != DONE:
                if outcome == WAITING:
                    await room.wait()
                    room.clear()
                    assert not sender.waiting
                else:
                    await asyncio.sleep(0)
                outcome = sender.send(producer, transport, room.set)
                assert outcome in (DONE, WAITING, YIELD)
            assert await reader == data
        finally:
            producer.close()
            sender.close()

    run(backend, scenario)


def test_close_while_waiting_closes_the_watched_descriptor(backend: str, big: Path) -> None:
    async def scenario(transport: asyncio.Transport, client: socket.socket) -> None:
        sender = ZeroCopySender()
        producer = FileProducer(big.open("rb"))
        before = len(os.listdir("/proc/self/fd"))
        assert sender.send(producer, transport, lambda: None) == WAITING
        assert len(os.listdir("/proc/self/fd")) == before + 1  # the duplicate
        sender.close()
        assert not sender.waiting
        assert len(os.listdir("/proc/self/fd")) == before
        producer.close()

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")
    run(backend, scenario)


def test_a_file_shorter_than_promised(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "short.bin"
    path.write_bytes(b"x" * 1000)

    async def scenario(transport: asyncio.Transport, client: socket.socket) -> None:
        sender = ZeroCopySender()
        producer = FileProducer(path.open("rb"), count=5000)
        assert sender.send(producer, transport, lambda: None) == SHRANK
        assert producer.truncated
        assert producer.offset == 1000
        assert producer.file.closed

    run(backend, scenario)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_CORK is Linux's")
def test_cork_set_and_cleared_when_the_file_is_sent(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "small.bin"
    path.write_bytes(b"y" * 5000)

    async def scenario(transport: asyncio.Transport, client: socket.socket) -> None:
        sock = transport.get_extra_info("socket")

        def corked() -> int:
            return int(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK))

        sender = ZeroCopySender()
        sender.set_cork(transport, True)
        assert sender.corked
        assert corked() == 1
        transport.write(b"HEAD\r\n")
        assert transport.get_write_buffer_size() == 0  # an empty socket took the head
        assert sender.send(FileProducer(path.open("rb")), transport, lambda: None) == DONE
        assert not sender.corked
        assert corked() == 0
        sender.close()

    run(backend, scenario)
