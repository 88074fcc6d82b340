"""An IRC channel: members with their ``o``/``v`` flags, topic, modes, key, limit,
invitations (sans-IO; RFC 2811)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medusa.chat.fanout import SharedLines
    from medusa.chat.user import User

__all__ = ["IRCChannel"]


class IRCChannel:
    """One channel of the network.

    Args:
        name: the name as first given (``#Medusa``); :attr:`key` is its case-folded form.
        key: the case-folded name.

    Attributes:
        members: each member with its flags: ``""``, ``"o"`` (operator), ``"v"`` (voice) or
            ``"ov"``, in join order.
        modes: the flag modes set: ``"t"``, ``"n"``, ``"m"``, ``"i"``, ``"s"`` (secret),
            ``"p"`` (private) (a new channel is ``+nt``).
        password: the key of ``+k`` or ``None``.
        limit: the member limit of ``+l`` or ``None``.
        invited: case-folded nicks invited with INVITE (they pass ``+i``, ``+k`` and ``+l``).
        topic: the topic (``""`` when none); ``topic_setter`` and ``topic_time`` (seconds
            since the epoch) say who set it and when.
        created: creation time, seconds since the epoch.
        stamp: when the channel's topic, modes or invitations last changed (seconds since
            the epoch; 0.0: never), so that nodes sharing a bus keep the latest state.
        shared: the lines sent to the members in this loop iteration, shared by the members
            whose transport writes them itself (:mod:`medusa.chat.fanout`), or ``None``;
            ``direct`` lists the other members, who get each line through ``send``.
    """

    __slots__ = (
        "created",
        "direct",
        "invited",
        "key",
        "limit",
        "members",
        "modes",
        "name",
        "password",
        "shared",
        "stamp",
        "topic",
        "topic_setter",
        "topic_time",
    )

    def __init__(self, name: str, key: str) -> None:
        self.name = name
        self.key = key
        self.members: dict[User, str] = {}
        self.modes: set[str] = {"n", "t"}
        self.password: str | None = None
        self.limit: int | None = None
        self.invited: set[str] = set()
        self.topic = ""
        self.topic_setter = ""
        self.topic_time = 0
        self.created = int(time.time())
        self.stamp = 0.0
        self.shared: SharedLines | None = None
        self.direct: list[User] = []

    def send(self, data: bytes, skip: User | None = None) -> None:
        """Queue one encoded line for every member of this process but ``skip`` (members
        connected to other nodes of a bus get it from their own node)."""
        for member in self.members:
            if member is not skip and not member.node:
                member.send(data)

    def is_operator(self, user: User) -> bool:
        """True when ``user`` is a member with ``+o``."""
        return "o" in self.members.get(user, "")

    def can_speak(self, user: User) -> bool:
        """Whether ``user`` may send to the channel: ``+n`` keeps out non-members, ``+m``
        keeps out members without ``+o`` or ``+v`` (RFC 2811 sections 4.2.3, 4.2.5)."""
        flags = self.members.get(user)
        if flags is None:
            return "n" not in self.modes and "m" not in self.modes
        return "m" not in self.modes or bool(flags)

    def hidden_from(self, user: User) -> bool:
        """True when the channel is secret (``+s``) or private (``+p``) and ``user`` is not
        a member: its name is not shown to that user in LIST or NAMES without a channel
        named, nor in WHOIS and WHO replies (RFC 2811 section 4.2.6)."""
        modes = self.modes
        return ("s" in modes or "p" in modes) and user not in self.members

    def secret_from(self, user: User) -> bool:
        """True when the channel is secret (``+s``) and ``user`` is not a member: to that
        user it does not exist for TOPIC, LIST, NAMES and WHO, even named (RFC 2811 section
        4.2.6; MODE still answers, as the RFC says)."""
        return "s" in self.modes and user not in self.members

    def names_symbol(self) -> str:
        """The channel's kind in ``RPL_NAMREPLY`` (353): ``@`` secret, ``*`` private,
        ``=`` public (RFC 2812 section 5.1)."""
        modes = self.modes
        return "@" if "s" in modes else "*" if "p" in modes else "="

    def mode_string(self, show_key: bool) -> list[str]:
        """The channel's modes as ``RPL_CHANNELMODEIS`` parameters (``["+klnt", key,
        "10"]``); the key is replaced by ``*`` unless ``show_key``."""
        flags = "".join(sorted(self.modes))
        args: list[str] = []
        if self.password is not None:
            flags += "k"
            args.append(self.password if show_key else "*")
        if self.limit is not None:
            flags += "l"
            args.append(str(self.limit))
        return ["+" + flags, *args]

    @staticmethod
    def member_prefix(flags: str) -> str:
        """The NAMES/WHO prefix of a member's flags: ``@``, ``+`` or ``""``."""
        return "@" if "o" in flags else "+" if "v" in flags else ""

    def __repr__(self) -> str:
        return f"<IRCChannel {self.name} {len(self.members)} members>"
