"""Numeric command arguments, sans-IO: every number read from the control connection is
checked here before it is converted, so that only ASCII digits (never other Unicode
digits), in a bounded number, for a value in range, reach :func:`int` (no input can make
the conversion raise or take long).

Used for ``REST`` (RFC 3659 §5.3), ``ALLO`` (RFC 959 §4.1.3), ``PBSZ`` (RFC 4217 §8),
and the numbers of ``PORT`` (RFC 959 §4.1.2) and ``EPRT`` (RFC 2428 §2).
"""

from __future__ import annotations

__all__ = ["MAX_OFFSET", "MAX_PBSZ", "parse_allo", "parse_decimal"]

MAX_OFFSET = 2**63 - 1
"""The largest file offset or size accepted (``REST``, ``ALLO``), bytes: the largest
``off_t`` of a 64-bit system."""

MAX_PBSZ = 2**32 - 1
"""The largest ``PBSZ`` value, a 32-bit decimal integer (RFC 4217 §8)."""


def parse_decimal(text: str, maximum: int) -> int | None:
    """Return the value of a decimal number from the network, or None when it is not one.

    Args:
        text: the number as sent (no surrounding blanks).
        maximum: the largest value accepted (``>= 0``); the text may have at most as many
            digits as ``maximum`` has (leading zeros included).

    Returns:
        The value, ``0 <= value <= maximum``; None for an empty text, any character other
        than the ASCII digits ``0-9`` (signs, blanks, ``_``, Unicode digits such as ``٣``
        or ``³``), too many digits, or a value over ``maximum``.
    """
    if not text or len(text) > len(str(maximum)) or not (text.isascii() and text.isdigit()):
        return None
    value = int(text)
    return value if value <= maximum else None


def parse_allo(arg: str) -> int | None:
    """Parse the argument of ``ALLO`` (RFC 959 §4.1.3): ``<decimal-integer>`` optionally
    followed by ``R <decimal-integer>`` (a record size, in record structure).

    Args:
        arg: the argument text.

    Returns:
        The number of bytes (``0 <= n <= MAX_OFFSET``), or None for anything else.
    """
    words = arg.split()
    if len(words) == 3 and words[1].upper() == "R":
        if parse_decimal(words[2], MAX_OFFSET) is None:
            return None
    elif len(words) != 1:
        return None
    return parse_decimal(words[0], MAX_OFFSET)
