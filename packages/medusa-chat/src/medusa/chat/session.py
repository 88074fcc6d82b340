"""One client's link to the network, independent of its transport (sans-IO): received
lines in, flood control, the 512-byte rule, PING/PONG upkeep and the registration deadline.

The transports (:mod:`medusa.chat.connection` for IRC over TCP,
:mod:`medusa.chat.websocket` for browsers) frame lines and call :meth:`Session.receive_line`
and, from the server's periodic sweep, :meth:`Session.check_timeout`. The simple mode's
:class:`~medusa.chat.simplesession.SimpleSession` is a session whose lines are typed text
rather than IRC (it overrides :meth:`Session.receive_text` and the refusals).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from medusa.chat import numerics as n
from medusa.chat.fanout import SharedLines
from medusa.chat.flood import TokenBucket
from medusa.chat.message import (
    MAX_LINE,
    command_name,
    decode_line,
    encode_line,
    format_line,
    has_forbidden,
    parse_message,
)
from medusa.chat.network import Network
from medusa.chat.user import User

__all__ = ["LinkPolicy", "Session"]


@dataclass(frozen=True, slots=True)
class LinkPolicy:
    """Per-link limits and timers.

    Attributes:
        flood_rate: lines per second a client may send in the long run (0: no limit).
        flood_burst: lines it may send at once (the token bucket's size).
        ping_interval: seconds of silence from the client after which the server sends
            PING (0: never).
        ping_timeout: seconds the client then has to send anything (a PONG) before the
            link is closed with ``Ping timeout``.
        registration_timeout: seconds a connection has to complete NICK/USER (0: no
            limit).
    """

    flood_rate: float = 5.0
    flood_burst: float = 30.0
    ping_interval: float = 120.0
    ping_timeout: float = 60.0
    registration_timeout: float = 60.0


class Session:
    """The network side of one connection.

    Args:
        network: the network joined.
        host: the client's address (its prefix shows it).
        send: queues one encoded line on the transport.
        close: ends the transport after ``ERROR :Closing Link: ...`` with the reason.
        policy: limits and timers.
        now: the :func:`time.monotonic` time of the connection, seconds.
        kind: ``"irc"``, ``"web"`` or ``"simple"`` (shown nowhere but kept on the user).
        share: takes a channel's shared lines (see :class:`~medusa.chat.user.User`), or
            ``None``.
    """

    __slots__ = ("bucket", "last_heard", "network", "ping_sent", "policy", "started", "user")

    def __init__(
        self,
        network: Network,
        host: str,
        send: Callable[[bytes], None],
        close: Callable[[str], None],
        policy: LinkPolicy,
        now: float,
        kind: str = "irc",
        share: Callable[[SharedLines], None] | None = None,
    ) -> None:
        self.network = network
        self.policy = policy
        self.user = User(host, send, close, kind, share)
        self.bucket = TokenBucket(policy.flood_rate, policy.flood_burst, now)
        self.started = now
        self.last_heard = now
        self.ping_sent = 0.0
        network.add_user(self.user)

    def receive_line(self, line: bytes, now: float) -> None:
        """Handle one line received (without its LF; a final CR is removed here).

        Lines longer than 510 bytes (512 with CR LF, RFC 1459 section 2.3) are refused with
        :meth:`line_too_long` and otherwise ignored, a line that is not valid UTF-8 with
        :meth:`refuse_encoding`; the text of the others goes to :meth:`receive_text`. A
        client out of flood tokens is disconnected (``Excess Flood``).
        """
        if not self.heard(now):
            return
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > MAX_LINE - 2:
            self.line_too_long()
            return
        try:
            text = decode_line(line)
        except UnicodeDecodeError:
            self.refuse_encoding(line)
            return
        self.receive_text(text)

    def heard(self, now: float) -> bool:
        """A line arrived at ``now`` (:func:`time.monotonic`, seconds): a sign of life (the
        ping timer starts again) that costs a flood token.

        Returns:
            False when the line is not to be read: the user is gone, or was just
            disconnected for ``Excess Flood``.
        """
        user = self.user
        if user.gone:
            return False
        self.last_heard = now
        self.ping_sent = 0.0
        if not self.bucket.take(now):
            self.network.quit(user, "Excess Flood")
            return False
        return True

    def receive_text(self, text: str) -> None:
        """One line of text (RFC 2812 section 2.3.1): parsed and run by the network; an
        empty line is ignored, a line holding NUL or CR is refused with
        ``ERR_UNKNOWNERROR`` (400)."""
        message = parse_message(text)
        if message is None:
            return
        if has_forbidden(text):
            self.network.reply(
                self.user,
                n.ERR_UNKNOWNERROR,
                command_name(text),
                "Message rejected: NUL or CR in a parameter (RFC 2812 section 2.3.1)",
            )
            return
        self.network.dispatch(self.user, message)

    def refuse_encoding(self, line: bytes) -> None:
        """Answer a line that is not UTF-8 with ``FAIL <command> INVALID_UTF8`` (IRCv3
        UTF8ONLY)."""
        self.network.fail(
            self.user,
            command_name(line),
            "INVALID_UTF8",
            "Message rejected: this server accepts UTF-8 only",
        )

    def line_too_long(self) -> None:
        """Answer a line over 512 bytes with ``ERR_INPUTTOOLONG`` (417)."""
        self.network.reply(self.user, n.ERR_INPUTTOOLONG, "Input line was too long")

    def refuse_long_line(self, now: float) -> None:
        """A line over 512 bytes arrived (and was not kept): it costs a flood token like
        any line and is answered by :meth:`line_too_long`."""
        if self.heard(now):
            self.line_too_long()

    def check_timeout(self, now: float) -> None:
        """Enforce the registration deadline and the ping timeout; send PING after
        ``ping_interval`` seconds of silence. ``now``: :func:`time.monotonic`, seconds."""
        user = self.user
        if user.gone:
            return
        policy = self.policy
        if not user.registered and policy.registration_timeout:
            if now - self.started > policy.registration_timeout:
                self.network.quit(user, "Registration timed out")
            return
        if not policy.ping_interval:
            return
        if self.ping_sent:
            if now - self.ping_sent > policy.ping_timeout:
                waited = int(now - self.last_heard)
                self.network.quit(user, f"Ping timeout: {waited} seconds")
        elif now - self.last_heard > policy.ping_interval:
            self.ping_sent = now
            server = self.network.config.server_name
            user.send(encode_line(format_line(None, "PING", server)))

    def connection_lost(self, reason: str = "Connection closed") -> None:
        """The transport is gone: the user quits (its peers see ``reason``)."""
        self.network.quit(self.user, reason)
