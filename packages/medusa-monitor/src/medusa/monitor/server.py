"""The monitor server: a :class:`~medusa.core.server.Server` (being built)."""

from __future__ import annotations

from typing import ClassVar

from medusa.core.channel import Channel
from medusa.core.server import Server

__all__ = ["MonitorServer"]


class MonitorServer(Server):
    """secure remote Python prompt (monitor). Placeholder: the protocol is being built."""

    name: ClassVar[str] = "monitor"
    default_port: ClassVar[int] = 8023
    description: ClassVar[str] = "secure remote Python prompt (monitor)"
    start_by_default: ClassVar[bool] = False  # only with --monitor ADDR and a secret

    def make_channel(self) -> Channel:
        """Return a channel for an accepted connection."""
        raise NotImplementedError
