"""What a channel needs from the server that accepted its connection: the narrow interface
:attr:`Channel.server <medusa.core.channel.Channel.server>` is typed with.

:class:`~medusa.core.server.Server` implements it (so does any subclass); a channel used on
its own (a client, a test) has no server. Core's channel code (the channel, its
:class:`~medusa.core.proxyreader.ProxyHeaderReader`) uses nothing of the server beyond
these members, and changes nothing but the counters' fields.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from medusa.core.address import Address
    from medusa.core.channel import Channel
    from medusa.core.stats import Counters
    from medusa.core.trusted import TrustedNetworks

__all__ = ["ChannelServer"]


class ChannelServer(Protocol):
    """The server as its channels see it."""

    @property
    def name(self) -> str:
        """The server type's name (``http``), for log lines."""

    @property
    def address(self) -> Address:
        """Where the server listens, for log lines."""

    @property
    def counters(self) -> Counters:
        """The server's statistics; a channel adds its bytes in and out and its errors."""

    @property
    def write_high_water(self) -> int | None:
        """Default outgoing backlog (bytes) above which a channel stops producing and
        reading; ``None``: asyncio's default."""

    @property
    def write_low_water(self) -> int | None:
        """Default backlog (bytes) below which it resumes; ``None``: asyncio's default."""

    @property
    def idle_timeout(self) -> float:
        """Default seconds without traffic before a channel's timeout (0: never)."""

    @property
    def sendfile(self) -> bool:
        """Whether channels may send files with ``os.sendfile`` (plain sockets only)."""

    @property
    def proxy_trusted(self) -> TrustedNetworks | None:
        """The peers that must open with a PROXY protocol header, or ``None`` when the
        server takes none (see :class:`~medusa.core.proxyreader.ProxyHeaderReader`)."""

    @property
    def proxy_timeout(self) -> float:
        """Seconds a trusted peer has to send its whole PROXY header."""

    def channel_opened(self, channel: Channel) -> bool:
        """Register a newly connected channel; False when the server turned it away
        (the channel then does nothing more: it is being closed)."""

    def channel_closed(self, channel: Channel) -> None:
        """Unregister a channel whose connection was lost."""
