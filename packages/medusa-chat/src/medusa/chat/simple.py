"""The original Medusa chat server's simple mode on its own address, for telnet users: the
transport of a :class:`~medusa.chat.simplesession.SimpleSession` (lines framed at LF, at
most 512 bytes kept of one)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from medusa.chat.connection import peer_host
from medusa.chat.message import MAX_LINE
from medusa.chat.simplesession import SimpleSession
from medusa.core.channel import Channel

if TYPE_CHECKING:
    from medusa.chat.server import ChatServer

__all__ = ["SimpleConnection"]


class SimpleConnection(Channel):
    """A telnet user of the simple mode.

    Args:
        server: the chat server (its network, ``simple_channel`` and flood settings).
    """

    terminator = b"\n"

    def __init__(self, server: ChatServer) -> None:
        super().__init__(server, max_incoming=MAX_LINE)
        self._chat = server
        self.session: SimpleSession | None = None
        self._too_long = False

    def handle_connect(self) -> None:
        """Greet and ask for a nickname (unless the address has too many connections
        already)."""
        server = self._chat
        if not server.admit(self):
            return
        self.session = SimpleSession(
            server.network,
            peer_host(self.peer),
            self.push,
            self.close_link,
            server.policy,
            time.monotonic(),
            server.simple_channel,
        )
        self.session.greet()

    def incoming_overflow(self) -> None:
        """A line over 512 bytes: skip it (the session says so)."""
        self._too_long = True

    def found_terminator(self) -> None:
        """One typed line: to the session."""
        line = self.get_incoming()
        session = self.session
        if session is None:
            return
        if self._too_long:
            self._too_long = False
            session.refuse_long_line(time.monotonic())
            return
        session.receive_line(line, time.monotonic())

    def close_link(self, reason: str) -> None:
        """Say goodbye and close once it is sent."""
        self.push(f"* Closing link ({reason})\r\n".encode("utf-8", "surrogateescape"))
        self.close_when_done()

    def handle_close(self) -> None:
        """The connection is gone: the user quits."""
        if self.session is not None:
            self.session.connection_lost()
