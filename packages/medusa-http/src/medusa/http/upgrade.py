"""The seam through which another protocol takes an HTTP/1.1 connection over after a
``101 Switching Protocols`` answer (RFC 9110 §7.8, §15.2.2): a WebSocket (RFC 6455).

The connection (:mod:`medusa.http.connection`) stops parsing after a request that asks
to switch (``Upgrade`` with ``Connection: upgrade``; llhttp stops there) and keeps the bytes
that followed its head on :attr:`Request.upgrade <medusa.http.request.Request.upgrade>`. A
handler that accepts the switch calls :meth:`HTTPChannel.take_over
<medusa.http.channel.HTTPChannel.take_over>` with the 101 response and an
:class:`UpgradedProtocol`; from then on the channel hands that protocol what it receives
and the clock, the client's half-close, the server's stop and the end of the connection.
The channel keeps its bookkeeping (bytes, activity, the server's list of open channels
for the status page and the graceful stop) and its output and flow control
(:meth:`~medusa.core.channel.Channel.push`, ``writable``).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["UpgradedProtocol"]


class UpgradedProtocol(Protocol):
    """What takes a connection over after 101 (see the module docstring). The HTTP
    timeouts (header, keep-alive, idle) no longer apply: :meth:`check_timeout` decides."""

    def data_received(self, data: bytes) -> None:
        """Bytes read from the client (never empty; counted by the channel already)."""
        ...

    def eof_received(self) -> None:
        """The client shut down its sending side."""
        ...

    def connection_lost(self) -> None:
        """The connection is gone (the channel is unregistered already)."""
        ...

    def writing_resumed(self) -> None:
        """The transport's backlog fell below its low-water mark: more may be written
        (``channel.writable`` is true again)."""
        ...

    def check_timeout(self, now: float) -> None:
        """The server's sweep, with :func:`time.monotonic`'s ``now`` (seconds)."""
        ...

    def shutdown(self) -> None:
        """The server stops gracefully: end the session (a WebSocket: close 1001)."""
        ...
