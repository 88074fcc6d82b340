"""A client of the chat network: its identity, modes and membership (sans-IO).

The transport that carries the client (an IRC connection, a WebSocket, the simple telnet
mode) gives the user two callables: ``send(line)`` queues one encoded line (CR LF
included) and ``close(reason)`` ends the link after the lines already queued.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medusa.chat.fanout import SharedLines
    from medusa.chat.ircchannel import IRCChannel

__all__ = ["User"]


class User:
    """One client, registered or not.

    Args:
        host: the client's address as shown in its prefix (an IP address: the server makes
            no DNS lookups).
        send: queues one line (bytes, CR LF included) for the client.
        close: ends the link with a reason (the transport sends ``ERROR`` first).
        kind: how the client is connected: ``"irc"``, ``"web"`` or ``"simple"``.
        share: for a transport that writes a channel's :class:`~medusa.chat.fanout.SharedLines`
            itself (an IRC connection), a callable that takes one; ``None``: channel lines
            come one by one through ``send``.

    Attributes:
        nick: the nickname (``"*"`` until one is accepted); ``key`` is its case-folded form.
        username, realname: from ``USER``.
        modes: user modes set (``"i"``, ``"w"``).
        away: the away message, or ``None``.
        channels: the channels joined, in join order.
        registered: True once the welcome was sent.
        gone: True once the user left the network (QUIT, error, lost connection).
        signon: wall-clock time of registration, seconds since the epoch.
        last_spoke: :func:`time.monotonic` time of the last PRIVMSG/NOTICE, for WHOIS idle.
    """

    __slots__ = (
        "away",
        "cap_negotiating",
        "channels",
        "close",
        "gone",
        "host",
        "key",
        "kind",
        "last_spoke",
        "modes",
        "nick",
        "password_ok",
        "prefix",
        "realname",
        "registered",
        "send",
        "share",
        "signon",
        "username",
    )

    def __init__(
        self,
        host: str,
        send: Callable[[bytes], None],
        close: Callable[[str], None],
        kind: str = "irc",
        share: Callable[[SharedLines], None] | None = None,
    ) -> None:
        self.host = host
        self.send = send
        self.share = share
        self.close = close
        self.kind = kind
        self.nick = "*"
        self.key = ""
        self.username = ""
        self.realname = ""
        self.prefix = "*"
        self.modes: set[str] = set()
        self.away: str | None = None
        self.channels: dict[str, IRCChannel] = {}
        self.registered = False
        self.gone = False
        self.cap_negotiating = False
        self.password_ok = False
        self.signon = time.time()
        self.last_spoke = time.monotonic()

    def update_prefix(self) -> None:
        """Recompute :attr:`prefix` (``nick!user@host``) after a nick or user change."""
        self.prefix = f"{self.nick}!{self.username or '~'}@{self.host}"

    def __repr__(self) -> str:
        return f"<User {self.nick} {self.host}>"
