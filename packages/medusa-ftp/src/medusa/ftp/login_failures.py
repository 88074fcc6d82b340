"""Failed logins per client address, across connections, sans-IO (the caller passes the
time): the delay before each refusal grows with the address's recent failures, and past a
budget the address is locked out for a while (RFC 2577 §4 asks servers to limit password
guessing; counting per connection only lets a client reconnect and guess again).

Failures are counted when a wrong password is found, not when the refusal is sent, so
that connections opened at once share one budget. The same bookkeeping exists in
medusa-monitor (``medusa.monitor.throttle``); it could move to medusa-core.
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
    """Failed logins and lockouts per client address.

    Args:
        budget: failures allowed from one address within ``window`` seconds; the failure
            that spends it locks the address out for ``window`` seconds (0: never lock).
        window: seconds a failure is remembered, counted from the address's latest
            failure; also the length of a lockout.
        delay: seconds before the refusal of an address's first failure; each further
            failure doubles it.
        max_delay: the longest delay, seconds.
        max_addresses: addresses remembered at most; past it the oldest are forgotten
            (memory stays bounded whatever the number of clients).

    Raises:
        ValueError: for a negative number.
    """

    def __init__(
        self,
        *,
        budget: int = 20,
        window: float = 600.0,
        delay: float = 1.0,
        max_delay: float = 30.0,
        max_addresses: int = 10000,
    ) -> None:
        if min(budget, window, delay, max_delay) < 0 or max_addresses < 1:
            raise ValueError("login failure limits must not be negative")
        self.budget = budget
        self.window = float(window)
        self.delay = float(delay)
        self.max_delay = float(max_delay)
        self.max_addresses = max_addresses
        self._records: dict[str, _Record] = {}

    def locked(self, address: str, now: float) -> float:
        """Return the seconds left of ``address``'s lockout (0.0 when it may try).

        Args:
            address: the client's address (canonical text, no port).
            now: :func:`time.monotonic` time, seconds.
        """
        record = self._records.get(address)
        if record is None or record.locked_until <= now:
            return 0.0
        return record.locked_until - now

    def failures(self, address: str, now: float) -> int:
        """Return the failures of ``address`` still remembered at ``now``."""
        record = self._records.get(address)
        if record is None or now - record.last_failure > self.window:
            return 0
        return record.failures

    def failure(self, address: str, now: float) -> float:
        """Count a failed login from ``address`` at ``now``; return the seconds to wait
        before refusing it (see :meth:`delay_for`).

        When this failure spends the budget, the address is locked out until
        ``now + window`` (see :meth:`locked`).
        """
        records = self._records
        record = records.pop(address, None)  # re-inserted last: the dict is oldest first
        if record is None:
            self._prune()
            record = _Record()
        elif now - record.last_failure > self.window:
            record.failures = 0
        records[address] = record
        record.failures += 1
        record.last_failure = now
        if self.budget and record.failures >= self.budget:
            record.locked_until = now + self.window
        return self.delay_for(record.failures)

    def delay_for(self, failures: int) -> float:
        """The delay after an address's ``failures``-th failure in the window:
        ``delay * 2 ** (failures - 1)`` seconds, at most :attr:`max_delay`."""
        if failures <= 0:
            return 0.0
        return min(self.max_delay, self.delay * 2.0 ** min(failures - 1, 32))

    def _prune(self) -> None:
        """Before adding an address at the limit: forget the oldest addresses (the
        records are kept in the order of their latest failure) until there is room."""
        records = self._records
        while len(records) >= self.max_addresses:
            del records[next(iter(records))]
