"""The data connection (RFC 959 §3.2, §3.3): a :class:`~medusa.core.channel.Channel` on
the same event loop as the control connection that either sends a producer (``RETR``,
listings: zero-copy ``sendfile`` for a plain ``FileProducer``) or hands what it receives to
an upload's sink (``STOR``, ``APPE``, ``STOU``), optionally throttled, optionally over TLS
(``PROT P``, RFC 4217 §9).

It reports to its owner (the control session) through :class:`DataOwner`: once connected,
and once the transfer ended (well or not).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from typing import Protocol

from medusa.core.channel import Channel
from medusa.core.log import error_logger
from medusa.core.producers import Producer
from medusa.ftp.hostport import canonical_host
from medusa.ftp.throttle import Throttle

__all__ = ["DataChannel", "DataOwner", "Sink"]

_WAITING = "no-transfer"
_THROTTLE = "throttle"


class Sink(Protocol):
    """Where received bytes go (an upload's file)."""

    def write(self, data: bytes) -> None:
        """Store ``data``; raise :class:`OSError` when it cannot be stored."""
        ...


class DataOwner(Protocol):
    """What a data connection reports to (the control session)."""

    def data_accepted(self, conn: socket.socket, client: tuple[str, int] | None) -> None:
        """A passive listener accepted ``conn`` (a blocking socket, from the right
        client: ``client`` is its address from a PROXY header, else None); the owner
        makes its :class:`DataChannel` (see :func:`medusa.ftp.passive.attach_socket`)
        or keeps the socket for a transfer that needs none."""
        ...

    def data_connected(self, channel: DataChannel) -> None:
        """The connection is established (and came from the right address)."""
        ...

    def data_finished(self, channel: DataChannel, error: str | None) -> None:
        """The transfer ended: ``error`` is ``None`` when every byte went through, else a
        short reason (the connection was lost, a write failed)."""
        ...

    def data_failed(self, reason: str) -> None:
        """A connection could not be made or secured (its TLS handshake failed)."""
        ...

    def data_tls(self) -> ssl.SSLContext | None:
        """The TLS context for a new data connection (``PROT P``), or None: the server side
        of the handshake runs before the channel's ``connection_made``."""
        ...

    def data_refused(self, peer: str, reason: str = "port theft") -> None:
        """A connection came from ``peer`` (text for the log: an address, or a client
        address and the proxy it came through) and was dropped: ``reason`` is
        ``"port theft"`` (not the expected address) or what was wrong with its PROXY
        header."""
        ...


class _EndMarker:
    """A producer queued after the data: pulled (and empty) once everything before it was
    handed to the transport."""

    __slots__ = ("_channel",)

    def __init__(self, channel: DataChannel) -> None:
        self._channel = channel

    def more(self) -> bytes:
        self._channel.sent_all = True
        return b""


class DataChannel(Channel):
    """One data connection.

    Args:
        owner: the session that gets the connection and its end.
        expected_host: the only client address accepted (the control connection's peer);
            a connection from any other address is closed at once (port theft, RFC 2577
            §5). ``None`` accepts any (an active connection the server made itself).

    Attributes:
        sent_all: True once every byte of the producer was handed to the transport.
        received: bytes received (uploads).
        finished: True once the owner was told the transfer ended.
        throttled_until: :func:`time.monotonic` time until which the transfer waits on
            the server's rate limit (not a stall of the client's); the latest such wait.
    """

    terminator = None

    def __init__(self, owner: DataOwner, expected_host: str | None = None) -> None:
        super().__init__(None, idle_timeout=0)
        self.owner = owner
        self.expected_host = expected_host
        self.sent_all = False
        self.received = 0
        self.finished = False
        self.sending = False
        self.throttled_until = 0.0
        self.sink: Sink | None = None
        self._early: list[bytes] = []
        self._throttle: Throttle | None = None
        self._pump_producer: Producer | None = None
        self._pump_waiting = False
        self._timer: asyncio.Handle | None = None

    # -- connection ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Check the peer's address (port theft), then report the connection. (With
        ``PROT P`` the transport is already TLS: the handshake ran before this call.)"""
        super().connection_made(transport)
        peer = self.peer
        host = canonical_host(str(peer[0])) if isinstance(peer, tuple) else ""
        if self.expected_host is not None and host != self.expected_host:
            self.finished = True
            self.abort()
            self.owner.data_refused(host)
            return
        # Nothing is read until an upload starts. uvloop starts reading right after
        # connection_made returns, so the pause is applied again on the next iteration.
        self.pause_reading(_WAITING)
        asyncio.get_running_loop().call_soon(self._keep_paused)
        self.owner.data_connected(self)

    def _keep_paused(self) -> None:
        transport = self.transport
        if self.sink is None and transport is not None and not transport.is_closing():
            transport.pause_reading()

    # -- sending ---------------------------------------------------------------------------

    def send(self, producer: Producer, throttle: Throttle | None = None) -> None:
        """Send ``producer``'s output, then close; the owner hears of the end.

        Args:
            producer: the data (a ``FileProducer`` goes out with ``sendfile`` when
                possible).
            throttle: limits the rate (then the data goes through bounded reads).
        """
        self.sending = True
        self.last_activity = time.monotonic()
        if throttle is None:
            self.push_with_producer(producer)
            self.push_with_producer(_EndMarker(self))
            self.close_when_done()
            return
        self._throttle = throttle
        self._pump_producer = producer
        buffer_size = getattr(producer, "buffer_size", None)
        if isinstance(buffer_size, int):
            with contextlib.suppress(AttributeError):
                producer.buffer_size = throttle.chunk  # type: ignore[attr-defined]
        self._pump()

    def _pump(self) -> None:
        """Move one piece of a throttled download, then wait as the throttle says."""
        self._timer = None
        producer = self._pump_producer
        if producer is None or self.transport is None or self.transport.is_closing():
            return
        if not self.writable:
            self._pump_waiting = True
            return
        try:
            data = producer.more()
        except OSError as exc:
            self._fail(f"read error: {exc.strerror or exc}")
            return
        if not data:
            self._pump_producer = None
            self.sent_all = True
            self.close_when_done()
            return
        self.push(data)
        assert self._throttle is not None
        now = time.monotonic()
        delay = self._throttle.delay(len(data), now)
        if delay:
            self.throttled_until = now + delay
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(delay, self._pump) if delay else loop.call_soon(self._pump)

    def resume_writing(self) -> None:
        """Continue a throttled download that waited for the socket to drain."""
        super().resume_writing()
        if self._pump_waiting:
            self._pump_waiting = False
            self._pump()

    # -- receiving -------------------------------------------------------------------------

    def receive(self, sink: Sink, throttle: Throttle | None = None) -> None:
        """Start an upload: bytes received go to ``sink`` until the client closes.

        Args:
            sink: where the bytes go.
            throttle: limits the rate (reading pauses while over it).
        """
        self.sink = sink
        self._throttle = throttle
        self.last_activity = time.monotonic()
        early, self._early = self._early, []
        for data in early:
            self._store(data)
        self.resume_reading(_WAITING)

    def collect_incoming_data(self, data: bytes) -> None:
        """Store received bytes (held back until an upload starts)."""
        if self.sink is None:
            self._early.append(data)
            self._keep_paused()
            return
        self._store(data)

    def _store(self, data: bytes) -> None:
        if self.finished or self.sink is None:
            return
        try:
            self.sink.write(data)
        except OSError as exc:
            self._fail(f"write error: {exc.strerror or exc}")
            return
        self.received += len(data)
        throttle = self._throttle
        if throttle is not None:
            now = time.monotonic()
            delay = throttle.delay(len(data), now)
            if delay:
                self.throttled_until = now + delay
                self.pause_reading(_THROTTLE)
                loop = asyncio.get_running_loop()
                self._timer = loop.call_later(delay, self.resume_reading, _THROTTLE)

    def eof_received(self) -> bool | None:
        """The client finished sending: the upload is complete."""
        if self.sink is not None and not self.finished:
            if self._early:
                self.receive(self.sink, self._throttle)
            self._finish(None)
        self.close()
        return None

    # -- the end ---------------------------------------------------------------------------

    def _fail(self, reason: str) -> None:
        self._finish(reason)
        self.abort()

    def _finish(self, error: str | None) -> None:
        if self.finished:
            return
        self.finished = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        try:
            self.owner.data_finished(self, error)
        except Exception:
            error_logger.exception("ending a transfer failed")

    def cancel(self) -> None:
        """Drop the connection without telling the owner (``ABOR``, the session ends)."""
        self.finished = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        """Report the end of a transfer in progress: complete when every byte was sent (or
        an upload ended cleanly), failed otherwise."""
        super().connection_lost(exc)
        if self.finished:
            return
        if self.sending:
            self._finish(None if self.sent_all and exc is None else lost_reason(exc))
        elif self.sink is not None:
            self._finish(None if exc is None else lost_reason(exc))
        else:
            self._finish("data connection closed before the transfer")


def lost_reason(exc: BaseException | None) -> str:
    """The reason a transfer failed when its connection was lost with ``exc`` (None: the
    client closed it early), for the 426 reply and the session log."""
    return f"connection lost ({exc})" if exc is not None else "connection closed early"
