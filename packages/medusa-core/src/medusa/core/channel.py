"""The channel: the asynchat model (read up to a terminator, write through producers) on
:class:`asyncio.Protocol` callbacks.

Input: :meth:`Channel.data_received` does the bookkeeping of every read (activity time,
byte counts) and hands the bytes to :meth:`Channel.handle_data`, which splits them at
:attr:`Channel.terminator` (:func:`medusa.core.terminator.split_at_terminator`, sans-IO) and
hands them to :meth:`Channel.collect_incoming_data`; each time the terminator is reached,
:meth:`Channel.found_terminator` is called. The terminator may be

* ``bytes`` — a delimiter such as ``b"\\r\\n"`` (not passed to ``collect_incoming_data``);
* ``int`` — a byte count; it is decremented as bytes arrive and reaches 0 when found
  (as in asynchat, a count left at 0 after ``found_terminator`` acts like ``None``);
* ``None`` — no terminator: every byte goes to ``collect_incoming_data``.

A protocol with its own parser overrides :meth:`Channel.handle_data` instead.

Output: :meth:`Channel.push` and :meth:`Channel.push_with_producer` append to a fifo that is
drained only while the transport accepts more (asyncio's ``pause_writing``/``resume_writing``
protocol flow control). While the transport's outgoing buffer is above its high-water mark the
channel also stops reading, so a client that sends without reading cannot grow the server's
memory. A :class:`~medusa.core.producers.FileProducer` at the head of the fifo is sent with
``os.sendfile`` when the transport is a plain socket (zero-copy on both the standard loop and
uvloop, which has no ``loop.sendfile``: :class:`~medusa.core.zerocopy.ZeroCopySender`, made
at the connection's first file); a file that ``sendfile`` cannot send (no descriptor, not a
regular file) goes through its bounded ``more()`` reads instead.

The channel sees its server through :class:`~medusa.core.channelserver.ChannelServer`.
"""

from __future__ import annotations

import asyncio
import time
from time import monotonic
from typing import TYPE_CHECKING, Any, Literal, cast

from medusa.core import zerocopy
from medusa.core.flowcontrol import NO_HOLDS, FlowControl
from medusa.core.log import error_logger
from medusa.core.producers import FileProducer, Producer
from medusa.core.proxyprotocol import ProxyHeader
from medusa.core.proxyreader import ProxyHeaderReader
from medusa.core.terminator import find_prefix_at_end, split_at_terminator
from medusa.core.writelimits import REFILL_BYTES, REFILL_CALLS, REFILL_SECONDS, check_water_marks

if TYPE_CHECKING:
    from medusa.core.channelserver import ChannelServer

__all__ = ["Channel", "find_prefix_at_end"]

_UNSET: Any = object()

_CLOSE = object()
"""Fifo marker queued by :meth:`Channel.close_when_done`."""


class Channel(FlowControl):
    """One connection, in the asynchat model.

    Subclasses set :attr:`terminator` and override :meth:`collect_incoming_data` and
    :meth:`found_terminator`; a protocol with its own parser overrides
    :meth:`handle_data` instead (or sets ``terminator = None`` and takes every byte in
    ``collect_incoming_data``).

    Args:
        server: the server that accepted the connection (a
            :class:`~medusa.core.server.Server`, seen through the narrow
            :class:`~medusa.core.channelserver.ChannelServer`), or ``None`` for a channel
            used on its own (a client, a test). The server supplies counters, the idle
            sweep and the default buffer sizes.
        write_high_water: bytes of outgoing backlog above which the transport pauses the
            channel (stops producers and reading); ``None`` takes the server's setting
            (asyncio's default is 64 KiB, or four times ``write_low_water``).
        write_low_water: bytes below which writing and reading resume; ``None`` takes the
            server's setting (or a quarter of ``write_high_water``).
        max_incoming: bytes that :meth:`collect_incoming_data`'s default buffer may hold
            before :meth:`incoming_overflow` is called (a line without its terminator).
        idle_timeout: seconds without any read or write after which the server's sweep
            calls :meth:`handle_timeout`; ``None`` takes the server's setting, ``0``
            disables it. Output queued while the client does not read is not activity.

    Attributes:
        transport: the asyncio transport, once connected.
        connected_at: :func:`time.monotonic` time of the connection, seconds.
        last_activity: :func:`time.monotonic` time of the last read or write, seconds.
        bytes_in: bytes received on this connection.
        bytes_out: bytes handed to the transport or sent with ``sendfile``.

    Raises:
        ValueError: for a negative buffer size, or ``write_low_water`` above
            ``write_high_water``.
    """

    terminator: bytes | int | None = b"\r\n"

    proxy_header: ProxyHeader | None = None
    """The PROXY protocol header the connection opened with (set on the instance only
    for a connection from a trusted proxy, see
    :class:`~medusa.core.proxyreader.ProxyHeaderReader`), else None."""

    __slots__ = (
        "__dict__",
        "_closing",
        "_fifo",
        "_inbuf",
        "_incoming",
        "_incoming_size",
        "_peer",
        "_refill_scheduled",
        "_zerocopy",
        "bytes_in",
        "bytes_out",
        "connected_at",
        "idle_timeout",
        "max_incoming",
        "server",
        "transport",
        "write_high_water",
        "write_low_water",
    )

    def __init__(
        self,
        server: ChannelServer | None = None,
        *,
        write_high_water: int | None = None,
        write_low_water: int | None = None,
        max_incoming: int = 65536,
        idle_timeout: float | None = None,
    ) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self._peer: Any = _UNSET
        if write_high_water is None and server is not None:
            write_high_water = server.write_high_water
        if write_low_water is None and server is not None:
            write_low_water = server.write_low_water
        check_water_marks(write_high_water, write_low_water)
        self.write_high_water = write_high_water
        self.write_low_water = write_low_water
        if idle_timeout is None and server is not None:
            idle_timeout = server.idle_timeout
        self.idle_timeout = idle_timeout or 0.0
        self.max_incoming = max_incoming
        self._inbuf = b""
        # Per-connection memory matters (10,000 idle connections): empty lists and a
        # shared empty frozenset cost little; a deque or a set would cost ~0.2-0.8 KB each.
        self._incoming: list[bytes] | None = None
        self._incoming_size = 0
        # The output queue exists only while something waits in it (most responses go
        # straight to the transport): an idle connection holds no list.
        self._fifo: list[Any] | None = None
        self._write_paused = False
        self._read_holds: frozenset[str] = NO_HOLDS
        self._draining = False
        self._resuming = False
        self._refill_scheduled = False
        self._closing = False
        # None until the first file is sent, then its sender or False (no sendfile on
        # this connection): an idle connection that never sent a file holds no sender.
        self._zerocopy: zerocopy.ZeroCopySender | Literal[False] | None = None
        self.connected_at = 0.0
        self.bytes_in = 0
        self.bytes_out = 0
        self.last_activity = 0.0

    @property
    def peer(self) -> Any:
        """The client's address as the transport reports it (``(host, port)`` for TCP,
        ``""`` or a path for Unix sockets, ``None`` before connecting). Read from the
        transport on first use and kept: an idle connection that nobody logs does not
        hold a copy (uvloop builds a new tuple on every call)."""
        peer = self._peer
        if peer is _UNSET:
            transport = self.transport
            if transport is None:
                return None
            try:
                peer = transport.get_extra_info("peername")
            except Exception:
                peer = None
            self._peer = peer
        return peer

    @peer.setter
    def peer(self, value: Any) -> None:
        self._peer = value

    @property
    def closing(self) -> bool:
        """True once the channel was closed or asked to close (nothing more is read)."""
        return self._closing

    # -- asyncio.Protocol callbacks -------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Record the transport, apply buffer sizes, register with the server."""
        # uvloop's transports implement asyncio.Transport without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        self.connected_at = self.last_activity = time.monotonic()
        if self.write_high_water is not None or self.write_low_water is not None:
            transport.set_write_buffer_limits(self.write_high_water, self.write_low_water)
        server = self.server
        if server is not None:
            if not server.channel_opened(self):
                return
            if server.proxy_trusted is not None and ProxyHeaderReader.start(self, transport):
                return  # handle_connect() once the PROXY header is read
        self.handle_connect()

    def data_received(self, data: bytes) -> None:
        """Count the bytes and the activity, then hand them to :meth:`handle_data`
        (nothing is handed on once the channel is closing)."""
        self.last_activity = time.monotonic()
        size = len(data)
        self.bytes_in += size
        server = self.server
        if server is not None:
            server.counters.bytes_in += size
        if self._closing:
            return
        self.handle_data(data)

    def handle_data(self, data: bytes) -> None:
        """Take the bytes of one read (never empty), counted already. The default splits
        them at :attr:`terminator` (asynchat's algorithm,
        :func:`~medusa.core.terminator.split_at_terminator`), keeping the bytes that may
        begin a terminator for the next read; a protocol with its own parser overrides
        it."""
        held = self._inbuf
        if held:
            data = held + data
            self._inbuf = b""
        held = split_at_terminator(self, data)
        if held:
            self._inbuf = held

    def input_closed(self) -> bool:
        """True once received bytes are no longer dispatched: the channel closed or its
        transport is closing (checked after each ``found_terminator``)."""
        transport = self.transport
        return self._closing or transport is None or transport.is_closing()

    def eof_received(self) -> bool | None:
        """The client shut down its sending side; by default, finish writing and close.

        Returns:
            True on a plain transport (keep it half-open until the output is written);
            None on TLS, whose transport closes itself after this call in any case
            (asyncio logs a warning when True is returned there).
        """
        self.close_when_done()
        return self.keep_half_open()

    def keep_half_open(self) -> bool | None:
        """The value :meth:`eof_received` returns to keep writing after the client's
        end of file: True on a plain transport; None on a TLS transport, which cannot be
        half-open (asyncio closes it after ``eof_received`` and warns about True)."""
        transport = self.transport
        if transport is not None and transport.get_extra_info("sslcontext") is not None:
            return None
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        """Release queued producers (closing open files), unregister, call
        :meth:`handle_close`."""
        sender = self._zerocopy
        if sender:
            sender.close()  # a file waiting for room in the socket, the cork's socket
        self._release_fifo()
        self._closing = True
        if self.server is not None:
            self.server.channel_closed(self)
        self.handle_close()

    # -- the asynchat interface ------------------------------------------------------------

    def handle_connect(self) -> None:
        """Called once the channel is connected and accepted; override to greet."""

    def handle_close(self) -> None:
        """Called once after the connection is lost; override to release resources."""

    def check_timeout(self, now: float) -> None:
        """Called by the server's sweep with the current :func:`time.monotonic` time;
        calls :meth:`handle_timeout` after ``idle_timeout`` seconds without activity.
        Protocols override it to add their own deadlines (an HTTP header timeout)."""
        if self.idle_timeout and now - self.last_activity > self.idle_timeout:
            self.handle_timeout()

    def handle_timeout(self) -> None:
        """Called by the server's sweep after ``idle_timeout`` seconds without activity.
        The default closes the connection."""
        self.close()

    def collect_incoming_data(self, data: bytes) -> None:
        """Receive bytes that precede the terminator. The default keeps them for
        :meth:`get_incoming` and calls :meth:`incoming_overflow` past ``max_incoming``."""
        if self._incoming is None:
            self._incoming = [data]
        else:
            self._incoming.append(data)
        self._incoming_size += len(data)
        if self._incoming_size > self.max_incoming:
            self._incoming = None
            self._incoming_size = 0
            self.incoming_overflow()

    def get_incoming(self) -> bytes:
        """Return and clear the bytes collected by the default
        :meth:`collect_incoming_data`."""
        data = b"".join(self._incoming) if self._incoming is not None else b""
        self._incoming = None
        self._incoming_size = 0
        return data

    def incoming_overflow(self) -> None:
        """More than ``max_incoming`` bytes arrived without a terminator. The default logs
        and closes; protocols override it to send an error reply first."""
        error_logger.warning("%r: input line too long, closing", self.peer)
        if self.server is not None:
            self.server.counters.errors += 1
        self.close()

    def found_terminator(self) -> None:
        """Called when the terminator is reached; override it."""
        raise NotImplementedError

    def set_terminator(self, terminator: bytes | int | None) -> None:
        """Set :attr:`terminator` (asynchat's spelling).

        Raises:
            ValueError: for an empty bytes terminator or a negative count.
        """
        if terminator == b"" or (isinstance(terminator, int) and terminator < 0):
            raise ValueError(f"invalid terminator {terminator!r}")
        self.terminator = terminator

    def push(self, data: bytes) -> None:
        """Queue ``data`` for sending, after anything already queued.

        Args:
            data: the bytes (a bytearray or memoryview is copied when it must wait, so
                the caller may reuse it).
        """
        if not data or self._closing:
            return
        if self._fifo or self._write_paused:
            self._output_queue().append(data if type(data) is bytes else bytes(data))
            return
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        self.last_activity = monotonic()
        size = len(data)
        self.bytes_out += size
        server = self.server
        if server is not None:
            server.counters.bytes_out += size

    def push_with_producer(self, producer: Producer) -> None:
        """Queue a producer; it is pulled only while the transport can take more."""
        fifo = self._output_queue()
        fifo.append(producer)
        if len(fifo) == 1:
            self._refill()

    def close_when_done(self) -> None:
        """Close the connection once everything queued before this call has been sent."""
        if self._closing:
            return
        fifo = self._output_queue()
        fifo.append(_CLOSE)
        if len(fifo) == 1:
            self._refill()

    def close(self) -> None:
        """Close now: queued output not yet handed to the transport is dropped (the
        transport still flushes what it holds). Nothing pushed afterwards is sent."""
        self._closing = True
        self._close_transport(abort=False)

    def abort(self) -> None:
        """Close at once, dropping all buffered output (a reset)."""
        self._closing = True
        self._close_transport(abort=True)

    def _close_transport(self, *, abort: bool) -> None:
        transport = self.transport
        if transport is None:
            return
        close = transport.abort if abort else transport.close
        if self._resuming:
            # The standard loop's _write_ready calls resume_writing and then, when its
            # buffer is empty and the transport closing, connection_lost itself; a close
            # from inside resume_writing would make connection_lost run twice (CPython
            # 3.11). Close from the next loop iteration instead.
            asyncio.get_running_loop().call_soon(close)
        else:
            close()

    @property
    def writable(self) -> bool:
        """True when the transport accepts more output now (not paused by flow control)."""
        return not self._write_paused

    @property
    def pending(self) -> int:
        """Number of items (data, producers, close marker) waiting in the fifo."""
        fifo = self._fifo
        return len(fifo) if fifo is not None else 0

    def _output_queue(self) -> list[Any]:
        """The output queue, made when the first item must wait in it."""
        fifo = self._fifo
        if fifo is None:
            fifo = self._fifo = []
        return fifo

    # -- output machinery ------------------------------------------------------------------

    def _refill(self) -> None:
        """Drain the fifo into the transport while it accepts more. After
        :data:`REFILL_CALLS` calls of ``more()``, :data:`REFILL_BYTES` bytes from them or
        :data:`REFILL_SECONDS` spent in them, the rest is left to a callback on the next
        loop iteration, so that other connections are served meanwhile (the fifo keeps the
        order)."""
        fifo = self._fifo
        transport = self.transport
        if transport is None:
            return
        counters = self.server.counters if self.server is not None else None
        if fifo and not self._write_paused:
            self.last_activity = time.monotonic()
        calls = REFILL_CALLS
        budget = REFILL_BYTES
        deadline = 0.0  # set at the first more() call
        while fifo and not self._write_paused:
            if self._closing or transport.is_closing():
                return
            item = fifo[0]
            if item is _CLOSE:
                self.close()
                self._release_fifo()  # anything queued after the close is never sent
                return
            if type(item) is bytes:
                fifo.pop(0)
                transport.write(item)
                self.bytes_out += len(item)
                if counters is not None:
                    counters.bytes_out += len(item)
                continue
            if type(item) is FileProducer and self._zerocopy is not False:
                done = self._send_file(item, transport)
                if done is False:
                    return
                if done:
                    fifo.pop(0)
                    continue
            if calls <= 0 or budget <= 0 or (deadline and time.monotonic() > deadline):
                if not self._refill_scheduled:
                    self._refill_scheduled = True
                    asyncio.get_running_loop().call_soon(self._scheduled_refill)
                return
            calls -= 1
            if not deadline:
                deadline = time.monotonic() + REFILL_SECONDS
            try:
                data = item.more()
            except Exception:
                error_logger.exception("producer %r failed; closing %r", item, self.peer)
                if counters is not None:
                    counters.errors += 1
                self.abort()
                return
            if data:
                budget -= len(data)
                transport.write(data)
                self.bytes_out += len(data)
                if counters is not None:
                    counters.bytes_out += len(data)
            else:
                fifo.pop(0)
                if isinstance(item, FileProducer) and item.truncated:
                    # Fewer bytes than promised (a Content-Length): the peer must not
                    # take what follows for the rest of this file.
                    error_logger.warning("file shrank while being sent to %r", self.peer)
                    if counters is not None:
                        counters.errors += 1
                    self.abort()
                    return
        if not fifo and self._fifo is fifo:
            self._fifo = None  # all sent: an idle connection holds no queue

    def _send_file(self, producer: FileProducer, transport: asyncio.Transport) -> bool | None:
        """Send the file at the head of the fifo with ``sendfile``
        (:class:`~medusa.core.zerocopy.ZeroCopySender`) and act on the outcome.

        Returns:
            True when it is done with (sent, or the connection aborted); False when
            output waits (for room in the socket, a drain, the next loop iteration);
            None when ``sendfile`` cannot send it: the caller reads it with ``more()``.
        """
        sender = self._zerocopy or self._file_sender()
        if sender is None:
            return None
        offset = producer.offset
        try:
            outcome = sender.send(producer, transport, self._refill)
        except OSError as exc:
            error_logger.warning("sendfile to %r failed: %s", self.peer, exc)
            self.abort()
            return True
        sent = producer.offset - offset
        counters = self.server.counters if self.server is not None else None
        if sent:
            self.bytes_out += sent
            if counters is not None:
                counters.bytes_out += sent
        if outcome == zerocopy.DONE:
            self.last_activity = time.monotonic()
            return True
        if outcome == zerocopy.UNSUPPORTED:
            # Read it with more(), uncorked (no sendfile will end the cork: its last
            # partial segment would wait for the kernel's 200 ms timer).
            if sender.corked:
                sender.set_cork(transport, False)
            return None
        if outcome == zerocopy.DRAIN:
            self._wait_for_drain(transport)
        elif outcome == zerocopy.YIELD:
            # Let other channels run; continue from the next loop iteration.
            if not self._refill_scheduled:
                self._refill_scheduled = True
                asyncio.get_running_loop().call_soon(self._scheduled_refill)
        elif outcome == zerocopy.BROKEN:
            self.abort()
            return True
        elif outcome == zerocopy.SHRANK:
            # The file is shorter than promised: the response cannot be completed.
            error_logger.warning("file shrank while being sent to %r", self.peer)
            if counters is not None:
                counters.errors += 1
            self.abort()
            return True
        return False  # WAITING: the sender calls _refill once the socket has room

    def _file_sender(self) -> zerocopy.ZeroCopySender | None:
        """The connection's zero-copy sender, made for its first file; None (and never
        asked again) when ``sendfile`` is not for this connection: no ``os.sendfile``, the
        server's ``sendfile`` option off, or a TLS transport (asked now, not at connect:
        a connection may turn to TLS, FTP's ``AUTH TLS``)."""
        sender = self._zerocopy
        if sender is None:
            server = self.server
            transport = self.transport
            if (
                zerocopy.HAVE_SENDFILE
                and (server is None or server.sendfile)
                and transport is not None
                and transport.get_extra_info("sslcontext") is None
            ):
                sender = self._zerocopy = zerocopy.ZeroCopySender()
            else:
                sender = self._zerocopy = False
        return sender or None

    def _scheduled_refill(self) -> None:
        """Continue :meth:`_refill` from the loop after it yielded its turn."""
        self._refill_scheduled = False
        self._refill()

    def _release_fifo(self) -> None:
        """Empty the fifo, closing the producers in it (open files)."""
        fifo = self._fifo
        while fifo:
            close = getattr(fifo.pop(0), "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    error_logger.exception("closing a producer failed")

    def cork(self) -> None:
        """Hold back partial TCP segments until the next file sent with ``sendfile`` is
        complete (Linux ``TCP_CORK``, nginx's ``tcp_nopush``): a response's headers then
        leave in the same segments as the start of its file instead of a packet of their
        own. Does nothing on other sockets and platforms, nor on a connection that
        cannot use ``sendfile``."""
        transport = self.transport
        if self._zerocopy is False or transport is None:
            return
        sender = self._zerocopy or self._file_sender()
        if sender is not None and sender.usable and not sender.corked:
            sender.set_cork(transport, True)
