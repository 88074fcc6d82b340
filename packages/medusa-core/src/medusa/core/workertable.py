"""The worker table: one row per worker process in memory shared by the master and its
workers (an anonymous ``MAP_SHARED`` mapping made before the first fork).

Each worker writes its own row (its counters summed over its servers) about once a second
and whenever a status page asks (:func:`medusa.core.workers.worker_rows`); the master writes
the pid, index, start time, state and restart count. Any process reads every row, so a
status page or monitor prompt in any worker shows the whole server. Rows are plain numbers:
a reader may see a row half-updated (one counter newer than another), never a torn number.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass

__all__ = ["STATES", "WorkerRow", "WorkerTable"]

STATES = ("free", "starting", "ready", "stopping")
"""A row's ``state``: ``free`` (unused), ``starting`` (forked, loading its servers),
``ready`` (accepting), ``stopping`` (told to stop, finishing the work in flight)."""

_ROW = struct.Struct("<qqqqqqqqqqdd")
"""pid, index, state, generation, restarts, requests, connections, active, bytes_in,
bytes_out, started, updated (the last two in seconds since the epoch)."""
_STATE, _STATE_OFFSET = struct.Struct("<q"), 16
_COUNTERS, _COUNTERS_OFFSET = struct.Struct("<qqqqq"), 40
_UPDATED, _UPDATED_OFFSET = struct.Struct("<d"), 88


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """One worker as the table shows it.

    Attributes:
        pid: its process id.
        index: its number, 1 to N (a replacement takes the number of the worker it replaces).
        state: one of :data:`STATES`.
        generation: the configuration it runs (1 at start, +1 at each reload).
        restarts: how many workers of this number died and were replaced.
        requests: requests (or commands) its servers handled.
        connections: connections its servers accepted.
        active: connections open now.
        bytes_in: bytes received, bytes_out: bytes sent.
        started: its start time, seconds since the epoch.
        updated: when it last wrote its counters, seconds since the epoch.
    """

    pid: int
    index: int
    state: str
    generation: int
    restarts: int
    requests: int
    connections: int
    active: int
    bytes_in: int
    bytes_out: int
    started: float
    updated: float

    def as_dict(self) -> dict[str, int | float | str]:
        """The row as a plain dict (for JSON)."""
        return {name: getattr(self, name) for name in self.__slots__}


class WorkerTable:
    """``size`` rows in shared memory (inherited by processes forked after it was made).

    Args:
        size: the number of rows: the workers plus room for their replacements during a
            reload (the master uses twice the worker count).
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._memory = mmap.mmap(-1, _ROW.size * size, flags=mmap.MAP_SHARED)

    def allocate(self) -> int:
        """Return a free row's slot number (the master, before forking a worker).

        Raises:
            RuntimeError: every row is in use.
        """
        for slot in range(self.size):
            if self._read(slot)[2] == 0:
                return slot
        raise RuntimeError("no free row in the worker table")

    def start(
        self, slot: int, *, pid: int, index: int, generation: int, restarts: int, started: float
    ) -> None:
        """Fill ``slot`` for a worker just forked (state ``starting``, counters at zero)."""
        _ROW.pack_into(
            self._memory,
            slot * _ROW.size,
            pid,
            index,
            1,
            generation,
            restarts,
            0,
            0,
            0,
            0,
            0,
            started,
            started,
        )

    def set_state(self, slot: int, state: str) -> None:
        """Set the row's state (one of :data:`STATES`; ``free`` releases the row)."""
        self._read(slot)  # checks the slot number
        _STATE.pack_into(self._memory, slot * _ROW.size + _STATE_OFFSET, STATES.index(state))

    def publish(
        self,
        slot: int,
        *,
        requests: int,
        connections: int,
        active: int,
        bytes_in: int,
        bytes_out: int,
        now: float,
    ) -> None:
        """Write a worker's counters into its row (the worker itself). Only those fields
        are written: the master may be setting the row's state at the same moment."""
        self._read(slot)  # checks the slot number
        base = slot * _ROW.size
        _COUNTERS.pack_into(
            self._memory,
            base + _COUNTERS_OFFSET,
            requests,
            connections,
            active,
            bytes_in,
            bytes_out,
        )
        _UPDATED.pack_into(self._memory, base + _UPDATED_OFFSET, now)

    def rows(self) -> list[WorkerRow]:
        """The rows in use, by worker number then start time."""
        out = []
        for slot in range(self.size):
            values = self._read(slot)
            if values[2] == 0:
                continue
            pid, index, state, generation, restarts, requests, connections, active = values[:8]
            bytes_in, bytes_out, started, updated = values[8:]
            out.append(
                WorkerRow(
                    pid=int(pid),
                    index=int(index),
                    state=STATES[int(state)] if 0 <= state < len(STATES) else "free",
                    generation=int(generation),
                    restarts=int(restarts),
                    requests=int(requests),
                    connections=int(connections),
                    active=int(active),
                    bytes_in=int(bytes_in),
                    bytes_out=int(bytes_out),
                    started=float(started),
                    updated=float(updated),
                )
            )
        return sorted(out, key=lambda row: (row.index, row.started))

    def _read(self, slot: int) -> tuple[int | float, ...]:
        if not 0 <= slot < self.size:
            raise IndexError(f"slot {slot} outside the table (0 to {self.size - 1})")
        return _ROW.unpack_from(self._memory, slot * _ROW.size)
