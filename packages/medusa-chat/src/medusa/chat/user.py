"""A client of the chat network: its identity, modes and membership (sans-IO).

The transport that carries the client (an IRC connection, a WebSocket, the simple telnet
mode) gives the user two callables: ``send(line)`` queues one encoded line (CR LF
included) and ``close(reason)`` ends the link after the lines already queued.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medusa.chat.fanout import SharedLines
    from medusa.chat.ircchannel import IRCChannel
    from medusa.chat.message import Message

_serials = itertools.count(1)

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
        node: ``""`` for a client of this process; for a user connected to another node of
            a network shared through a bus (:mod:`medusa.chat.bus`), that node's id. Such a
            *remote* user's ``send`` carries a line to its node; channel lines never go
            through it (each node delivers a channel's lines to its own members).

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
        server: the name of the server the user is connected to (WHOIS 312); ``""``: this
            one.
        held: while a nick claim waits for the bus's answer, the messages the user sent
            meanwhile (run in order once it is answered); ``None`` otherwise.
        serial: a number unique in this process (the owner of a nick claim on the bus).
    """

    __slots__ = (
        "away",
        "cap_negotiating",
        "channels",
        "close",
        "gone",
        "held",
        "host",
        "key",
        "kind",
        "last_spoke",
        "modes",
        "nick",
        "node",
        "password_ok",
        "prefix",
        "realname",
        "registered",
        "send",
        "serial",
        "server",
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
        node: str = "",
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
        self.node = node
        self.server = ""
        self.held: list[Message] | None = None
        self.serial = next(_serials)

    def update_prefix(self) -> None:
        """Recompute :attr:`prefix` (``nick!user@host``) after a nick or user change."""
        self.prefix = f"{self.nick}!{self.username or '~'}@{self.host}"

    def __repr__(self) -> str:
        return f"<User {self.nick} {self.host}>"
