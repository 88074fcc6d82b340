"""The resolver's cache: bounded in entries (least recently used first out), each entry kept
for its own time to live; negative answers and failures are cached too (RFC 2308 §5, §7).

The clock is a function returning seconds (``time.monotonic`` by default), so that tests can
move time forward instead of waiting for it.
"""

from __future__ import annotations

import enum
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["CacheEntry", "DNSCache", "EntryKind"]

Key = tuple[str, int]
"""``(lower-case absolute name, record type)``."""


class EntryKind(enum.Enum):
    """What a cache entry records."""

    ANSWER = "answer"
    """Addresses or host names."""
    NEGATIVE = "negative"
    """NXDOMAIN or NODATA: the name has no such record (RFC 2308)."""
    FAILURE = "failure"
    """No server answered (RFC 2308 §7: a server failure may be cached for a short time)."""


@dataclass(frozen=True, slots=True)
class CacheEntry:
    """One cached outcome.

    Attributes:
        kind: see :class:`EntryKind`.
        values: for ``ANSWER``: the addresses or names, in reply order.
        expires: the clock time, in seconds, after which the entry is stale.
    """

    kind: EntryKind
    values: tuple[str, ...]
    expires: float


class DNSCache:
    """A mapping of ``(name, type)`` to :class:`CacheEntry`, bounded and expiring.

    Args:
        max_entries: entries kept at most; adding one more evicts the least recently used.
            0 disables the cache.
        clock: the time source, in seconds (monotonic).

    Attributes:
        evictions: entries removed to make room (not counting expired ones).
    """

    __slots__ = ("_entries", "clock", "evictions", "max_entries")

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic):
        if max_entries < 0:
            raise ValueError("max_entries must be 0 or more")
        self.max_entries = max_entries
        self.clock = clock
        self.evictions = 0
        self._entries: OrderedDict[Key, CacheEntry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Key) -> CacheEntry | None:
        """Return the fresh entry of ``key`` (marking it recently used), or ``None``; a stale
        entry is removed."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires <= self.clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: Key, kind: EntryKind, values: tuple[str, ...], ttl: float) -> None:
        """Record an outcome for ``ttl`` seconds; a ``ttl`` of 0 or less records nothing
        (and drops an older entry of ``key``)."""
        if ttl <= 0 or self.max_entries == 0:
            self._entries.pop(key, None)
            return
        self._entries[key] = CacheEntry(kind, values, self.clock() + ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
            self.evictions += 1

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()
