"""Bandwidth throttling, sans-IO: how long a transfer must wait so that its average rate
stays at or under a limit."""

from __future__ import annotations

__all__ = ["Throttle"]


class Throttle:
    """Keep a transfer's average rate at or below ``rate`` bytes per second.

    Call :meth:`delay` after each piece of data with its size and the current
    :func:`time.monotonic` time; it returns how many seconds to wait before the next piece.

    Args:
        rate: the limit, bytes per second (> 0).

    Raises:
        ValueError: when ``rate`` is not positive.
    """

    __slots__ = ("_start", "_total", "rate")

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be greater than 0, got {rate!r}")
        self.rate = float(rate)
        self._start: float | None = None
        self._total = 0

    def delay(self, nbytes: int, now: float) -> float:
        """Record ``nbytes`` more bytes at time ``now`` (seconds) and return the seconds to
        wait before moving more (0.0 when the transfer is at or under the rate)."""
        if self._start is None:
            self._start = now
        self._total += nbytes
        due = self._start + self._total / self.rate
        return max(0.0, due - now)

    @property
    def chunk(self) -> int:
        """A good piece size for this rate: about a tenth of a second's worth, bytes."""
        return max(1024, min(65536, int(self.rate / 10)))
