"""A WSGI application's response head, checked and encoded (PEP 3333 "The start_response()
Callable"), sans-IO.

``start_response(status, response_headers)`` gives a status string (``"200 OK"``) and a
list of ``(name, value)`` string pairs. They are checked here, in the application's thread,
and turned into a :class:`ResponseHead`:

* the status must be three digits, a space and a reason phrase (2xx to 5xx: an application
  does not send interim 1xx responses, RFC 9110 §15.2); the server writes its own reason
  phrase for the code;
* names must be tokens (RFC 9110 §5.1) and values Latin-1 text without CR, LF or NUL
  (§5.5), as PEP 3333 requires of native strings;
* ``Content-Length`` (RFC 9110 §8.6) must be digits: it becomes the response's framing;
* hop-by-hop fields (RFC 9110 §7.6.1: ``Connection``, ``Keep-Alive``,
  ``Transfer-Encoding``, ``TE``, ``Trailer``, ``Upgrade``, ``Proxy-Authenticate``,
  ``Proxy-Authorization``) are the server's business (PEP 3333 forbids them to
  applications): they are dropped, as gunicorn drops them, except that ``Connection:
  close`` makes the connection close after the response;
* ``Date`` and ``Server`` are written by the server on every response: the application's
  are dropped, so that a response never carries two.

Anything else wrong raises :class:`WSGIHeadError` (an application error: 500, logged).
"""

from __future__ import annotations

import re
from typing import Final

__all__ = [
    "HOP_BY_HOP",
    "ResponseHead",
    "WSGIHeadError",
    "make_response_head",
    "response_head",
]

HOP_BY_HOP: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
"""Header field names (lower case) an application may not send (RFC 9110 §7.6.1)."""

_SERVER_FIELDS: Final = frozenset({"date", "server"})

_DROPPED: Final = HOP_BY_HOP | _SERVER_FIELDS

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

_KNOWN_NAMES: dict[str, str] = {}
"""Valid field names seen so far, by name, mapped to their lower case (up to 1,024)."""
_KNOWN_MAX = 1024


class WSGIHeadError(ValueError):
    """A status or header list given to ``start_response`` that cannot be sent."""


class ResponseHead:
    """A checked response head.

    Attributes:
        status: the status code (200 to 599).
        fields: the header lines to send, each ending in CRLF, Latin-1 bytes, without
            ``Content-Length`` and the dropped fields.
        length: the application's ``Content-Length`` in bytes, or ``None``.
        close: True when the application asked for ``Connection: close``.
        pairs: the ``(name, value)`` pairs of :attr:`fields`.
    """

    __slots__ = ("close", "fields", "length", "pairs", "status")

    def __init__(
        self,
        status: int,
        fields: bytes,
        length: int | None,
        close: bool,
        pairs: list[tuple[str, str]],
    ) -> None:
        self.status = status
        self.fields = fields
        self.length = length
        self.close = close
        self.pairs = pairs


def parse_status(status: object) -> int:
    """Return the code of a WSGI status string such as ``"404 Not Found"``.

    Raises:
        WSGIHeadError: when ``status`` is not a str of three digits (200 to 599), a space
            and a reason phrase without CR or LF.
    """
    if type(status) is not str:
        raise WSGIHeadError(f"status must be a str, not {type(status).__name__}")
    code = status[:3]
    if (
        len(status) < 4
        or not code.isdigit()
        or not code.isascii()
        or status[3] != " "
        or "\r" in status
        or "\n" in status
    ):
        raise WSGIHeadError(f"malformed status {status!r} (PEP 3333: '200 OK')")
    value = int(code)
    if not 200 <= value <= 599:
        raise WSGIHeadError(f"status {value} is not a final status (200 to 599)")
    return value


def field_name(name: object) -> str:
    """Return the lower case of a valid field ``name``.

    Raises:
        WSGIHeadError: when it is not a str token (RFC 9110 §5.1).
    """
    lower = _KNOWN_NAMES.get(name) if type(name) is str else None
    if lower is not None:
        return lower
    if type(name) is not str or _TOKEN.fullmatch(name) is None:
        raise WSGIHeadError(f"invalid header field name {name!r}")
    lower = name.lower()
    if len(_KNOWN_NAMES) < _KNOWN_MAX:
        _KNOWN_NAMES[name] = lower
    return lower


_HEADS: dict[object, ResponseHead] = {}
"""Heads made so far, by ``(status, *headers)`` (up to 1,024): an application's usual few
responses are then a dictionary lookup."""


def response_head(status: object, headers: object) -> ResponseHead:
    """Check and encode what an application gave ``start_response`` (see
    :func:`make_response_head`), remembering the usual few.

    Raises:
        WSGIHeadError: as :func:`make_response_head`.
    """
    try:
        key = (status, *headers)  # type: ignore[misc]
        head = _HEADS.get(key)
    except TypeError:  # not iterable, or an unhashable item: checked below
        return make_response_head(status, headers)
    if head is None:
        head = make_response_head(status, headers)
        if len(_HEADS) < _HEADS_MAX:
            _HEADS[key] = head
    return head


_HEADS_MAX = 1024


def make_response_head(status: object, headers: object) -> ResponseHead:
    """Check and encode what an application gave ``start_response``.

    Args:
        status: the status string (``"200 OK"``).
        headers: a list of ``(name, value)`` pairs of str.

    Returns:
        the :class:`ResponseHead` to send.

    Raises:
        WSGIHeadError: for a malformed status, header list, name or value, or a
            ``Content-Length`` that is not a number of bytes.
    """
    code = parse_status(status)
    if not isinstance(headers, (list, tuple)):
        raise WSGIHeadError(f"response headers must be a list, not {type(headers).__name__}")
    pairs: list[tuple[str, str]] = []
    lines: list[str] = []
    length: int | None = None
    close = False
    for pair in headers:
        if type(pair) is not tuple or len(pair) != 2:
            raise WSGIHeadError(f"a response header must be a (name, value) tuple: {pair!r}")
        name, value = pair
        lower = field_name(name)
        if type(value) is not str:
            raise WSGIHeadError(f"header {name!r}: the value must be a str: {value!r}")
        if "\r" in value or "\n" in value or "\0" in value:
            raise WSGIHeadError(f"header {name!r}: CR, LF or NUL in the value {value!r}")
        if lower in _DROPPED:
            if lower == "connection" and "close" in value.lower():
                close = True
            continue
        if lower == "content-length":
            text = value.strip()
            if not text.isdigit() or not text.isascii():
                raise WSGIHeadError(f"malformed Content-Length {value!r}")
            length = int(text)
            continue
        pairs.append((name, value))
        lines.append(f"{name}: {value}\r\n")
    try:
        fields = "".join(lines).encode("latin-1")
    except UnicodeEncodeError as exc:
        raise WSGIHeadError(f"a response header is not Latin-1 text: {exc}") from None
    return ResponseHead(code, fields, length, close, pairs)
