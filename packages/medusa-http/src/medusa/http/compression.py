"""gzip content coding (RFC 9110 §8.4.1.3, §12.5.3): which responses to compress and whether
the client accepts it. Sans-IO."""

from __future__ import annotations

import gzip

__all__ = ["accepts_gzip", "compressible", "gzip_bytes"]

_COMPRESSIBLE_APPLICATION = frozenset(
    {
        "application/json",
        "application/javascript",
        "application/xml",
        "application/xhtml+xml",
        "application/rss+xml",
        "application/atom+xml",
        "application/manifest+json",
        "image/svg+xml",
    }
)


def compressible(content_type: str) -> bool:
    """True for media types that gzip shrinks: ``text/*``, JSON, JavaScript, XML and SVG
    (never images, archives or other already compressed types)."""
    media = content_type.partition(";")[0].strip().lower()
    return (
        media.startswith("text/") or media in _COMPRESSIBLE_APPLICATION or media.endswith("+json")
    )


def accepts_gzip(accept_encoding: str | None) -> bool:
    """True when an ``Accept-Encoding`` value (RFC 9110 §12.5.3) allows ``gzip``:
    listed (or ``x-gzip``, or ``*``) with a non-zero weight, and not refused by
    ``gzip;q=0``. A missing field means no preference: answer without coding."""
    if not accept_encoding:
        return False
    star: bool | None = None
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        coding = coding.strip().lower()
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        if coding in ("gzip", "x-gzip"):
            return weight > 0
        if coding == "*":
            star = weight > 0
    return bool(star)


def gzip_bytes(data: bytes, level: int = 6) -> bytes:
    """Return ``data`` gzip-compressed (no file name, modification time 0, so equal input
    gives equal output and the entity tag can stay stable)."""
    return gzip.compress(data, compresslevel=level, mtime=0)
