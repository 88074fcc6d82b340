"""The PROXY protocol at the start of a connection (HAProxy's proxy-protocol.txt): the
stand-in protocol that reads the header of a trusted proxy before a
:class:`~medusa.core.channel.Channel` sees the connection, or refuses a header from anyone
else. The parsing itself is :mod:`medusa.core.proxyprotocol` (sans-IO)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from medusa.core.log import error_logger, peer_text
from medusa.core.proxyprotocol import (
    V2_SIGNATURE,
    ProxyProtocolError,
    looks_like_proxy_header,
    parse_proxy_header,
)

if TYPE_CHECKING:
    from medusa.core.channel import Channel

__all__ = ["ProxyHeaderReader"]


class ProxyHeaderReader(asyncio.Protocol):
    """The PROXY protocol at the start of a connection, for a server with
    ``proxy_protocol`` on (:attr:`~medusa.core.server.Server.proxy_trusted` set).

    It stands in for the channel as the transport's protocol until the question of the
    header is settled, then hands the transport back (``transport.set_protocol``), so that
    the channel's own ``data_received`` (HTTP's included) costs nothing more afterwards and
    servers without ``proxy_protocol`` never meet this class.

    * From a trusted peer (its address in ``proxy_trusted``) a header is required
      (HAProxy's proxy-protocol.txt §2.1, §2.2): the channel's ``handle_connect`` waits
      for it; then :attr:`Channel.peer` becomes the header's source (a LOCAL header, an
      ``UNKNOWN`` or AF_UNSPEC/AF_UNIX one keeps the real peer, as the specification asks
      for health checks), :attr:`Channel.proxy_header` is set, ``handle_connect`` is called
      and the bytes that followed the header go to the channel. A malformed header, an end
      of file before it is complete, or no complete header within
      :attr:`~medusa.core.server.Server.proxy_timeout` seconds closes the connection with
      one warning line. At most :data:`~medusa.core.proxyprotocol.MAX_V1_LENGTH` bytes
      (version 1) or 16 + :data:`~medusa.core.proxyprotocol.MAX_V2_LENGTH` bytes (version 2)
      are held.
    * From any other peer the connection is served at once (``handle_connect`` is not
      delayed: an FTP greeting goes out), but its first bytes are looked at: a PROXY
      signature (``"PROXY "`` or the 12-byte version 2 signature) closes it with one
      warning line, as nobody but a trusted proxy may claim another client's address.

    Args:
        channel: the channel that accepted the connection (registered with its server).
        transport: the connection's transport.
        trusted: whether the peer is a trusted proxy.
    """

    __slots__ = ("_buffer", "_channel", "_done", "_timer", "_transport", "_trusted")

    def __init__(self, channel: Channel, transport: asyncio.Transport, *, trusted: bool) -> None:
        self._channel = channel
        self._transport = transport
        self._trusted = trusted
        self._buffer = b""
        self._done = False
        self._timer: asyncio.TimerHandle | None = None

    @classmethod
    def start(cls, channel: Channel, transport: asyncio.Transport) -> bool:
        """Put a reader in front of ``channel`` (its server has ``proxy_protocol`` on).

        Returns:
            True when the peer is trusted and ``handle_connect`` must wait for the header
            (or the connection is already gone: the transport reports no peer address, and
            the channel is closed without a log line); False when the channel is to be
            served now (a peer that is not trusted, whose first bytes are still checked).
        """
        server = channel.server
        assert server is not None
        assert server.proxy_trusted is not None
        peer = channel.peer
        if peer is None:
            # No address: the connection is already gone (a health check that resets at
            # once; uvloop then reports no peer). Nothing to serve, nothing to log.
            channel.close()
            return True
        trusted = type(peer) is tuple and peer[0] in server.proxy_trusted
        reader = cls(channel, transport, trusted=trusted)
        transport.set_protocol(reader)
        if trusted:
            loop = asyncio.get_running_loop()
            reader._timer = loop.call_later(server.proxy_timeout, reader._timed_out)
        return trusted

    def data_received(self, data: bytes) -> None:
        """Take bytes until the header is read (or refused), then hand over."""
        if self._done:
            return
        channel = self._channel
        channel.last_activity = time.monotonic()
        buffer = self._buffer + data if self._buffer else data
        if not self._trusted:
            if looks_like_proxy_header(buffer):
                needed = len(V2_SIGNATURE) if buffer[:1] == b"\r" else 6
                if len(buffer) >= needed:
                    self._buffer = buffer
                    self._refuse("PROXY header from a peer not in proxy_trusted")
                else:
                    self._buffer = buffer
                return
            self._hand_over()
            channel.data_received(buffer)
            return
        try:
            parsed = parse_proxy_header(buffer)
        except ProxyProtocolError as exc:
            self._buffer = buffer
            self._refuse(f"bad PROXY header ({exc})")
            return
        if parsed is None:
            self._buffer = buffer
            return
        header, used = parsed
        self._count(used)
        self._hand_over()
        channel.proxy_header = header
        if header.source is not None:
            channel.peer = header.source
        channel.handle_connect()
        rest = buffer[used:]
        if rest and not channel.closing:
            channel.data_received(rest)

    def eof_received(self) -> bool | None:
        """End of file before the question was settled: a truncated header closes the
        connection (logged); bytes that only began like a signature go to the channel."""
        if self._done:
            return None
        if self._trusted:
            got = len(self._buffer)
            self._refuse(
                f"end of file after {got} bytes of a PROXY header"
                if got
                else "end of file before a PROXY header"
            )
            return None
        self._hand_over()
        channel = self._channel
        if self._buffer:
            channel.data_received(self._buffer)
        return channel.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection ended while waiting (a reset: an end of file is
        :meth:`eof_received`'s): a trusted peer's part of a header is logged, one line;
        the channel is told as usual."""
        self._cancel_timer()
        if not self._done and self._trusted and self._buffer:
            self._log(f"connection lost after {len(self._buffer)} bytes of a PROXY header")
        self._done = True
        self._channel.connection_lost(exc)

    def pause_writing(self) -> None:
        """Flow control goes to the channel."""
        self._channel.pause_writing()

    def resume_writing(self) -> None:
        """Flow control goes to the channel."""
        self._channel.resume_writing()

    def _hand_over(self) -> None:
        self._done = True
        self._buffer = b""
        self._cancel_timer()
        self._transport.set_protocol(self._channel)

    def _count(self, size: int) -> None:
        channel = self._channel
        channel.bytes_in += size
        if channel.server is not None:
            channel.server.counters.bytes_in += size

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _timed_out(self) -> None:
        self._timer = None
        if not self._done:
            server = self._channel.server
            timeout = server.proxy_timeout if server is not None else 0
            self._refuse(f"no complete PROXY header within {timeout:g} s")

    def _refuse(self, reason: str) -> None:
        """Close the connection and log one line (no traceback)."""
        self._count(len(self._buffer))
        self._done = True
        self._buffer = b""
        self._cancel_timer()
        self._log(reason)
        self._channel.close()

    def _log(self, reason: str) -> None:
        """One warning line about this connection (no traceback), counted as an error."""
        channel = self._channel
        server = channel.server
        if server is not None:
            server.counters.errors += 1
            error_logger.warning(
                "%s on %s: %s from %s: closed",
                server.name,
                server.address,
                reason,
                peer_text(channel.peer),
            )
