"""Protocol tests of :class:`medusa.core.channel.Channel` on real sockets, on both loops.

A small line protocol (:class:`EchoChannel`) exercises the asynchat model: bytes, int and
None terminators, switching terminators mid-stream, the output fifo's order, close_when_done,
the zero-copy file path (and its bridge when the socket is full), flow control against a
client that never reads, and the idle timeout. Every wait is on a condition with a
deadline; every client socket has a timeout.
"""

from __future__ import annotations

import contextlib
import gc
import io
import logging
import os
import random
import select
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from medusa.core.address import Address
from medusa.core.channel import Channel, find_prefix_at_end
from medusa.core.producers import ChunkedProducer, FileProducer, LinesProducer, SimpleProducer
from medusa.core.server import Server
from medusa.core.testing import ServerThread, loop_backends, wait_until

TIMEOUT = 20.0
"""Seconds any single client operation or condition may take before the test fails."""


@pytest.fixture(params=loop_backends())
def backend(request: pytest.FixtureRequest) -> str:
    """The event loop the test runs on."""
    return str(request.param)


def pattern(n: int) -> bytes:
    return (b"0123456789abcdef" * (n // 16 + 1))[:n]


class EchoChannel(Channel):
    """A line protocol. Each line is echoed, except commands:

    ``COUNT n`` (the next n bytes, whatever they hold, come back as ``GOT n:data``),
    ``TERM hex`` (the bytes up to the terminator given in hex come back as
    ``DATA n:data``), ``RAW`` (terminator None: everything after is echoed as it
    arrives), ``ORDER``/``ORDERBIG`` (a mix of push and push_with_producer), ``FILE path``
    (``BEGIN``, the file through a FileProducer, ``END``), ``BIGQUIT n`` (n bytes from a
    producer, then close_when_done), ``QUIT`` (``BYE``, close_when_done, then a push that
    must not be sent).
    """

    terminator: bytes | int | None = b"\n"

    def __init__(self, server: Server) -> None:
        super().__init__(server)
        self.mode = "line"

    def collect_incoming_data(self, data: bytes) -> None:
        if self.mode == "raw":
            self.push(data)
        else:
            super().collect_incoming_data(data)

    def found_terminator(self) -> None:
        data = self.get_incoming()
        if self.mode in ("count", "term"):
            tag = b"GOT" if self.mode == "count" else b"DATA"
            self.push(b"%b %d:%b\n" % (tag, len(data), data))
            self.mode = "line"
            self.set_terminator(b"\n")
            return
        command, _, arg = data.partition(b" ")
        if command == b"COUNT":
            self.mode = "count"
            self.set_terminator(int(arg))
        elif command == b"TERM":
            self.mode = "term"
            self.set_terminator(bytes.fromhex(arg.decode()))
            self.push(b"TERM ok\n")
        elif command == b"RAW":
            self.mode = "raw"
            self.set_terminator(None)
            self.push(b"RAW ok\n")
        elif command == b"ORDER":
            self.push(b"1")
            self.push_with_producer(SimpleProducer(b"2" * 10, 3))
            self.push(b"3")
            self.push_with_producer(LinesProducer(["4", "5"]))
            self.push(bytearray(b"6"))  # type: ignore[arg-type]
            self.push_with_producer(ChunkedProducer(SimpleProducer(b"77")))
            self.push(b"\n")
        elif command == b"ORDERBIG":
            for part in order_big_parts():
                if isinstance(part, bytes):
                    self.push(part)
                else:
                    self.push_with_producer(SimpleProducer(part[0], 1000))
        elif command == b"FILE":
            self.push(b"BEGIN\n")
            self.push_with_producer(FileProducer(open(arg.decode(), "rb")))  # noqa: SIM115
            self.push(b"END\n")
        elif command == b"MEMFILE":  # a file object without a descriptor
            n = int(arg)
            self.push(b"BEGIN\n")
            self.push_with_producer(FileProducer(io.BytesIO(pattern(n)), 0, n))
            self.push(b"END\n")
        elif command in (b"PIPE", b"CORKPIPE"):  # a descriptor that sendfile may refuse
            n = int(arg)
            if command == b"CORKPIPE":
                self.cork()  # as a response does before a large file
            r, w = os.pipe()
            with os.fdopen(w, "wb") as wf:
                wf.write(pattern(n))
            self.push(b"BEGIN\n")
            self.push_with_producer(FileProducer(os.fdopen(r, "rb"), 0, n))
            self.push(b"END\n")
        elif command == b"SHORT":  # promise more bytes than the file holds
            path, _, count = arg.partition(b" ")
            self.push(b"BEGIN\n")
            self.push_with_producer(FileProducer(open(path.decode(), "rb"), 0, int(count)))  # noqa: SIM115
            self.push(b"END\n")
        elif command == b"CORKED":  # the socket's TCP_CORK now
            assert self.transport is not None
            sock = self.transport.get_extra_info("socket")
            cork = getattr(socket, "TCP_CORK", 3)
            self.push(b"CORKED %d\n" % sock.getsockopt(socket.IPPROTO_TCP, cork))
        elif command == b"INTERLEAVE":  # the test's producer, on the test's server
            self.push_with_producer(cast(InterleaveProducer, self.server.interleave))  # type: ignore[union-attr]
        elif command == b"BIGQUIT":
            self.push_with_producer(SimpleProducer(pattern(int(arg))))
            self.close_when_done()
        elif command == b"QUIT":
            self.push(b"BYE\n")
            self.close_when_done()
            self.push(b"AFTER\n")
        else:
            self.push(data + b"\n")


def order_big_parts() -> list[bytes | tuple[bytes]]:
    """Pushed data (bytes) and producer outputs (1-tuples), large enough to pause."""
    parts: list[bytes | tuple[bytes]] = []
    for i in range(60):
        parts.append(b"<%d>" % i + b"p" * 5000)
        parts.append((b"[%d]" % i + b"q" * 7000,))
    return parts


def order_big_expected() -> bytes:
    return b"".join(p if isinstance(p, bytes) else p[0] for p in order_big_parts())


class InterleaveProducer:
    """Many small chunks; its first ``more()`` sends a line on another client's socket,
    and each call records whether that client's echo has arrived yet."""

    def __init__(self, other: socket.socket, chunks: int) -> None:
        self.other = other
        self.chunks = chunks
        self.calls = 0
        self.seen_at: int | None = None

    def more(self) -> bytes:
        if self.calls == 0:
            self.other.sendall(b"PING\n")
        elif self.seen_at is None and select.select([self.other], [], [], 0)[0]:
            self.seen_at = self.calls
        if self.calls >= self.chunks:
            return b""
        self.calls += 1
        return b"x" * 32


class EchoServer(Server):
    name = "echo"
    interleave: InterleaveProducer | None = None

    def make_channel(self) -> Channel:
        return EchoChannel(self)


class Client:
    """A blocking client with a timeout on every operation."""

    def __init__(
        self,
        address: Any,
        family: socket.AddressFamily = socket.AF_INET,
        *,
        rcvbuf: int | None = None,
        sndbuf: int | None = None,
    ) -> None:
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if rcvbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf is not None:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(address)
        if family != socket.AF_UNIX:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, piece: int = 65536) -> bool:
        data = self.sock.recv(piece)
        self.buf += data
        return bool(data)

    def recv_exactly(self, n: int, piece: int = 65536) -> bytes:
        while len(self.buf) < n:
            if not self._fill(piece):
                pytest.fail(f"EOF after {len(self.buf)} of {n} bytes: {bytes(self.buf[:80])!r}")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def expect(self, expected: bytes) -> None:
        got = self.recv_exactly(len(expected))
        assert got == expected

    def recv_until_eof(self, limit: int = 1 << 30) -> bytes:
        while self._fill():
            assert len(self.buf) <= limit, "more data than expected before EOF"
        out = bytes(self.buf)
        self.buf.clear()
        return out

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def echo_server(
    backend: str, address: Any = ("127.0.0.1", 0), **kwargs: Any
) -> Iterator[tuple[ServerThread, EchoServer]]:
    server = EchoServer(address, **kwargs)
    with ServerThread([server], backend=backend) as st:
        yield st, server


@pytest.fixture
def clients() -> Iterator[Callable[..., Client]]:
    made: list[Client] = []

    def make(*args: Any, **kwargs: Any) -> Client:
        client = Client(*args, **kwargs)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def wait_bytes_in(st: ServerThread, server: Server, n: int) -> None:
    """Wait until the server has received (and dispatched) ``n`` bytes, so the next send
    arrives in a separate ``data_received`` call."""
    wait_until(lambda: st.call(lambda: server.counters.bytes_in) >= n, TIMEOUT, f"bytes_in >= {n}")


def send_in_pieces(st: ServerThread, server: Server, client: Client, pieces: list[bytes]) -> None:
    """Send each piece as its own read on the server side."""
    total = st.call(lambda: server.counters.bytes_in)
    for piece in pieces:
        client.send(piece)
        total += len(piece)
        wait_bytes_in(st, server, total)


# -- pure helper -----------------------------------------------------------------------------


def test_find_prefix_at_end() -> None:
    assert find_prefix_at_end(b"abc\r", b"\r\n") == 1
    assert find_prefix_at_end(b"abc", b"\r\n") == 0
    assert find_prefix_at_end(b"x<EN", b"<END>") == 3
    assert find_prefix_at_end(b"<END", b"<END>") == 4
    assert find_prefix_at_end(b"", b"<END>") == 0
    assert find_prefix_at_end(b"ab", b"\n") == 0


# -- terminators -----------------------------------------------------------------------------


def test_lines_several_per_packet(backend: str, clients: Callable[..., Client]) -> None:
    with echo_server(backend) as (_, server):
        client = clients(("127.0.0.1", server.port))
        client.send(b"one\ntwo\n\nthree\nfour")
        client.expect(b"one\ntwo\n\nthree\n")
        client.send(b"\n")
        client.expect(b"four\n")


def test_line_split_across_packets(backend: str, clients: Callable[..., Client]) -> None:
    with echo_server(backend) as (st, server):
        client = clients(("127.0.0.1", server.port))
        send_in_pieces(st, server, client, [b"hel", b"lo\nwor", b"ld", b"\n"])
        client.expect(b"hello\nworld\n")


def test_multibyte_terminator_byte_by_byte(backend: str, clients: Callable[..., Client]) -> None:
    with echo_server(backend) as (st, server):
        client = clients(("127.0.0.1", server.port))
        client.send(b"TERM " + b"<END>".hex().encode() + b"\n")
        client.expect(b"TERM ok\n")
        # A false start of the terminator ("<EN" then "X") must stay in the data.
        message = b"ab<ENX<<E<END>"
        send_in_pieces(st, server, client, [message[i : i + 1] for i in range(len(message))])
        client.expect(b"DATA 9:ab<ENX<<E\n")
        client.send(b"after\n")
        client.expect(b"after\n")


def test_multibyte_terminator_split_everywhere(
    backend: str, clients: Callable[..., Client]
) -> None:
    with echo_server(backend) as (st, server):
        client = clients(("127.0.0.1", server.port))
        message = b"x\r\n.y\r\n.\r\n"
        for cut in range(1, len(message)):
            client.send(b"TERM " + b"\r\n.\r\n".hex().encode() + b"\n")
            client.expect(b"TERM ok\n")
            send_in_pieces(st, server, client, [message[:cut], message[cut:]])
            client.expect(b"DATA 5:x\r\n.y\n")


def test_int_terminator_counts_across_packets(backend: str, clients: Callable[..., Client]) -> None:
    with echo_server(backend) as (st, server):
        client = clients(("127.0.0.1", server.port))
        send_in_pieces(st, server, client, [b"COUNT 10\n01", b"2\n4", b"5", b"6789next\n"])
        client.expect(b"GOT 10:012\n456789\nnext\n")


def test_int_terminator_exact_and_within_one_packet(
    backend: str, clients: Callable[..., Client]
) -> None:
    with echo_server(backend) as (_, server):
        client = clients(("127.0.0.1", server.port))
        client.send(b"COUNT 3\nabcCOUNT 1\n\nCOUNT 2\n\n\n")
        client.expect(b"GOT 3:abc\nGOT 1:\n\nGOT 2:\n\n\n")
        client.send(b"COUNT 5\nxyz")
        client.send(b"zy")
        client.expect(b"GOT 5:xyzzy\n")


def test_none_terminator_takes_everything(backend: str, clients: Callable[..., Client]) -> None:
    with echo_server(backend) as (st, server):
        client = clients(("127.0.0.1", server.port))
        client.send(b"RAW\n")
        client.expect(b"RAW ok\n")
        raw = b"COUNT 3\nline\n\r\n\x00" + bytes(range(256))
        send_in_pieces(st, server, client, [raw[:7], raw[7:8], raw[8:]])
        client.sock.shutdown(socket.SHUT_WR)  # EOF: the channel finishes and closes
        assert client.recv_until_eof() == raw


def test_switching_terminators_mid_stream(backend: str, clients: Callable[..., Client]) -> None:
    """Every switch happens inside one read: the rest of the packet must be split with
    the new terminator."""
    with echo_server(backend) as (_, server):
        client = clients(("127.0.0.1", server.port))
        term = b"<END>".hex().encode()
        client.send(b"COUNT 4\nab\ncTERM " + term + b"\nhello\nworld<END>COUNT 2\n<ERAW\nrest\n")
        client.expect(b"GOT 4:ab\nc\nTERM ok\nDATA 11:hello\nworld\nGOT 2:<E\nRAW ok\nrest\n")


# -- output ----------------------------------------------------------------------------------


def test_push_and_producer_order(backend: str, clients: Callable[..., Client]) -> None:
    with echo_server(backend) as (_, server):
        client = clients(("127.0.0.1", server.port))
        client.send(b"ORDER\n")
        client.expect(b"1" + b"2" * 10 + b"3" + b"4\r\n5\r\n" + b"6" + b"2\r\n77\r\n0\r\n\r\n\n")


def test_idle_channel_holds_no_output_queue(backend: str, clients: Callable[..., Client]) -> None:
    """Memory per idle connection (issue 15: 10,000 of them): once everything queued was
    sent, the channel holds no list of its own (the output queue is made when something
    must wait in it and dropped when it is empty again)."""
    expected = order_big_expected()
    with echo_server(backend) as (st, server):
        client = clients(("127.0.0.1", server.port), rcvbuf=16384)
        client.send(b"ORDERBIG\nafter\n")
        assert client.recv_exactly(len(expected), piece=4096) == expected
        client.expect(b"after\n")

        def held_lists() -> list[object]:
            (channel,) = server.channels
            assert channel.pending == 0
            return [item for item in gc.get_referents(channel) if type(item) is list]

        wait_until(lambda: st.call(lambda: server.counters.active) == 1, TIMEOUT, "the channel")
        assert st.call(held_lists) == []


def test_order_kept_across_flow_control_pauses(
    backend: str, clients: Callable[..., Client]
) -> None:
    expected = order_big_expected()
    with echo_server(backend) as (_, server):
        client = clients(("127.0.0.1", server.port), rcvbuf=16384)
        client.send(b"ORDERBIG\nafter\n")
        assert client.recv_exactly(len(expected), piece=4096) == expected
        client.expect(b"after\n")


def test_close_when_done_flushes_then_closes(backend: str, clients: Callable[..., Client]) -> None:
    size = 3_000_000
    with echo_server(backend) as (st, server):
        client = clients(("127.0.0.1", server.port), rcvbuf=32768)
        client.send(b"BIGQUIT %d\n" % size)
        assert client.recv_until_eof() == pattern(size)
        other = clients(("127.0.0.1", server.port))
        other.send(b"hi\nQUIT\nnever\n")
        assert other.recv_until_eof() == b"hi\nBYE\n"  # nothing pushed after the close
        wait_until(lambda: st.call(lambda: server.counters.active) == 0, TIMEOUT, "closes")


def test_busy_producer_yields_to_other_connections(
    backend: str, clients: Callable[..., Client]
) -> None:
    """A producer that keeps returning data to a fast reader (a compressed response) does
    not hold the loop: a second client's request is answered while the first response is
    still being produced, and the first response arrives whole and in order."""
    with echo_server(backend) as (_, server):
        address = ("127.0.0.1", server.port)
        first, second = clients(address), clients(address)
        first.send(b"hello\n")
        first.expect(b"hello\n")
        second.send(b"hi\n")
        second.expect(b"hi\n")
        chunks = 2000  # 64,000 bytes: below the socket buffers, so flow control never pauses
        producer = server.interleave = InterleaveProducer(second.sock, chunks)
        first.send(b"INTERLEAVE\nafter\n")
        assert first.recv_exactly(chunks * 32) == b"x" * (chunks * 32)
        first.expect(b"after\n")
        second.expect(b"PING\n")
        assert producer.seen_at is not None, "the other client waited for the whole response"
        assert producer.seen_at < chunks


def test_close_from_resume_writing_with_an_empty_buffer(
    backend: str, clients: Callable[..., Client], caplog: pytest.LogCaptureFixture
) -> None:
    """With a low-water mark of 0, resume_writing comes only once the transport's buffer
    is empty, so close_when_done's close happens inside it. asyncio 3.11's _write_ready
    then ran connection_lost a second time (an error logged, a socket leaked)."""
    caplog.set_level(logging.ERROR)
    size = big_size()
    for _ in range(3):
        with echo_server(backend, write_high_water=65536, write_low_water=0) as (st, server):
            client = clients(("127.0.0.1", server.port), rcvbuf=32768)
            client.send(b"BIGQUIT %d\n" % size)
            assert len(client.recv_until_eof()) == size
            wait_until(lambda: st.call(lambda: server.counters.active) == 0, TIMEOUT, "close")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


# -- the file path ---------------------------------------------------------------------------


class SendfileSpy:
    """Counts the real ``os.sendfile`` calls of the channel (it calls through)."""

    def __init__(self) -> None:
        self.real = os.sendfile
        self.lock = threading.Lock()
        self.calls = 0
        self.sent = 0
        self.would_block = 0

    def __call__(self, out_fd: int, in_fd: int, offset: int | None, count: int) -> int:
        with self.lock:
            self.calls += 1
        try:
            n = self.real(out_fd, in_fd, offset, count)
        except BlockingIOError:
            with self.lock:
                self.would_block += 1
            raise
        with self.lock:
            self.sent += n
        return n


@pytest.fixture
def sendfile_spy(monkeypatch: pytest.MonkeyPatch) -> SendfileSpy:
    spy = SendfileSpy()
    monkeypatch.setattr(os, "sendfile", spy)
    return spy


def big_size() -> int:
    """A file larger than the kernel's largest TCP send buffer, so the socket fills."""
    try:
        wmem_max = int(Path("/proc/sys/net/ipv4/tcp_wmem").read_text().split()[2])
    except (OSError, ValueError, IndexError):
        wmem_max = 4 << 20
    return max(12 << 20, 2 * wmem_max + (1 << 20))


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    data = random.Random(3).randbytes(big_size())
    path = tmp_path_factory.mktemp("files") / "big.bin"
    path.write_bytes(data)
    return path, data


def read_file_reply(client: Client, size: int, piece: int = 65536) -> bytes:
    client.expect(b"BEGIN\n")
    body = client.recv_exactly(size, piece)
    client.expect(b"END\n")
    return body


def test_file_through_sendfile(
    backend: str,
    clients: Callable[..., Client],
    big_file: tuple[Path, bytes],
    sendfile_spy: SendfileSpy,
) -> None:
    path, data = big_file
    with echo_server(backend) as (st, server):
        client = clients(("127.0.0.1", server.port))
        client.send(b"FILE %b\n" % os.fsencode(path))
        assert read_file_reply(client, len(data)) == data
        client.send(b"again\n")
        client.expect(b"again\n")
        assert sendfile_spy.calls > 0
        assert sendfile_spy.sent > 0
        out = st.call(lambda: server.counters.bytes_out)
        assert out == len(b"BEGIN\n") + len(data) + len(b"END\n") + len(b"again\n")


@pytest.mark.parametrize("unix", [False, True], ids=["tcp", "unix"])
def test_file_to_a_slow_reader_waits_without_copies(
    backend: str,
    clients: Callable[..., Client],
    big_file: tuple[Path, bytes],
    sendfile_spy: SendfileSpy,
    unix: bool,
) -> None:
    """The client reads nothing until sendfile has hit a full socket, then reads in small
    pieces: the channel waits for room (a watch on a duplicate of the socket's descriptor)
    and every byte of the file goes by sendfile, none copied through the transport (12 MiB
    used to be partly copied, 16 KiB per full socket), in order."""
    path, data = big_file
    with contextlib.ExitStack() as stack:
        if unix:
            sock_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="mdc"))
            address: Any = Address(None, 0, os.path.join(sock_dir, "s"))
        else:
            address = ("127.0.0.1", 0)
        st, server = stack.enter_context(echo_server(backend, address))
        if unix:
            client = clients(address.path, socket.AF_UNIX, rcvbuf=16384)
        else:
            client = clients(("127.0.0.1", server.port), rcvbuf=16384)
        client.send(b"FILE %b\nafter\n" % os.fsencode(path))
        wait_until(lambda: sendfile_spy.would_block > 0, TIMEOUT, "sendfile to hit a full socket")
        assert read_file_reply(client, len(data), piece=4096) == data
        client.expect(b"after\n")
        assert sendfile_spy.sent == len(data)  # all by sendfile: nothing copied
        out = st.call(lambda: server.counters.bytes_out)
        assert out == len(data) + len(b"BEGIN\nEND\nafter\n")


def test_file_without_sendfile(
    backend: str,
    clients: Callable[..., Client],
    big_file: tuple[Path, bytes],
    sendfile_spy: SendfileSpy,
) -> None:
    path, data = big_file
    with echo_server(backend, sendfile=False) as (_, server):
        client = clients(("127.0.0.1", server.port), rcvbuf=65536)
        client.send(b"FILE %b\n" % os.fsencode(path))
        assert read_file_reply(client, len(data)) == data
        assert sendfile_spy.calls == 0


@pytest.mark.parametrize("sendfile", [True, False], ids=["sendfile", "buffered"])
def test_file_objects_sendfile_cannot_take(
    backend: str, clients: Callable[..., Client], sendfile: bool
) -> None:
    with echo_server(backend, sendfile=sendfile) as (_, server):
        client = clients(("127.0.0.1", server.port))
        client.send(b"MEMFILE 300000\n")
        assert read_file_reply(client, 300000) == pattern(300000)
        client.send(b"PIPE 50000\n")
        assert read_file_reply(client, 50000) == pattern(50000)
        client.send(b"ok\n")
        client.expect(b"ok\n")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="TCP_CORK is Linux's")
def test_cork_cleared_when_sendfile_refuses_the_file(
    backend: str, clients: Callable[..., Client]
) -> None:
    """A corked socket whose file sendfile cannot take (a pipe) is uncorked when the file
    goes the buffered way, so its last partial segment does not wait for the kernel's
    200 ms cork timer."""
    with echo_server(backend, sendfile=True) as (_, server):
        client = clients(("127.0.0.1", server.port))
        client.send(b"CORKPIPE 50000\n")
        assert read_file_reply(client, 50000) == pattern(50000)
        client.send(b"CORKED\n")
        client.expect(b"CORKED 0\n")


@pytest.mark.parametrize("sendfile", [True, False], ids=["sendfile", "buffered"])
def test_file_shorter_than_promised_aborts(
    backend: str, clients: Callable[..., Client], tmp_path: Path, sendfile: bool
) -> None:
    """The promised length cannot be sent: the connection must end without END, so the
    peer never takes later bytes for the rest of the file."""
    data = pattern(100_000)
    path = tmp_path / "short.bin"
    path.write_bytes(data)
    with echo_server(backend, sendfile=sendfile) as (st, server):
        client = clients(("127.0.0.1", server.port))
        client.send(b"SHORT %b %d\nnext\n" % (os.fsencode(path), 2 * len(data)))
        client.expect(b"BEGIN\n")
        assert client.recv_until_eof() == data  # then EOF: no END, no "next"
        wait_until(lambda: st.call(lambda: server.counters.active) == 0, TIMEOUT, "the abort")
        assert st.call(lambda: server.counters.errors) == 1


# -- flow control ----------------------------------------------------------------------------


def test_client_that_never_reads_pauses_the_channel(
    backend: str, clients: Callable[..., Client]
) -> None:
    line = b"x" * 99 + b"\n"
    chunk = line * 1000  # 100 kB per send
    cap = 512 << 20  # fail rather than send forever if the server never pauses
    with echo_server(backend) as (st, server):
        client = clients(("127.0.0.1", server.port), rcvbuf=65536, sndbuf=65536)
        sock = client.sock
        sock.setblocking(False)
        wait_until(lambda: st.call(lambda: len(server.channels)) == 1, TIMEOUT, "the accept")

        def channel() -> Channel:
            (ch,) = server.channels
            return ch

        def paused() -> bool:
            return st.call(lambda: channel().reading_paused)

        sent = 0
        deadline = time.monotonic() + 3 * TIMEOUT
        pending = b""
        # Send until the socket refuses more while the server's channel is paused.
        while True:
            assert time.monotonic() < deadline, "the server never paused reading"
            assert sent < cap, f"sent {sent} bytes and the server still reads"
            if not pending:
                pending = chunk
            try:
                n = sock.send(pending)
            except BlockingIOError:
                if paused():
                    break
                select.select([], [sock], [], 0.05)
                continue
            sent += n
            pending = pending[n:]
        bytes_in = st.call(lambda: server.counters.bytes_in)

        def backlog() -> int:
            ch = channel()
            assert ch.transport is not None
            queued = sum(len(item) for item in ch._fifo or () if isinstance(item, bytes))
            return ch.transport.get_write_buffer_size() + queued

        # Memory stays bounded: the backlog is about the high-water mark plus one read.
        assert st.call(backlog) < 2 << 20
        assert bytes_in <= sent
        # More attempts do not get any further into the server.
        for _ in range(20):
            with contextlib.suppress(BlockingIOError):
                sent_now = sock.send(pending or chunk)
                sent += sent_now
                pending = (pending or chunk)[sent_now:]
        assert st.call(lambda: server.counters.bytes_in) == bytes_in
        assert paused()

        # Once the client reads, the server resumes and every line comes back.
        sock.setblocking(True)
        sock.settimeout(TIMEOUT)
        total = sent + len(pending)  # whole lines: the last chunk is completed below
        received = bytearray()
        reader_error: list[BaseException] = []

        def read_all() -> None:
            try:
                while len(received) < total:
                    data = sock.recv(1 << 20)
                    if not data:
                        return
                    received.extend(data)
            except BaseException as exc:  # reported by the main thread
                reader_error.append(exc)

        reader = threading.Thread(target=read_all)
        reader.start()
        sock.sendall(pending)
        sent = total
        reader.join(TIMEOUT * 3)
        assert not reader.is_alive(), f"only {len(received)} of {total} bytes came back"
        assert not reader_error, reader_error
        assert len(received) == total
        assert received == line * (total // len(line))
        wait_until(
            lambda: st.call(lambda: server.counters.bytes_in) == sent, TIMEOUT, "all bytes read"
        )
        assert not paused()


# -- timeouts --------------------------------------------------------------------------------


def test_idle_timeout_closes_an_idle_channel(backend: str, clients: Callable[..., Client]) -> None:
    with echo_server(backend, idle_timeout=0.2) as (st, server):
        client = clients(("127.0.0.1", server.port))
        client.send(b"ping\n")
        client.expect(b"ping\n")
        assert client.recv_until_eof() == b""  # the server closed it (socket timeout: 20 s)
        wait_until(lambda: st.call(lambda: server.counters.active) == 0, TIMEOUT, "unregister")


def test_no_idle_timeout_when_disabled(backend: str, clients: Callable[..., Client]) -> None:
    with echo_server(backend, idle_timeout=0) as (st, server):
        client = clients(("127.0.0.1", server.port))
        client.send(b"ping\n")
        client.expect(b"ping\n")
        channel = st.call(lambda: next(iter(server.channels)))
        # Ask the channel directly, as the sweep would, a day later.
        st.call(lambda: channel.check_timeout(channel.last_activity + 86400))
        client.send(b"still\n")
        client.expect(b"still\n")


def test_channel_buffer_limits(backend: str, clients: Callable[..., Client]) -> None:
    with echo_server(backend, write_high_water=4096, write_low_water=1024) as (st, server):
        client = clients(("127.0.0.1", server.port))
        client.send(b"ping\n")
        client.expect(b"ping\n")

        def limits() -> tuple[int, int]:
            (ch,) = server.channels
            assert ch.transport is not None
            low, high = ch.transport.get_write_buffer_limits()
            return low, high

        assert st.call(limits) == (1024, 4096)
    with pytest.raises(ValueError, match="write_low_water"):
        Channel(None, write_high_water=10, write_low_water=20)
    with pytest.raises(ValueError, match="0 or more"):
        Channel(None, write_high_water=-1)


def test_set_terminator_validation() -> None:
    channel = EchoChannel(EchoServer())
    with pytest.raises(ValueError, match="terminator"):
        channel.set_terminator(b"")
    with pytest.raises(ValueError, match="terminator"):
        channel.set_terminator(-1)
    channel.set_terminator(5)
    assert channel.terminator == 5
