"""The ``charset`` parameter of textual media types (RFC 9110 §8.3.2), as nginx's ``charset``
and ``charset_types`` add it.

Without it a browser guesses the encoding of ``text/plain`` (and of HTML without
``<meta charset>``), usually wrongly for UTF-8. The file handler names the configured charset
(``utf-8`` by default) on every type :func:`is_textual` accepts. Sans-IO.
"""

from __future__ import annotations

import re

__all__ = ["DEFAULT_CHARSET", "check_charset", "is_textual", "with_charset"]

DEFAULT_CHARSET = "utf-8"
"""The charset named on textual types unless configured otherwise."""

_TEXTUAL_APPLICATION = frozenset(
    {
        "application/javascript",
        "application/ecmascript",
        "application/json",
        "application/xml",
        "application/xhtml+xml",
        "application/rss+xml",
        "application/atom+xml",
        "application/manifest+json",
        "image/svg+xml",
    }
)

_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9A-Za-z]+")


def is_textual(media_type: str) -> bool:
    """True for media types whose bytes are characters: ``text/*``, JavaScript, JSON, XML
    and SVG, and any ``+json`` or ``+xml`` type (nginx's ``charset_types`` and more)."""
    media = media_type.partition(";")[0].strip().lower()
    return (
        media.startswith("text/")
        or media in _TEXTUAL_APPLICATION
        or media.endswith("+json")
        or media.endswith("+xml")
    )


def with_charset(media_type: str, charset: str | None) -> str:
    """Return ``media_type`` with ``; charset=<charset>`` when it is textual, has no charset
    parameter yet and ``charset`` is set (``None`` or ``""``: returned as it is)."""
    if not charset or "charset=" in media_type.lower() or not is_textual(media_type):
        return media_type
    return f"{media_type}; charset={charset}"


def check_charset(charset: str | None) -> str | None:
    """Return ``charset`` if it may be sent (``None`` and ``""`` mean none: None).

    Raises:
        ValueError: when it is not a token (RFC 9110 §8.3.2), such as ``"utf 8"`` or a
            value with CR or LF.
    """
    if not charset:
        return None
    if _TOKEN.fullmatch(charset) is None:
        raise ValueError(f"charset {charset!r}: not a charset name (such as utf-8)")
    return charset
