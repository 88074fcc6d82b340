"""The server's side of the WebSocket opening handshake (RFC 6455 §4.2), without I/O: the
checks of a client's handshake request (§4.2.1) and the ``101`` response head that accepts
it (§4.2.2). :mod:`medusa.http.asgiwebsocket` uses them."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Mapping

__all__ = [
    "VERSION",
    "HandshakeError",
    "accept_head",
    "accept_token",
    "check_handshake",
    "offered_subprotocols",
]

VERSION = "13"
"""The one ``Sec-WebSocket-Version`` of RFC 6455 (§4.1)."""

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
"""The fixed GUID appended to the key before hashing (RFC 6455 §1.3)."""


class HandshakeError(Exception):
    """A handshake request that cannot be accepted: answer ``status`` (400, or 426 with
    ``Sec-WebSocket-Version: 13`` for a version not understood, RFC 6455 §4.4) with
    ``headers`` (``(name, value)`` pairs); ``str(error)`` says why, for the log line and the
    error page."""

    def __init__(self, status: int, message: str, headers: list[tuple[str, str]]) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


def _tokens(value: str) -> list[str]:
    """The comma-separated tokens of a field value, lower-cased (RFC 9110 §5.6.1)."""
    return [token.strip().lower() for token in value.split(",") if token.strip()]


def check_handshake(method: str, version: str, headers: Mapping[str, str]) -> str:
    """Check a client's opening handshake (RFC 6455 §4.2.1) and return its
    ``Sec-WebSocket-Key``.

    Args:
        method: the request method (``"GET"`` is the only one allowed).
        version: the HTTP version, ``"1.0"`` or ``"1.1"`` (1.1 at least is required).
        headers: the request's fields, names lower-case.

    Raises:
        HandshakeError: 400 for a method other than GET, HTTP/1.0, no ``Upgrade:
            websocket``, no ``upgrade`` token in ``Connection``, a ``Sec-WebSocket-Key``
            missing or not 16 bytes in base64; 426 with ``Sec-WebSocket-Version: 13`` for a
            ``Sec-WebSocket-Version`` missing or other than 13.
    """
    if method != "GET":
        raise HandshakeError(400, "a WebSocket handshake is a GET request", [])
    if version == "1.0":
        raise HandshakeError(400, "a WebSocket handshake needs HTTP/1.1", [])
    if "websocket" not in _tokens(headers.get("upgrade", "")):
        raise HandshakeError(400, "no Upgrade: websocket", [])
    if "upgrade" not in _tokens(headers.get("connection", "")):
        raise HandshakeError(400, "no Connection: upgrade", [])
    if headers.get("sec-websocket-version", "").strip() != VERSION:
        raise HandshakeError(
            426,
            "unsupported Sec-WebSocket-Version (13 is supported)",
            [("Sec-WebSocket-Version", VERSION)],
        )
    key = headers.get("sec-websocket-key", "").strip()
    try:
        nonce = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        nonce = b""
    if len(nonce) != 16:
        raise HandshakeError(400, "missing or invalid Sec-WebSocket-Key", [])
    return key


def offered_subprotocols(headers: Mapping[str, str]) -> list[str]:
    """The subprotocols the client offers in ``Sec-WebSocket-Protocol`` (RFC 6455 §4.1,
    repeated fields joined by ``", "``), in its order of preference, as sent."""
    value = headers.get("sec-websocket-protocol", "")
    return [token.strip() for token in value.split(",") if token.strip()]


def accept_token(key: str) -> str:
    """The ``Sec-WebSocket-Accept`` value for a ``Sec-WebSocket-Key`` (RFC 6455 §4.2.2
    item 5.4): base64 of the SHA-1 of the key and the protocol's GUID."""
    digest = hashlib.sha1(key.encode("ascii") + _GUID, usedforsecurity=False).digest()
    return base64.b64encode(digest).decode()


def accept_head(
    prefix: bytes,
    key: str,
    subprotocol: str | None,
    headers: Iterable[tuple[bytes, bytes]],
) -> bytes:
    """The whole ``101 Switching Protocols`` response head that accepts a handshake.

    Args:
        prefix: the status line and the server's common fields (``Server``, ``Date``),
            each line ending in CRLF.
        key: the client's ``Sec-WebSocket-Key`` (:func:`check_handshake`).
        subprotocol: the subprotocol chosen (``Sec-WebSocket-Protocol``), or None.
        headers: further ``(name, value)`` fields as bytes (an application's).

    Raises:
        ValueError: for a field name or value with CR, LF or NUL (header injection), or a
            name with ``:``; or a subprotocol with one of those.
    """
    lines = [
        prefix,
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
        accept_token(key).encode("ascii"),
        b"\r\n",
    ]
    fields = list(headers)
    if subprotocol is not None:
        fields.append((b"Sec-WebSocket-Protocol", subprotocol.encode("latin-1")))
    for name, value in fields:
        if not name or any(c in name for c in b"\r\n\0: ") or any(c in value for c in b"\r\n\0"):
            raise ValueError(f"invalid header field {name!r}: {value!r}")
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)
