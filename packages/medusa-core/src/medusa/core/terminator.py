"""Finding a channel's terminator across reads (the asynchat model's input framing)."""

from __future__ import annotations

__all__ = ["find_prefix_at_end"]


def find_prefix_at_end(data: bytes | bytearray, terminator: bytes) -> int:
    """Return the length of the longest suffix of ``data`` that is a proper prefix of
    ``terminator`` (0 when none), i.e. how many trailing bytes may begin a terminator
    that the next read completes."""
    n = min(len(terminator) - 1, len(data))
    while n > 0 and not data.endswith(terminator[:n]):
        n -= 1
    return n
