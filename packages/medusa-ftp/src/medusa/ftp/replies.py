"""FTP replies, sans-IO: the bytes of single- and multi-line replies (RFC 959 §4.2) and the
quoting of path names in ``257`` replies (RFC 959 Appendix II).

Text is sent as UTF-8 (RFC 2640 §3.1); path names that are not valid UTF-8 were decoded with
``surrogateescape`` when they came in and go out as the same bytes.
"""

from __future__ import annotations

__all__ = ["encode_text", "format_reply", "quote_path"]


def encode_text(text: str) -> bytes:
    """Return ``text`` as the bytes sent on the wire: UTF-8, with the bytes of names that
    came in as undecodable input restored (``surrogateescape``)."""
    return text.encode("utf-8", "surrogateescape")


def _clean(line: str) -> str:
    """A line of reply text cannot hold CR or LF (they would end the reply early): a CR
    becomes ``CR NUL`` as RFC 959 Appendix II asks for path names, an LF a space."""
    return line.replace("\r", "\r\0").replace("\n", " ")


def format_reply(code: int, text: str | list[str]) -> bytes:
    """Return the bytes of one reply (RFC 959 §4.2).

    A single line gives ``"CODE text\\r\\n"``. Several lines give the multi-line form:
    ``"CODE-first\\r\\n"``, the middle lines each indented by one space (so that none can
    look like the last line), and ``"CODE last\\r\\n"``.

    Args:
        code: the three-digit reply code (100-599).
        text: the reply text; a list or a string with newlines for a multi-line reply.

    Returns:
        The reply as bytes, CRLF-terminated.

    Raises:
        ValueError: when ``code`` is not a three-digit reply code.
    """
    if not 100 <= code <= 599:
        raise ValueError(f"not an FTP reply code: {code!r}")
    if type(text) is str and "\n" not in text and "\r" not in text:
        return f"{code} {text}\r\n".encode("utf-8", "surrogateescape")  # the common case
    lines = text.split("\n") if isinstance(text, str) else list(text) or [""]
    if len(lines) == 1:
        return encode_text(f"{code} {_clean(lines[0])}\r\n")
    out = [f"{code}-{_clean(lines[0])}\r\n"]
    out.extend(f" {_clean(line)}\r\n" for line in lines[1:-1])
    out.append(f"{code} {_clean(lines[-1])}\r\n")
    return encode_text("".join(out))


def quote_path(path: str) -> str:
    """Return ``path`` in double quotes for a ``257`` reply, each ``"`` inside doubled
    (RFC 959 Appendix II)."""
    return '"' + path.replace('"', '""') + '"'
