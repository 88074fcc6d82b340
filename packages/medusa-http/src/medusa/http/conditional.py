"""Validators and conditional requests (RFC 9110 §8.8 and §13).

Sans-IO: pure functions over header values and a file's stat, tested without sockets.
"""

from __future__ import annotations

import os

from medusa.http.dates import parse_http_date

__all__ = ["entity_tag", "evaluate_preconditions", "if_range_allows"]


def entity_tag(st: os.stat_result) -> str:
    """Return a strong entity tag for a file: hex mtime (seconds) and size, quoted
    (``"65a1b2c3-400"``). It changes whenever a write changes the size or the second of
    modification."""
    return f'"{int(st.st_mtime):x}-{st.st_size:x}"'


def _tags(value: str) -> list[str]:
    return [t.strip() for t in value.split(",") if t.strip()]


def _weak_match(a: str, b: str) -> bool:
    return a.removeprefix("W/") == b.removeprefix("W/")


def evaluate_preconditions(
    method: str, headers: dict[str, str], etag: str, mtime: float
) -> int | None:
    """Evaluate the preconditions in RFC 9110 §13.2.2's order.

    Args:
        method: the request method.
        headers: request headers, lower-case names.
        etag: the current representation's entity tag.
        mtime: its modification time, seconds since the epoch.

    Returns:
        412 (Precondition Failed), 304 (Not Modified) or ``None`` to go on normally.
    """
    if_match = headers.get("if-match")
    if if_match is not None:
        if if_match.strip() != "*" and not any(
            t == etag and not t.startswith("W/") for t in _tags(if_match)
        ):
            return 412
    else:
        ius = headers.get("if-unmodified-since")
        if ius is not None:
            date = parse_http_date(ius)
            if date is not None and int(mtime) > date:
                return 412
    if_none_match = headers.get("if-none-match")
    if if_none_match is not None:
        if if_none_match.strip() == "*" or any(_weak_match(t, etag) for t in _tags(if_none_match)):
            return 304 if method in ("GET", "HEAD") else 412
        return None
    if method in ("GET", "HEAD"):
        ims = headers.get("if-modified-since")
        if ims is not None:
            date = parse_http_date(ims)
            if date is not None and int(mtime) <= date:
                return 304
    return None


def if_range_allows(value: str, etag: str, last_modified: str) -> bool:
    """Return True when an ``If-Range`` value (RFC 9110 §13.1.5) still matches, so the
    ``Range`` applies: an entity tag must match strongly, a date must equal
    ``Last-Modified`` exactly."""
    value = value.strip()
    if value.startswith('"') or value.startswith("W/"):
        return value == etag and not value.startswith("W/")
    return value == last_modified
