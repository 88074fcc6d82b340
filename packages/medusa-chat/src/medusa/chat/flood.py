"""Flood control: a token bucket per client (sans-IO; times are passed in)."""

from __future__ import annotations

__all__ = ["TokenBucket"]


class TokenBucket:
    """A token bucket: ``burst`` tokens at most, refilled at ``rate`` tokens per second.

    Each received line takes one token; a client that finds the bucket empty is flooding
    (the server then closes the link with ``ERROR :Closing Link: ... (Excess Flood)``).

    Args:
        rate: tokens added per second (lines per second allowed in the long run); 0
            disables flood control.
        burst: the bucket's size (lines that may arrive at once).
        now: the current :func:`time.monotonic` time, seconds.
    """

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens at time ``now`` (seconds); return False when there are
        not enough (the bucket is left as it was)."""
        if self.rate <= 0:
            return True
        tokens = self.tokens + (now - self.stamp) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self.stamp = now
        if tokens < cost:
            self.tokens = tokens
            return False
        self.tokens = tokens - cost
        return True
