"""How much a channel writes before it waits or lets others run: the write buffer limits
(high and low water marks, bytes) and the turn a producer gets in one loop iteration."""

from __future__ import annotations

__all__ = ["REFILL_BYTES", "REFILL_CALLS", "REFILL_SECONDS", "check_water_marks"]

REFILL_BYTES = 1 << 20
"""Bytes one refill of a channel may take from producers' ``more()`` before it lets the
loop run other callbacks (a fast reader of a compressed or TLS response must not
monopolize the loop, as :data:`~medusa.core.zerocopy.SENDFILE_SLICE` for ``sendfile``)."""

REFILL_CALLS = 16
"""Calls of producers' ``more()`` one refill may make before it yields to the loop (a
producer that works hard for little output, gzip for instance)."""

REFILL_SECONDS = 0.005
"""Seconds of producers' ``more()`` work after which one refill yields to the loop (gzip of
64 KiB of text takes a few milliseconds)."""


def check_water_marks(high: int | None, low: int | None) -> None:
    """Check a pair of write buffer limits (bytes; ``None`` for the default).

    Raises:
        ValueError: for a negative limit or ``low`` above ``high``.
    """
    if (high is not None and high < 0) or (low is not None and low < 0):
        raise ValueError(f"write buffer limits must be 0 or more, got {high!r}/{low!r}")
    if high is not None and low is not None and low > high:
        raise ValueError(f"write_low_water {low} is above write_high_water {high}")
