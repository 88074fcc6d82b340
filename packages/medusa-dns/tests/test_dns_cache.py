"""The cache: LRU bound, per-entry TTL on an injected clock."""

from __future__ import annotations

import pytest

from medusa.dns.cache import DNSCache, EntryKind


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_at_their_ttl() -> None:
    clock = Clock()
    cache = DNSCache(10, clock)
    cache.put(("a.test", 1), EntryKind.ANSWER, ("10.0.0.1",), 30)
    cache.put(("b.test", 1), EntryKind.NEGATIVE, (), 5)
    clock.now += 4.9
    assert cache.get(("b.test", 1)) is not None
    clock.now += 0.1
    assert cache.get(("b.test", 1)) is None
    entry = cache.get(("a.test", 1))
    assert entry is not None
    assert entry.values == ("10.0.0.1",)
    clock.now += 25
    assert cache.get(("a.test", 1)) is None
    assert len(cache) == 0


def test_least_recently_used_is_evicted() -> None:
    cache = DNSCache(3, Clock())
    for name in ("a", "b", "c"):
        cache.put((name, 1), EntryKind.ANSWER, (name,), 60)
    assert cache.get(("a", 1)) is not None  # a is now the most recently used
    cache.put(("d", 1), EntryKind.ANSWER, ("d",), 60)
    assert cache.get(("b", 1)) is None
    assert cache.get(("a", 1)) is not None
    assert cache.get(("c", 1)) is not None
    assert len(cache) == 3
    assert cache.evictions == 1


def test_zero_ttl_and_zero_size_keep_nothing() -> None:
    cache = DNSCache(3, Clock())
    cache.put(("a", 1), EntryKind.ANSWER, ("x",), 60)
    cache.put(("a", 1), EntryKind.ANSWER, ("y",), 0)
    assert cache.get(("a", 1)) is None
    off = DNSCache(0, Clock())
    off.put(("a", 1), EntryKind.ANSWER, ("x",), 60)
    assert off.get(("a", 1)) is None
    with pytest.raises(ValueError, match="max_entries"):
        DNSCache(-1)
