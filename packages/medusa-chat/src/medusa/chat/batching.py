"""Write coalescing: the lines queued for one connection during one event-loop iteration
leave in a single write (one system call, usually one TCP segment) instead of one each.

A channel message to 500 members is 500 writes however it is done; when several messages
arrive in the same iteration (the common case under load), each member still gets one
write for all of them. The flush runs from ``loop.call_soon`` at the end of the iteration,
so no line waits longer than the iteration that produced it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

__all__ = ["BatchedWriter", "WriteBatcher"]


class BatchedWriter(Protocol):
    """A connection whose queued output :class:`WriteBatcher` flushes."""

    def flush_output(self) -> None:
        """Write what was queued since the last flush."""


class WriteBatcher:
    """The connections with output queued in this iteration (one per server).

    Args:
        before_flush: called at the start of each flush, before any connection writes (the
            network seals the channels' shared lines: :mod:`medusa.chat.fanout`), or None.
    """

    __slots__ = ("_before_flush", "_dirty")

    def __init__(self, before_flush: Callable[[], None] | None = None) -> None:
        self._dirty: list[BatchedWriter] = []
        self._before_flush = before_flush

    def add(self, writer: BatchedWriter) -> None:
        """Flush ``writer`` at the end of this loop iteration (call once per iteration)."""
        if not self._dirty:
            asyncio.get_running_loop().call_soon(self.flush)
        self._dirty.append(writer)

    def flush(self) -> None:
        """Flush every connection queued so far."""
        if self._before_flush is not None:
            self._before_flush()
        dirty, self._dirty = self._dirty, []
        for writer in dirty:
            writer.flush_output()
