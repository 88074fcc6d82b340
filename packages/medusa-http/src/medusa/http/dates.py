"""HTTP dates (RFC 9110 §5.6.7, IMF-fixdate), formatted once per second, and parsed."""

from __future__ import annotations

import time
from email.utils import formatdate, parsedate_to_datetime

__all__ = ["http_date", "now_http_date", "parse_http_date"]

_LONGEST_DATE = 64
"""Characters of the longest date value parsed (the three forms have 24 to 33)."""

_cached_second = -1
_cached_value = b""


def now_http_date() -> bytes:
    """Return the current time as an IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``),
    latin-1 bytes, formatted at most once per second."""
    global _cached_second, _cached_value
    second = int(time.time())
    if second != _cached_second:
        _cached_value = formatdate(second, usegmt=True).encode("ascii")
        _cached_second = second
    return _cached_value


def http_date(timestamp: float) -> str:
    """Format ``timestamp`` (seconds since the epoch) as an IMF-fixdate string."""
    return formatdate(int(timestamp), usegmt=True)


def parse_http_date(value: str) -> float | None:
    """Parse an HTTP date (IMF-fixdate, or the obsolete RFC 850 and asctime forms that
    RFC 9110 §5.6.7 says recipients must accept) to seconds since the epoch.

    Returns ``None`` for a value that is not a date (the header is then ignored, as RFC 9110
    §13.1.3 requires for If-Modified-Since), among them values with non-ASCII characters
    (other scripts' digits) and values longer than any of the three forms can be.
    """
    if len(value) > _LONGEST_DATE or not value.isascii():
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
