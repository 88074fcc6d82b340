"""Nickname and channel-name rules and the case mapping of RFC 2812 (sans-IO).

RFC 2812 section 2.2: because of IRC's Scandinavian origin, ``{}|^`` are the lower-case
forms of ``[]\\~``; two nicknames or channel names that differ only so are the same name.
Servers announce this as ``CASEMAPPING=rfc1459`` in ``RPL_ISUPPORT``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable

__all__ = [
    "CHANNEL_PREFIXES",
    "irc_lower",
    "is_channel_name",
    "is_valid_channel",
    "is_valid_nick",
    "mask_matcher",
]

_LOWER = str.maketrans(string.ascii_uppercase + "[]\\~", string.ascii_lowercase + "{}|^")

CHANNEL_PREFIXES = "#&"
"""Channel types served: network channels (``#``) and ``&`` channels (RFC 2811 section 2.1)."""

_SPECIAL = "[]\\`_^{|}"
_NICK_FIRST = frozenset(string.ascii_letters + _SPECIAL)
_NICK_REST = frozenset(string.ascii_letters + string.digits + _SPECIAL + "-")
_CHANNEL_FORBIDDEN = frozenset("\x00\x07\r\n ,:")


def irc_lower(name: str) -> str:
    """Return the case-folded form of a nickname or channel name (RFC 2812 section 2.2),
    used as the key of every lookup."""
    return name.translate(_LOWER)


def is_valid_nick(nick: str, max_length: int = 30) -> bool:
    """Check a nickname against RFC 2812 section 2.3.1: ``( letter / special ) *(
    letter / digit / special / "-" )``, at most ``max_length`` characters (the RFC's 9 is
    raised by every current server; ``NICKLEN`` in ``RPL_ISUPPORT`` tells clients)."""
    if not nick or len(nick) > max_length or nick[0] not in _NICK_FIRST:
        return False
    return all(c in _NICK_REST for c in nick)


def is_channel_name(name: str) -> bool:
    """True when ``name`` starts like a channel name (``#`` or ``&``)."""
    return bool(name) and name[0] in CHANNEL_PREFIXES


def is_valid_channel(name: str, max_length: int = 50) -> bool:
    """Check a channel name (RFC 2812 section 1.3): a ``#`` or ``&`` prefix, at most
    ``max_length`` characters, none of NUL, BELL, CR, LF, space, comma or colon."""
    if len(name) < 2 or len(name) > max_length or name[0] not in CHANNEL_PREFIXES:
        return False
    return not any(c in _CHANNEL_FORBIDDEN for c in name)


def mask_matcher(mask: str) -> Callable[[str], bool]:
    """Compile an IRC wildcard mask (``*`` any run, ``?`` one character; RFC 2812 section
    2.5) into a test of a whole case-folded name.

    The mask is cut at its stars into pieces of fixed length; the first must begin the
    name, the last end it, and each one between is found leftmost after the one before
    (which is enough for ``*``), so matching costs at most one scan of the name per piece,
    never the exponential backtracking a regular expression of ``.*`` runs can take on
    ``*a*a*a...b`` against ``aaaa...``.

    Args:
        mask: the mask as the client gave it (case-folded here).

    Returns:
        ``match(name)``: True when the case-folded ``name`` matches the whole mask.
    """
    pieces = [_piece(part) for part in irc_lower(mask).split("*")]
    if len(pieces) == 1:
        whole, size = pieces[0]
        return lambda name: len(name) == size and whole.match(name) is not None
    (first, first_size), (last, last_size) = pieces[0], pieces[-1]
    middle = [piece for piece in pieces[1:-1] if piece[1]]
    shortest = first_size + last_size + sum(size for _, size in middle)

    def match(name: str) -> bool:
        if len(name) < shortest or first.match(name) is None:
            return False
        end = len(name) - last_size
        if last.match(name, end) is None:
            return False
        pos = first_size
        for piece, _ in middle:
            found = piece.search(name, pos, end)
            if found is None:
                return False
            pos = found.end()
        return True

    return match


def _piece(text: str) -> tuple[re.Pattern[str], int]:
    """A star-free part of a mask: a pattern of fixed length (``?`` any one character)
    and that length."""
    pattern = "".join("." if c == "?" else re.escape(c) for c in text)
    return re.compile(pattern, re.DOTALL), len(text)
