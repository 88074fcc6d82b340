"""IRC over TCP: a :class:`~medusa.core.channel.Channel` that frames lines at LF (CR LF or a
bare LF, as RFC 2812 section 2.3 asks servers to accept) and hands them to a
:class:`~medusa.chat.session.Session`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from medusa.chat.fanout import SharedLines
from medusa.chat.message import MAX_LINE, encode_line
from medusa.chat.session import Session
from medusa.core.channel import Channel

if TYPE_CHECKING:
    from medusa.chat.server import ChatServer

__all__ = ["IRCConnection", "peer_host"]


def peer_host(peer: object) -> str:
    """The host part of a transport's peer address (``"127.0.0.1"``; ``"localhost"`` for a
    Unix-domain socket), as shown in a user's prefix."""
    if isinstance(peer, tuple) and peer:
        host = str(peer[0])
        return host.removeprefix("::ffff:")
    return "localhost"


class IRCConnection(Channel):
    """One IRC client connection.

    Input lines longer than 512 bytes are not buffered beyond that size: the rest of the
    line is skipped and the session answers ``ERR_INPUTTOOLONG``. Output lines are coalesced
    per loop iteration (:mod:`medusa.chat.batching`). Output for a client that stops
    reading piles up only to ``server.max_sendq`` queued writes, after which the link is
    closed (``SendQ exceeded``).

    Args:
        server: the chat server that accepted the connection.
    """

    terminator = b"\n"

    __slots__ = (
        "_chat",
        "_line",
        "_line_size",
        "_lost_reason",
        "_out",
        "_shared",
        "_too_long",
        "session",
    )

    def __init__(self, server: ChatServer) -> None:
        super().__init__(server)
        self._chat = server
        self._line: list[bytes] = []
        self._line_size = 0
        self._too_long = False
        self._lost_reason: str | None = None
        self._out: list[bytes] | None = None
        # [SharedLines, index of the first line not yet taken] per channel this iteration.
        self._shared: list[list[Any]] = []
        self.session: Session | None = None

    def handle_connect(self) -> None:
        """Join the network as an unregistered user (unless the address has too many
        connections already)."""
        server = self._chat
        if not server.admit(self):
            return
        self.session = Session(
            server.network,
            peer_host(self.peer),
            self.send_line,
            self.close_link,
            server.policy,
            time.monotonic(),
            share=self.share_lines,
        )

    def collect_incoming_data(self, data: bytes) -> None:
        """Gather a line, dropping what goes past 512 bytes."""
        if self._too_long:
            return
        self._line_size += len(data)
        if self._line_size > MAX_LINE:
            self._too_long = True
            self._line = []
            return
        self._line.append(data)

    def found_terminator(self) -> None:
        """A whole line arrived: give it to the session."""
        session = self.session
        parts = self._line
        self._line = []
        self._line_size = 0
        if session is None:
            return
        if self._too_long:
            self._too_long = False
            session.refuse_long_line(time.monotonic())
            return
        line = parts[0] if len(parts) == 1 else b"".join(parts)
        session.receive_line(line, time.monotonic())

    def send_line(self, data: bytes) -> None:
        """Queue one encoded line; it leaves with the others of this loop iteration."""
        out = self._out
        if out is None:
            self._out = [data]
            self._chat.batcher.add(self)
        else:
            if self._shared:
                self._take_shared(out)  # channel lines received before this one go first
            out.append(data)

    def share_lines(self, shared: SharedLines) -> None:
        """Take a channel's lines of this iteration when flushing (one call per channel and
        iteration, however many lines it carries)."""
        if self._out is None:
            self._out = []
            self._chat.batcher.add(self)
        self._shared.append([shared, 0])

    def _take_shared(self, out: list[bytes]) -> None:
        """Move the shared lines received so far (but this client's own) into ``out``."""
        session = self.session
        if session is None:
            return
        user = session.user
        for entry in self._shared:
            shared, start = entry
            end = len(shared)
            if end > start:
                data = shared.take(user, start)
                if data:
                    out.append(data)
                entry[1] = end

    def flush_output(self) -> None:
        """Write the lines queued in this iteration at once; close the link when the
        client has stopped reading and more than ``max_sendq`` writes wait."""
        out = self._out
        if out is None:
            return
        self._out = None
        shared = self._shared
        if shared:
            if not out and len(shared) == 1 and self.session is not None:
                # The common case of a fan-out: one channel's lines and nothing else.
                lines, start = shared.pop()
                data = lines.take(self.session.user, start)
                if not data:
                    return
            else:
                self._take_shared(out)
                shared.clear()
                if not out:
                    return
                data = out[0] if len(out) == 1 else b"".join(out)
        else:
            data = out[0] if len(out) == 1 else b"".join(out)
        if self.writable:
            # The common case, once per client and loop iteration: Channel.push writes
            # straight to the transport when nothing waits in its fifo.
            self.push(data)
        elif self.pending >= self._chat.max_sendq:
            # Not a quit from here: the user quits from connection_lost, with this reason.
            if self._lost_reason is None:
                self._lost_reason = "SendQ exceeded"
                self.abort()
        else:
            self.push(data)

    def close_link(self, reason: str) -> None:
        """Send ``ERROR :Closing Link: HOST (reason)`` (cut to 512 bytes like any line: the
        reason may be a long QUIT message) and close once it is sent."""
        self.flush_output()
        host = self.session.user.host if self.session is not None else "*"
        self.push(encode_line(f"ERROR :Closing Link: {host} ({reason})"))
        self.close_when_done()

    def check_timeout(self, now: float) -> None:
        """The server's sweep: ping and registration deadlines."""
        if self.session is not None:
            self.session.check_timeout(now)

    def handle_close(self) -> None:
        """The connection is gone: the user quits."""
        if self.session is not None:
            self.session.connection_lost(self._lost_reason or "Connection closed")
