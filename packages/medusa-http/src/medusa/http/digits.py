"""Decimal numbers read from the network: ASCII digits only.

RFC 5234 B.1 defines ``DIGIT`` as ``%x30-39``; Python's :meth:`str.isdigit` and :func:`int`
also accept other scripts' digits (``"²"``, ``"٣"``), signs, spaces and underscores, and
:func:`int` refuses more than 4,300 digits with an exception. Every number a client sends
(``Content-Length``, byte positions of ``Range``) is read with :func:`parse_digits`. Sans-IO.
"""

from __future__ import annotations

__all__ = ["HUGE", "parse_digits"]

HUGE = 10**18
"""What :func:`parse_digits` returns for a number of more than 18 significant digits: larger
than any length or position this server deals with (about 888 PiB), so comparisons against
sizes and limits still come out right."""

_MAX_DIGITS = 18


def parse_digits(text: str) -> int | None:
    """Return the value of ``text`` when it is ``1*DIGIT`` (ASCII ``0``-``9``, nothing else,
    not even spaces), else None.

    A value of more than 18 significant digits is returned as :data:`HUGE` (never converted,
    so no length of input makes this slow or raise).
    """
    if not text.isascii() or not text.isdigit():
        return None
    significant = text.lstrip("0")
    if len(significant) > _MAX_DIGITS:
        return HUGE
    return int(significant or "0")
