"""Failed logins: a growing delay before each refusal and a lockout after repeated failures.

Pure bookkeeping (the caller passes the time), so it is tested without a clock or sockets.
Failures are counted per client key (an IP address, or ``unix:uid=N`` for a Unix-socket
peer) when the wrong answer arrives, not when the refusal is sent, so many connections
opened at once still get at most ``max_failures`` guesses per lockout period.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LoginThrottle"]


@dataclass(slots=True)
class _Record:
    failures: int = 0
    last_failure: float = 0.0
    locked_until: float = 0.0


class LoginThrottle:
    """Failure counts and lockouts per client.

    Args:
        max_failures: failures after which a client is locked out (0: never).
        lockout: seconds a locked-out client is refused without a challenge; also how long
            a failure is remembered.
        delay: seconds before the first refusal is sent; each further failure doubles it.
        max_delay: the longest delay, seconds.
        max_clients: records kept at most; the oldest are forgotten first.
    """

    def __init__(
        self,
        *,
        max_failures: int = 5,
        lockout: float = 300.0,
        delay: float = 1.0,
        max_delay: float = 30.0,
        max_clients: int = 10000,
    ) -> None:
        self.max_failures = max_failures
        self.lockout = float(lockout)
        self.delay = float(delay)
        self.max_delay = float(max_delay)
        self.max_clients = max_clients
        self._records: dict[str, _Record] = {}

    def locked(self, key: str, now: float) -> float:
        """Return the seconds left of ``key``'s lockout (0.0 when it may log in).

        Args:
            key: the client (an address without its port).
            now: :func:`time.monotonic` time, seconds.
        """
        record = self._records.get(key)
        if record is None or record.locked_until <= now:
            return 0.0
        return record.locked_until - now

    def failures(self, key: str, now: float) -> int:
        """Return the failures of ``key`` still remembered at ``now``."""
        record = self._records.get(key)
        if record is None or now - record.last_failure > self.lockout:
            return 0
        return record.failures

    def failure(self, key: str, now: float) -> float:
        """Count a failed login of ``key``; return the delay (seconds) before refusing.

        Locks ``key`` out for :attr:`lockout` seconds when this is failure number
        :attr:`max_failures`.
        """
        record = self._records.get(key)
        if record is None:
            self._prune(now)
            record = self._records[key] = _Record()
        elif now - record.last_failure > self.lockout:
            record.failures = 0
        record.failures += 1
        record.last_failure = now
        if self.max_failures and record.failures >= self.max_failures:
            record.locked_until = now + self.lockout
            record.failures = 0
        return self.delay_for(record.failures or self.max_failures)

    def delay_for(self, failures: int) -> float:
        """The delay after ``failures`` consecutive failures: ``delay * 2 ** (failures -
        1)``, at most :attr:`max_delay` seconds."""
        if failures <= 0:
            return 0.0
        return min(self.max_delay, self.delay * 2.0 ** min(failures - 1, 32))

    def success(self, key: str) -> None:
        """Forget ``key``'s failures after a successful login."""
        self._records.pop(key, None)

    def _prune(self, now: float) -> None:
        """Forget records whose failures and lockout have expired; past
        :attr:`max_clients`, forget the oldest too."""
        if len(self._records) < self.max_clients:
            return
        expired = [
            k
            for k, r in self._records.items()
            if r.locked_until <= now and now - r.last_failure > self.lockout
        ]
        for key in expired:
            del self._records[key]
        if len(self._records) >= self.max_clients:
            oldest = sorted(self._records, key=lambda k: self._records[k].last_failure)
            for key in oldest[: len(self._records) - self.max_clients + 1]:
                del self._records[key]
