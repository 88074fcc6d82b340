"""The chat server: a :class:`~medusa.core.server.Server` (being built)."""

from __future__ import annotations

from typing import ClassVar

from medusa.core.channel import Channel
from medusa.core.server import Server

__all__ = ["ChatServer"]


class ChatServer(Server):
    """IRC chat server. Placeholder: the protocol is being built."""

    name: ClassVar[str] = "chat"
    default_port: ClassVar[int] = 6667
    description: ClassVar[str] = "IRC chat server"

    def make_channel(self) -> Channel:
        """Return a channel for an accepted connection."""
        raise NotImplementedError
