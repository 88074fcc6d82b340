"""Status lines, preformatted once (RFC 9110 §15 for the codes, RFC 9112 §4 for the line)."""

from __future__ import annotations

from http import HTTPStatus

__all__ = ["reason", "status_line"]

_LINES: dict[int, bytes] = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode("ascii") for s in HTTPStatus
}


def reason(code: int) -> str:
    """Return the reason phrase of ``code`` (``"Not Found"``), or ``"Unknown"``."""
    try:
        return HTTPStatus(code).phrase
    except ValueError:
        return "Unknown"


def status_line(code: int) -> bytes:
    """Return ``b"HTTP/1.1 <code> <reason>\\r\\n"`` for ``code`` (any 100..999 int)."""
    line = _LINES.get(code)
    if line is None:
        line = f"HTTP/1.1 {code} {reason(code)}\r\n".encode("ascii")
        _LINES[code] = line
    return line
