"""Password checks under attack: a fair, bounded queue of checks waiting for a worker.

Sans-IO bookkeeping (the caller says when a check starts and ends), so it is tested without
threads or sockets; :mod:`medusa.http.auth` glues it to the thread pool that runs scrypt,
and counts failed logins per client address with
:class:`medusa.core.throttle.LoginFailures` (each 401 sent after a delay that doubles with
every failure, an address with ``max_failures`` failures locked out, answered 429 without a
check, for ``lockout`` seconds).

:class:`CheckQueue`: checks waiting to run, at most ``per_address`` of them (waiting or
running) per client address and ``per_connection`` per connection; the next one to run is
taken from the addresses in turn (round-robin), so a client with many queued checks does
not delay another client's one; checks whose connection closed are dropped unrun.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["CheckQueue"]

T = TypeVar("T")


class CheckQueue(Generic[T]):
    """Checks (opaque items of type ``T``) waiting for a worker, taken fairly by address.

    The caller asks :meth:`admit` whether a new check of an address and connection may be
    queued, :meth:`push` es it, takes the next one to run with :meth:`pop` (which drops
    checks that ``alive`` says nobody waits for any more), and reports its end with
    :meth:`finished`. A check counts against its address's and connection's bounds from
    :meth:`push` until :meth:`finished` (or until it is dropped).

    Args:
        alive: returns False for a check whose requests are gone (connection closed).
        dropped: called with each check dropped unrun (``None``: nothing to do).
        per_address: checks waiting or running at most per client address.
        per_connection: checks waiting or running at most per connection.
    """

    def __init__(
        self,
        alive: Callable[[T], bool],
        *,
        dropped: Callable[[T], None] | None = None,
        per_address: int = 4,
        per_connection: int = 2,
    ) -> None:
        self.alive = alive
        self.on_drop = dropped
        self.per_address = per_address
        self.per_connection = per_connection
        self._waiting: OrderedDict[str, deque[tuple[Hashable, T]]] = OrderedDict()
        self._by_address: dict[str, int] = {}
        self._by_connection: dict[Hashable, int] = {}
        self.dropped = 0
        """Checks dropped unrun because nobody waited for them any more."""

    def __len__(self) -> int:
        """The number of checks waiting (not running)."""
        return sum(len(q) for q in self._waiting.values())

    def admit(self, address: str, connection: Hashable) -> str | None:
        """Return None when a new check of ``address`` on ``connection`` may be queued,
        else the reason it may not (``"address"`` or ``"connection"``: that bound is
        reached). Dead checks of the address are dropped first."""
        queue = self._waiting.get(address)
        if queue is not None and self._by_address.get(address, 0) >= self.per_address:
            self._drop_dead(address, queue)
        if self._by_address.get(address, 0) >= self.per_address:
            return "address"
        if self._by_connection.get(connection, 0) >= self.per_connection:
            return "connection"
        return None

    def push(self, address: str, connection: Hashable, item: T) -> None:
        """Queue ``item``, a check of ``address`` on ``connection`` (after :meth:`admit`)."""
        queue = self._waiting.get(address)
        if queue is None:
            queue = self._waiting[address] = deque()
        queue.append((connection, item))
        self._count(address, connection, 1)

    def pop(self) -> tuple[str, Hashable, T] | None:
        """Return ``(address, connection, item)`` of the next check to run, taking the
        addresses in turn, or None when nothing alive waits. Dead checks met on the way
        are dropped."""
        waiting = self._waiting
        while waiting:
            address, queue = next(iter(waiting.items()))
            connection, item = queue.popleft()
            if queue:
                waiting.move_to_end(address)
            else:
                del waiting[address]
            if self.alive(item):
                return address, connection, item
            self._drop(address, connection, item)
        return None

    def remove_address(self, address: str) -> list[T]:
        """Take every check of ``address`` that waits (not the running ones) out of the
        queue and return them, oldest first (for an address just locked out)."""
        queue = self._waiting.pop(address, None)
        if queue is None:
            return []
        for connection, _ in queue:
            self._count(address, connection, -1)
        return [item for _, item in queue]

    def finished(self, address: str, connection: Hashable) -> None:
        """A check returned by :meth:`pop` ended: it no longer counts against the bounds."""
        self._count(address, connection, -1)

    def _drop_dead(self, address: str, queue: deque[tuple[Hashable, T]]) -> None:
        kept: deque[tuple[Hashable, T]] = deque()
        for connection, item in queue:
            if self.alive(item):
                kept.append((connection, item))
            else:
                self._drop(address, connection, item)
        if kept:
            self._waiting[address] = kept
        else:
            del self._waiting[address]

    def _drop(self, address: str, connection: Hashable, item: T) -> None:
        self.dropped += 1
        self._count(address, connection, -1)
        if self.on_drop is not None:
            self.on_drop(item)

    def _count(self, address: str, connection: Hashable, step: int) -> None:
        _step(self._by_address, address, step)
        _step(self._by_connection, connection, step)


K = TypeVar("K", bound=Hashable)


def _step(counts: dict[K, int], key: K, step: int) -> None:
    """Add ``step`` to ``counts[key]``, deleting the entry when it reaches 0."""
    value = counts.get(key, 0) + step
    if value > 0:
        counts[key] = value
    else:
        counts.pop(key, None)
