"""The lingering close after an error response (RFC 9112 §9.6): send FIN once the response
is flushed, keep reading and discarding what the client still sends, and close when it
closes or after :data:`LINGER_SECONDS`. Closing at once with unread input would make the
kernel send a reset, which can destroy the error response before the client reads it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from medusa.core.channel import Channel

__all__ = ["LINGER_SECONDS", "LingeringClose", "linger"]

LINGER_SECONDS = 2.0
"""How long input is read and discarded after an error response before closing."""


def linger(channel: Channel, reading: Callable[[], None]) -> None:
    """Half-close ``channel`` now and close it after :data:`LINGER_SECONDS` (at once when
    its transport cannot half-close, or the client is gone already); ``reading`` is called
    once the half-close is made, for the channel to read (and discard) again."""
    transport = channel.transport
    if transport is None or transport.is_closing():
        return
    if not transport.can_write_eof():
        channel.close_when_done()
        return
    try:
        transport.write_eof()
    except OSError:  # the client is gone already (ENOTCONN): nothing to linger for
        channel.close()
        return
    reading()
    asyncio.get_running_loop().call_later(LINGER_SECONDS, channel.close)


class LingeringClose:
    """A producer, queued after an error response, that starts :func:`linger` once
    everything before it was handed to the transport."""

    __slots__ = ("channel", "reading")

    def __init__(self, channel: Channel, reading: Callable[[], None]) -> None:
        self.channel = channel
        self.reading = reading

    def more(self) -> bytes:
        """Start the lingering close; nothing more to send."""
        linger(self.channel, self.reading)
        return b""
