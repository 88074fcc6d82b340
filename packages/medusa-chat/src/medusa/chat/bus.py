"""What a chat network needs from a bus that shares it with other processes (nodes): the
narrow interface between the sans-IO :class:`~medusa.chat.network.Network` and an
implementation (:mod:`medusa.chat.redisbus`, Redis; the tests also use an in-memory one).

Every node keeps a replica of the whole network: its own users (``User.node == ""``) and
the users of the other nodes (``User.node`` is their node's id), the channels with all
their members, topics and modes. A node changes its replica at once for its own users'
commands and tells the others with **records** (:mod:`medusa.chat.replica` builds and
applies them); the records of one node reach every other node in the order it published
them, so each node delivers a sender's lines in the order they were sent. Lines for a
channel travel once per node (each node writes them to its own members), never once per
member.

What needs one answer for the whole network goes through the bus itself: a nickname is
claimed atomically (:meth:`Bus.claim_nick`), so two nodes registering one nick at once give
it to exactly one. A node that stops (crash, ``kill -9``, lost bus) is found by the others
when its heartbeat ends: its users quit (``node lost``) and its nicks are freed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from medusa.chat.user import User

__all__ = ["CLAIMED", "TAKEN", "UNREACHABLE", "Bus", "Record"]

Record = list[Any]
"""One change or delivery, a JSON array whose first item names it (see
:mod:`medusa.chat.replica`)."""

CLAIMED = "claimed"
"""A nick claim's answer: the nick is the user's."""

TAKEN = "taken"
"""A nick claim's answer: another user (on any node) holds the nick (433)."""

UNREACHABLE = "unreachable"
"""A nick claim's answer: the bus cannot be reached; no nick can be given now (437)."""


class Bus(Protocol):
    """A bus as the network uses it (every method returns at once; I/O happens later).

    Attributes:
        node: this node's id, unique on the bus (in records and nick claims).
        up: True while the bus is reachable.
    """

    node: str
    up: bool

    def publish(self, record: Record) -> None:
        """Send ``record`` to every other node, after the records published before it."""

    def claim_nick(self, user: User, nick: str) -> None:
        """Claim the nick ``nick`` (any case) for the local ``user`` on the whole network;
        the answer (:data:`CLAIMED`, :data:`TAKEN` or :data:`UNREACHABLE`) comes later
        through :meth:`medusa.chat.network.Network.nick_claimed`. A user's own nick (its
        case changed) is :data:`CLAIMED` again."""

    def release_nick(self, user: User, key: str) -> None:
        """Free the nick ``key`` held by the local ``user`` (it quit or changed nick);
        nothing happens when it is not that user's."""
