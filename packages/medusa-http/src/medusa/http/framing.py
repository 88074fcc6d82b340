"""Response framing, the one place it is decided (RFC 9112 §6), sans-IO.

* A response whose length is known gets ``Content-Length``; otherwise an HTTP/1.1
  response is sent with ``Transfer-Encoding: chunked`` (each piece framed by
  :func:`chunk`, the end by :data:`LAST_CHUNK`) and an HTTP/1.0 one is ended by closing the
  connection.
* 1xx, 204 and 304 responses have no body and no length field (RFC 9110 §8.6, §15.3.5,
  §15.4.5); a HEAD response carries the length a GET would have, and no body (RFC 9110
  §9.3.2).
* ``Connection: close`` on a response after which the connection closes; ``Connection:
  keep-alive`` on a persistent HTTP/1.0 response (RFC 9112 §9.3).
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "LAST_CHUNK",
    "LENGTH_FIELDS",
    "NO_BODY_STATUSES",
    "chunk",
    "frame_head",
    "length_field",
]

NO_BODY_STATUSES: Final = frozenset({204, 304})
"""Final statuses whose responses never have a body."""

LAST_CHUNK: Final = b"0\r\n\r\n"
"""The last chunk of a chunked body, with an empty trailer section (RFC 9112 §7.1)."""

LENGTH_FIELDS: dict[int, bytes] = {}
"""The ``Content-Length`` line and the blank line ending a head, by length, as
:func:`length_field` makes them (read it first on a hot path: a dictionary lookup costs
less than a call; never write to it)."""

_LENGTH_CACHE_MAX = 1024
"""Entries :data:`LENGTH_FIELDS` holds at most (past it, lines are made anew)."""


def length_field(length: int) -> bytes:
    """``Content-Length: <length>`` (bytes) and the blank line that ends a head, cached."""
    line = LENGTH_FIELDS.get(length)
    if line is None:
        line = b"Content-Length: %d\r\n\r\n" % length
        if len(LENGTH_FIELDS) < _LENGTH_CACHE_MAX:
            LENGTH_FIELDS[length] = line
    return line


def frame_head(
    prefix: bytes,
    fields: bytes,
    status: int,
    method: str,
    version: str,
    keep_alive: bool,
    length: int | None,
) -> tuple[bytes, bool, bool]:
    """Frame the head of a response: ``prefix`` (status line, ``Server``, ``Date``), the
    encoded header ``fields`` (lines ending in CRLF), then the framing fields chosen for a
    body of ``length`` bytes (``None``: unknown) to a ``method`` request over HTTP/
    ``version`` on a connection that is to stay open when ``keep_alive``, and the blank
    line.

    Returns:
        ``(head, chunked, keep_alive)``: the head's bytes; whether the body must go through
        :func:`chunk`; whether the connection stays open after the response.
    """
    chunked = False
    if status in NO_BODY_STATUSES or status < 200:
        pass
    elif length is not None:
        if keep_alive and version == "1.1":
            return (
                prefix + fields + (LENGTH_FIELDS.get(length) or length_field(length)),
                False,
                True,
            )
        fields += b"Content-Length: %d\r\n" % length
    elif method == "HEAD":
        pass
    elif version == "1.1":
        chunked = True
        fields += b"Transfer-Encoding: chunked\r\n"
    else:
        keep_alive = False  # HTTP/1.0: the close marks the end of the body
    if not keep_alive:
        end = b"Connection: close\r\n\r\n"
    elif version == "1.0":
        end = b"Connection: keep-alive\r\n\r\n"
    else:
        end = b"\r\n"
    return prefix + fields + end, chunked, keep_alive


def chunk(data: bytes) -> bytes:
    """Frame ``data`` (not empty) as one chunk (RFC 9112 §7.1)."""
    return b"%x\r\n%b\r\n" % (len(data), data)
