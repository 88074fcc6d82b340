"""The FTP server: a :class:`~medusa.core.server.Server` whose channels speak FTP."""

from __future__ import annotations

from typing import ClassVar

from medusa.core.channel import Channel
from medusa.core.server import Server

__all__ = ["FTPServer"]


class FTPServer(Server):
    """An FTP server (RFC 959). Placeholder: the protocol is being built (issue 4)."""

    name: ClassVar[str] = "ftp"
    default_port: ClassVar[int] = 8021
    description: ClassVar[str] = "FTP server (RFC 959, FTPS)"

    def make_channel(self) -> Channel:
        """Return a channel for an accepted control connection."""
        raise NotImplementedError
