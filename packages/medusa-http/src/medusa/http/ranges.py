"""Byte ranges (RFC 9110 §14): parsing a ``Range`` header against a representation's size.

Sans-IO: pure functions, tested without sockets. Positions are ASCII digits only
(:func:`~medusa.http.digits.parse_digits`): a non-ASCII digit (U+00B2, superscript two) is a
syntax error, so the field is ignored; a position of thousands of digits is simply beyond the
end.
"""

from __future__ import annotations

from medusa.http.digits import parse_digits

__all__ = ["UNSATISFIABLE", "parse_range"]

UNSATISFIABLE = (-1, -1)
"""Returned by :func:`parse_range` when no byte of the range exists (answer 416)."""


def parse_range(value: str, size: int) -> tuple[int, int] | None:
    """Parse a single byte range of a ``Range`` header (RFC 9110 §14.1.2).

    Args:
        value: the header value, for example ``"bytes=0-499"``, ``"bytes=500-"`` or
            ``"bytes=-500"`` (the last 500 bytes).
        size: the representation's length in bytes.

    Returns:
        ``(first, last)`` inclusive byte positions, clamped to the representation;
        :data:`UNSATISFIABLE` when the range starts beyond the end or asks for a zero-length
        suffix; ``None`` when the header must be ignored and the whole representation sent
        (another unit, a syntax error, or several ranges, which this server does not
        combine into multipart/byteranges — RFC 9110 §14.2 lets a server ignore Range).
    """
    unit, sep, spec = value.partition("=")
    if not sep or unit.strip(_OWS).lower() != "bytes":
        return None
    spec = spec.strip(_OWS)
    if "," in spec:
        return None
    first_text, dash, last_text = spec.partition("-")
    if not dash:
        return None
    first_text, last_text = first_text.strip(_OWS), last_text.strip(_OWS)
    last = parse_digits(last_text) if last_text else size - 1
    if last is None:
        return None
    if not first_text:
        if not last_text:
            return None
        suffix = last  # bytes=-N: the last N bytes
        if suffix == 0 or size == 0:
            return UNSATISFIABLE
        return (max(size - suffix, 0), size - 1)
    first = parse_digits(first_text)
    if first is None or (last_text and last < first):
        return None
    if first >= size:
        return UNSATISFIABLE
    return (first, min(last, size - 1))


_OWS = " \t"
"""Optional whitespace (RFC 9110 §5.6.3): space and horizontal tab, nothing else."""
