"""Channel fan-out without per-recipient work: the lines a channel sends during one
event-loop iteration are kept once, in a :class:`SharedLines`, and each member's connection
writes them when it flushes (sans-IO).

Without it a message to a channel of N members costs N queue operations in Python before
the N writes; with it a message costs one append, and each member costs one reference per
iteration, however many messages the iteration carried. A member never receives its own
PRIVMSG or NOTICE (RFC 2812 section 3.3.1: the server relays the message to the *other*
members), so the sender of each line is kept beside it and skipped for that member only.

Order is kept per recipient: a connection that receives a line of its own (a reply, a
private message, a JOIN or PART) while it holds shared lines first takes the shared lines
received so far (:meth:`SharedLines.take`), then queues its own; and a channel whose
membership changes stops adding to its current :class:`SharedLines` (the network seals it),
so a member who joins gets no earlier line and a member who left gets no later one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medusa.chat.user import User

__all__ = ["SharedLines"]


class SharedLines:
    """The encoded lines (CR LF included) one channel sent in one loop iteration, with
    their senders.

    Attributes:
        lines: the lines in order.
        senders: the user who sent each line (``None``: the server), parallel to ``lines``.
        sealed: True once no more lines will be added (the iteration ended, or the
            channel's membership changed).
    """

    __slots__ = ("_everything", "_sender_set", "lines", "sealed", "senders")

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self.senders: list[User | None] = []
        self.sealed = False
        self._sender_set: set[User] = set()
        self._everything: bytes | None = None

    def append(self, line: bytes, sender: User | None) -> None:
        """Add one line sent by ``sender`` (who will not receive it)."""
        self.lines.append(line)
        self.senders.append(sender)
        if sender is not None:
            self._sender_set.add(sender)

    def seal(self) -> None:
        """No more lines: from now on the joined bytes are computed once for everyone."""
        self.sealed = True

    def take(self, user: User, start: int) -> bytes:
        """The lines from index ``start`` on that ``user`` receives (those it did not send),
        joined into one bytes object (``b""`` when there are none)."""
        lines = self.lines
        if user not in self._sender_set:
            if start == 0:
                if self._everything is not None:
                    return self._everything
                everything = b"".join(lines)
                if self.sealed:
                    self._everything = everything
                return everything
            return b"".join(lines[start:])
        return b"".join(
            [
                line
                for line, sender in zip(lines[start:], self.senders[start:], strict=True)
                if sender is not user
            ]
        )

    def __len__(self) -> int:
        return len(self.lines)
