"""Failed logins per client, across connections: a refusal delay that doubles with each
failure, and a lockout after repeated failures.

RFC 2577 §4 asks FTP servers to make password guessing slow (a delay before each refusal,
a bound on the attempts); the same holds for every protocol with a password or a shared
secret. Counting per connection is not enough, since a client just reconnects, so failures
are counted per client key (an address without its port, or ``unix:uid=N`` for a
Unix-socket peer), and counted when the wrong answer is found, not when the refusal is
sent: connections opened at once share one count.

Sans-IO bookkeeping: the caller passes the time (:func:`time.monotonic`, seconds), so it is
tested without a clock or sockets. medusa-monitor, medusa-ftp and medusa-http's Basic
authentication use it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LoginFailures"]


@dataclass(slots=True)
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    locked_until: float = 0.0


class LoginFailures:
    """Failed logins, refusal delays and lockouts per client key.

    The refusal of a key's n-th failure waits ``delay * 2 ** (n - 1)`` seconds, at most
    ``max_delay`` (:meth:`delay_for`). The failure number ``max_failures`` locks the key
    out for ``lockout`` seconds (:meth:`locked`; the caller refuses it without checking
    its password) and starts a new count: failures that arrive while it is locked out
    (checks already under way) count towards the next lockout, they do not lengthen this
    one. A failure is remembered for ``lockout`` seconds after the key's latest failure;
    then the count starts again from 0.

    Memory is bounded: at most ``max_clients`` keys are remembered, kept in the order of
    their latest failure; a new key first forgets the expired ones at the front, then, at
    the limit, the oldest one (each in O(1)).

    Args:
        max_failures: failures after which a key is locked out (0: never locked out).
        lockout: seconds a locked-out key stays locked out; also how long a failure is
            remembered after the key's latest failure.
        delay: seconds before the refusal of a key's first failure; each further failure
            doubles it (0: no delay).
        max_delay: the longest refusal delay, seconds.
        max_clients: keys remembered at most (at least 1).

    Raises:
        ValueError: a number is negative (or NaN), or ``max_clients`` is below 1.
    """

    def __init__(
        self,
        *,
        max_failures: int = 10,
        lockout: float = 300.0,
        delay: float = 1.0,
        max_delay: float = 30.0,
        max_clients: int = 10000,
    ) -> None:
        if not all(x >= 0 for x in (max_failures, lockout, delay, max_delay)):  # NaN too
            raise ValueError("login failure limits must not be negative")
        if max_clients < 1:
            raise ValueError("max_clients must be at least 1")
        self.max_failures = max_failures
        self.lockout = float(lockout)
        self.delay = float(delay)
        self.max_delay = float(max_delay)
        self.max_clients = max_clients
        self._records: dict[str, _Record] = {}  # oldest latest failure first

    def __len__(self) -> int:
        """The number of keys remembered (some may have expired)."""
        return len(self._records)

    def locked(self, key: str, now: float) -> float:
        """Return the seconds left of ``key``'s lockout (0.0 when it is not locked out).

        Args:
            key: the client (an address without its port, ``"192.0.2.7"``).
            now: :func:`time.monotonic` time, seconds.
        """
        record = self._records.get(key)
        if record is None or record.locked_until <= now:
            return 0.0
        return record.locked_until - now

    def failures(self, key: str, now: float) -> int:
        """Return the failures of ``key`` still counted at ``now`` (0 after the failure
        that locked it out)."""
        record = self._records.get(key)
        if record is None or now - record.last_failure > self.lockout:
            return 0
        return record.failures

    def failure(self, key: str, now: float) -> float:
        """Count a failed login of ``key`` at ``now``; return the seconds to wait before
        refusing it: :meth:`delay_for` the number of this failure in the count.

        The failure number :attr:`max_failures` locks ``key`` out until ``now +
        lockout`` (see :meth:`locked`) and starts a new count; its own delay is
        ``delay_for(max_failures)``.
        """
        records = self._records
        record = records.pop(key, None)  # re-inserted last: the dict stays in order
        if record is None:
            self._make_room(now)
            record = _Record()
        elif now - record.last_failure > self.lockout:
            record.failures = 0
        records[key] = record
        record.failures += 1
        record.last_failure = now
        delay = self.delay_for(record.failures)
        if self.max_failures and record.failures >= self.max_failures:
            record.locked_until = now + self.lockout
            record.failures = 0
        return delay

    def delay_for(self, failures: int) -> float:
        """The refusal delay of a key's ``failures``-th failure: ``delay * 2 ** (failures
        - 1)`` seconds, at most :attr:`max_delay` (0.0 for ``failures <= 0``)."""
        if failures <= 0:
            return 0.0
        return min(self.max_delay, self.delay * 2.0 ** min(failures - 1, 32))

    def success(self, key: str) -> None:
        """Forget ``key``'s failures (and lockout) after a successful login.

        Not every caller wants this: where several accounts share one client key (HTTP
        Basic authentication, FTP users), one valid login would otherwise reset a guesser's
        count for the other accounts."""
        self._records.pop(key, None)

    def _make_room(self, now: float) -> None:
        """Before a new key: forget the expired keys at the front (the oldest latest
        failures), then, at :attr:`max_clients`, the oldest key."""
        records = self._records
        while records:
            oldest = next(iter(records))
            record = records[oldest]
            expired = record.locked_until <= now and now - record.last_failure > self.lockout
            if not expired and len(records) < self.max_clients:
                return
            del records[oldest]
