"""Flow control of a channel, both ways: reading paused for named reasons, and writing
paused while the transport's backlog is above its high-water mark (asyncio's
``pause_writing``/``resume_writing`` protocol callbacks), which also pauses reading, so a
client that sends without reading cannot grow the server's memory."""

from __future__ import annotations

import asyncio
import time

__all__ = ["NO_HOLDS", "WRITE_BACKLOG", "FlowControl"]

NO_HOLDS: frozenset[str] = frozenset()
"""No reason to pause reading (one shared empty set: per-connection memory matters)."""

WRITE_BACKLOG = "write-backlog"
"""The reason flow control gives :meth:`FlowControl.pause_reading`."""


class FlowControl(asyncio.Protocol):
    """The flow-control half of :class:`~medusa.core.channel.Channel` (its base), which
    holds the state: the transport, the read holds, whether writing is paused or waits for
    a drain, and the water marks; it pulls its producers again in ``_refill``."""

    __slots__ = ("_draining", "_read_holds", "_resuming", "_write_paused", "last_activity")

    transport: asyncio.Transport | None
    write_high_water: int | None
    write_low_water: int | None
    last_activity: float
    """:func:`time.monotonic` time of the last read or write, seconds."""
    _read_holds: frozenset[str]
    _write_paused: bool
    _draining: bool
    _resuming: bool

    def _refill(self) -> None:
        """Pull the output queue into the transport (the channel's)."""
        raise NotImplementedError

    def pause_writing(self) -> None:
        """The transport's backlog is above the high-water mark: stop pulling producers
        and stop reading (flow control both ways)."""
        self._write_paused = True
        self.pause_reading(WRITE_BACKLOG)

    def resume_writing(self) -> None:
        """The backlog drained below the low-water mark: read again, pull producers."""
        self._write_paused = False
        self.last_activity = time.monotonic()
        transport = self.transport
        if transport is None:
            return
        if self._draining:
            self._draining = False
            self._restore_limits(transport)
        self._resuming = True
        try:
            self.resume_reading(WRITE_BACKLOG)
            self._refill()
        finally:
            self._resuming = False

    # -- reading control -------------------------------------------------------------------

    def pause_reading(self, reason: str = "user") -> None:
        """Stop reading from the transport until :meth:`resume_reading` was called with
        every reason given here. Flow control uses the reason ``"write-backlog"``;
        protocols use their own (``"pipeline"``), so one never resumes what another
        paused. Bytes already received in the current read are still dispatched.

        Args:
            reason: a short name for why reading stops.
        """
        holds = self._read_holds
        if not holds:
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.pause_reading()
        self._read_holds = holds | {reason}

    def resume_reading(self, reason: str = "user") -> None:
        """Withdraw one reason given to :meth:`pause_reading`; reading resumes once none
        is left. A reason not held is ignored.

        Args:
            reason: the name given to :meth:`pause_reading`.
        """
        holds = self._read_holds
        if reason not in holds:
            return
        holds = self._read_holds = holds - {reason}
        if not holds:
            transport = self.transport
            if transport is not None and not transport.is_closing():
                transport.resume_reading()

    @property
    def reading_paused(self) -> bool:
        """True while reading is paused (by flow control or :meth:`pause_reading`)."""
        return bool(self._read_holds)

    def _wait_for_drain(self, transport: asyncio.Transport) -> None:
        """Ask the transport to call :meth:`resume_writing` once its buffer is empty."""
        self._draining = True
        transport.set_write_buffer_limits(high=0, low=0)
        if transport.get_write_buffer_size() and not self._write_paused:
            self.pause_writing()

    def _restore_limits(self, transport: asyncio.Transport) -> None:
        """Put back the channel's own write buffer limits after a drain wait."""
        transport.set_write_buffer_limits(self.write_high_water, self.write_low_water)
