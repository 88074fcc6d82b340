"""Nickname and channel-name rules and the case mapping of RFC 2812 (sans-IO).

RFC 2812 section 2.2: because of IRC's Scandinavian origin, ``{}|^`` are the lower-case
forms of ``[]\\~``; two nicknames or channel names that differ only so are the same name.
Servers announce this as ``CASEMAPPING=rfc1459`` in ``RPL_ISUPPORT``.
"""

from __future__ import annotations

import re
import string

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


def mask_matcher(mask: str) -> re.Pattern[str]:
    """Compile an IRC wildcard mask (``*`` any run, ``?`` one character; RFC 2812 section
    2.5) into a pattern to ``fullmatch`` against case-folded names."""
    parts = []
    for c in irc_lower(mask):
        if c == "*":
            parts.append(".*")
        elif c == "?":
            parts.append(".")
        else:
            parts.append(re.escape(c))
    return re.compile("".join(parts), re.DOTALL)
