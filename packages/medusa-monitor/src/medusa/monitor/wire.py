"""The monitor's wire protocol (version 1), without any I/O.

Every message starts with one line of ASCII words ending in ``\\n``; a message that carries
text ends its line with the text's length in bytes and is followed by exactly that many
bytes of UTF-8. Server to client::

    HELLO medusa-monitor/1 hmac-sha256 NONCE   challenge: NONCE is 64 hex digits (32 bytes)
    HELLO medusa-monitor/1 peercred            Unix socket without a secret: no answer needed
    OK N\\n<N bytes>                            logged in; the bytes are the banner
    DENIED REASON                              refused (secret, locked, peer); then closed
    MORE                                       the statement goes on: send the next line
    RESULT ok N\\n<N bytes>                     executed; the bytes are its output
    RESULT error N\\n<N bytes>                  it raised (or did not compile); output and
                                               traceback

Client to server::

    AUTH ANSWER        ANSWER: HMAC-SHA256(secret, nonce) as 64 hex digits
    LINE TEXT          one line of interactive input (the rest of the line, UTF-8)
    EXEC N\\n<N bytes>  a whole block of source, run at once (``medusa-monitor -c``)
    RESET              forget a statement begun with LINE (answered RESULT ok 0)
    CANCEL             cancel the awaited code running now (it answers RESULT error)

A client sends one request and waits for its answer before the next (CANCEL excepted).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "PROTOCOL",
    "Hello",
    "ProtocolError",
    "Request",
    "auth",
    "cancel",
    "denied",
    "exec_block",
    "hello",
    "line",
    "more",
    "ok",
    "parse_hello",
    "parse_reply_head",
    "parse_request",
    "reset",
    "result",
]

PROTOCOL = "medusa-monitor/1"
"""The protocol name and version sent in ``HELLO``."""

HMAC_SHA256 = "hmac-sha256"
PEERCRED = "peercred"

_HEX64 = re.compile(r"[0-9a-f]{64}")


class ProtocolError(ValueError):
    """A message that does not follow the protocol."""


# -- server side -----------------------------------------------------------------------------


def hello(nonce: bytes | None) -> bytes:
    """The greeting: a challenge with ``nonce``, or ``peercred`` when ``None``."""
    if nonce is None:
        return f"HELLO {PROTOCOL} {PEERCRED}\n".encode()
    return f"HELLO {PROTOCOL} {HMAC_SHA256} {nonce.hex()}\n".encode()


def ok(banner: str) -> bytes:
    """Login accepted, with the banner text."""
    body = banner.encode("utf-8", "replace")
    return b"OK %d\n" % len(body) + body


def denied(reason: str) -> bytes:
    """Login refused for ``reason`` (one word)."""
    return f"DENIED {reason}\n".encode()


def more() -> bytes:
    """The statement is incomplete."""
    return b"MORE\n"


def result(success: bool, output: str) -> bytes:
    """An execution's outcome and output."""
    body = output.encode("utf-8", "replace")
    return b"RESULT %s %d\n" % (b"ok" if success else b"error", len(body)) + body


@dataclass(frozen=True, slots=True)
class Request:
    """One client request line, parsed.

    Attributes:
        kind: ``AUTH``, ``LINE``, ``EXEC``, ``RESET`` or ``CANCEL``.
        text: the input line of ``LINE``; for ``AUTH`` the answer's hex digits.
        length: the byte count that follows ``EXEC``.
    """

    kind: str
    text: str = ""
    length: int = 0


def parse_request(raw: bytes, *, max_length: int) -> Request:
    """Parse one request line (without its ``\\n``; a trailing ``\\r`` is dropped from
    every kind but ``LINE``).

    Args:
        raw: the line's bytes.
        max_length: the largest ``EXEC`` block accepted, bytes.

    Raises:
        ProtocolError: an unknown request, bad UTF-8, a malformed answer or length.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("the request is not UTF-8") from None
    kind, _, rest = text.partition(" ")
    if kind == "LINE":
        return Request("LINE", rest)
    rest = rest.rstrip("\r")
    kind = kind.rstrip("\r")
    if kind == "AUTH":
        if not _HEX64.fullmatch(rest):
            raise ProtocolError("AUTH needs 64 lower-case hex digits")
        return Request("AUTH", rest)
    if kind == "EXEC":
        if not rest.isascii() or not rest.isdigit() or len(rest) > 12:
            raise ProtocolError("EXEC needs a byte count")
        length = int(rest)
        if length > max_length:
            raise ProtocolError(f"EXEC block over {max_length} bytes")
        return Request("EXEC", length=length)
    if kind in ("RESET", "CANCEL") and not rest:
        return Request(kind)
    raise ProtocolError(f"unknown request {kind[:20]!r}")


# -- client side -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Hello:
    """A parsed greeting.

    Attributes:
        method: ``hmac-sha256`` or ``peercred``.
        nonce: the challenge (empty for ``peercred``).
    """

    method: str
    nonce: bytes = b""


def parse_hello(raw: bytes) -> Hello:
    """Parse the server's first line (without ``\\n``).

    Raises:
        ProtocolError: not a medusa-monitor/1 greeting (or ``DENIED``: see the message).
    """
    words = raw.decode("ascii", "replace").split()
    if words[:1] == ["DENIED"]:
        raise ProtocolError(f"login refused: {' '.join(words[1:]) or 'no reason'}")
    if len(words) < 3 or words[0] != "HELLO" or words[1] != PROTOCOL:
        raise ProtocolError(f"not a Medusa monitor: {raw[:80]!r}")
    if words[2] == PEERCRED and len(words) == 3:
        return Hello(PEERCRED)
    if words[2] == HMAC_SHA256 and len(words) == 4 and _HEX64.fullmatch(words[3]):
        return Hello(HMAC_SHA256, bytes.fromhex(words[3]))
    raise ProtocolError(f"unsupported login method: {raw[:80]!r}")


def parse_reply_head(raw: bytes) -> tuple[str, list[str], int]:
    """Parse a reply's first line (without ``\\n``).

    Returns:
        ``(kind, words, length)``: the kind (``OK``, ``DENIED``, ``MORE``, ``RESULT``),
        the words after it, and the byte count of the text that follows (0 when none).

    Raises:
        ProtocolError: an unknown reply or a bad length.
    """
    words = raw.decode("ascii", "replace").split()
    if not words:
        raise ProtocolError("empty reply")
    kind, args = words[0], words[1:]
    if kind in ("OK", "RESULT"):
        need = 1 if kind == "OK" else 2
        length = args[-1] if len(args) == need else ""
        if not (length.isascii() and length.isdigit()) or len(length) > 12:
            raise ProtocolError(f"malformed {kind} reply: {raw[:80]!r}")
        if kind == "RESULT" and args[0] not in ("ok", "error"):
            raise ProtocolError(f"malformed RESULT reply: {raw[:80]!r}")
        return kind, args[:-1], int(args[-1])
    if kind in ("DENIED", "MORE"):
        return kind, args, 0
    raise ProtocolError(f"unknown reply {raw[:80]!r}")


def auth(answer: bytes) -> bytes:
    """The ``AUTH`` request for an HMAC answer."""
    return b"AUTH " + answer.hex().encode() + b"\n"


def line(text: str) -> bytes:
    """The ``LINE`` request for one input line.

    Raises:
        ValueError: the text holds a newline.
    """
    if "\n" in text:
        raise ValueError("a LINE cannot hold a newline")
    return b"LINE " + text.encode("utf-8", "surrogateescape") + b"\n"


def exec_block(source: str) -> bytes:
    """The ``EXEC`` request for a block of source."""
    body = source.encode("utf-8", "surrogateescape")
    return b"EXEC %d\n" % len(body) + body


def reset() -> bytes:
    """The ``RESET`` request."""
    return b"RESET\n"


def cancel() -> bytes:
    """The ``CANCEL`` request."""
    return b"CANCEL\n"
