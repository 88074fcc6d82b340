"""The original Medusa chat's simple mode as a sans-IO session: a telnet user types a
nickname, then every line it types is said in one channel, shared with IRC and web users.

:class:`SimpleSession` is a :class:`~medusa.chat.session.Session` (flood control, the
512-byte rule, joining and leaving the :class:`~medusa.chat.network.Network`) whose lines
are typed text instead of IRC: ``/quit [message]``, ``/nick NAME``, ``/who``,
``/me ACTION``, ``/msg NICK TEXT``, ``/help``, anything else said in the channel. The
commands run through the network's command table like an IRC client's (QUIT, NICK,
PRIVMSG, JOIN), and what the network sends the user is shown as plain text
(:func:`render_plain`). As on the IRC port, a line that is not UTF-8 or holds NUL or CR is
refused (with a line saying so). The I/O is :class:`~medusa.chat.simple.SimpleConnection`.
"""

from __future__ import annotations

from collections.abc import Callable

from medusa.chat.casemap import is_valid_nick
from medusa.chat.message import Message, has_forbidden, parse_message
from medusa.chat.network import Network
from medusa.chat.session import LinkPolicy, Session

__all__ = ["HELP", "SimpleSession", "render_plain", "strip_telnet"]

HELP = (
    "Commands: /quit [message], /nick NAME, /who, /me ACTION, /msg NICK TEXT, /help. "
    "Anything else is said to everyone."
)
"""The text of ``/help``."""

_IAC = 0xFF


def strip_telnet(line: bytes) -> bytes:
    """Remove telnet commands (RFC 854: IAC and the two bytes of option negotiation, IAC
    with one command byte otherwise; IAC IAC is a literal 0xFF) from a received line."""
    if _IAC not in line:
        return line
    out = bytearray()
    i = 0
    while i < len(line):
        byte = line[i]
        if byte != _IAC:
            out.append(byte)
            i += 1
            continue
        command = line[i + 1] if i + 1 < len(line) else None
        if command == _IAC:
            out.append(_IAC)
            i += 2
        elif command is not None and 251 <= command <= 254:  # WILL WONT DO DONT + option
            i += 3
        else:
            i += 2
    return bytes(out)


def render_plain(line: bytes, me: str) -> str | None:
    """Turn one IRC line the network sent to a simple-mode user into the text shown, or
    ``None`` for lines not shown (end-of-list numerics, mode changes, 422: no MOTD).

    Args:
        line: the encoded line (CR LF included).
        me: the user's nick (private messages are shown differently).
    """
    message = parse_message(line.rstrip(b"\r\n").decode("utf-8", "replace"))
    if message is None:
        return None
    who = (message.prefix or "").split("!", 1)[0]
    command = message.command
    params = message.params
    if command in ("PRIVMSG", "NOTICE"):
        text = message.param(1)
        if text.startswith("\x01ACTION ") and text.endswith("\x01"):
            return f"* {who} {text[8:-1]}"
        if command == "NOTICE":
            return f"-{who}- {text}"
        if message.param(0) == me:
            return f"*{who}* {text}"
        return f"<{who}> {text}"
    if command == "JOIN":
        return f"* {who} has joined {message.param(0)}"
    if command == "PART":
        return f"* {who} has left {message.param(0)}" + (
            f" ({params[1]})" if len(params) > 1 else ""
        )
    if command == "QUIT":
        return f"* {who} has quit ({message.param(0)})"
    if command == "NICK":
        return f"* {who} is now known as {message.param(0)}"
    if command == "KICK":
        return f"* {message.param(1)} was kicked by {who} ({message.param(2)})"
    if command == "TOPIC":
        return f"* {who} set the topic: {message.param(1)}"
    if command == "332":
        return f"* Topic: {message.param(2)}"
    if command == "353":
        return f"* Here: {message.param(3)}"
    if command == "ERROR":
        return f"* {message.param(0)}"
    if command.isascii() and command.isdigit() and command[0] == "4" and command != "422":
        return "* " + " ".join(params[1:])
    return None


class SimpleSession(Session):
    """The network side of one simple-mode (telnet) user.

    No PING is sent and there is no registration deadline: the transport does not call
    :meth:`check_timeout` (a telnet user cannot answer PING), as in the original.

    Args:
        network: the network joined.
        host: the client's address.
        write: queues bytes (plain text, CR LF line ends) on the transport.
        close: ends the transport with a reason.
        policy: the flood limits (the timers are not used).
        now: the :func:`time.monotonic` time of the connection, seconds.
        channel: the channel the user talks in (``simple_channel``).
    """

    __slots__ = ("channel", "write")

    def __init__(
        self,
        network: Network,
        host: str,
        write: Callable[[bytes], None],
        close: Callable[[str], None],
        policy: LinkPolicy,
        now: float,
        channel: str,
    ) -> None:
        self.write = write
        self.channel = channel
        super().__init__(network, host, self.show, close, policy, now, kind="simple")

    def greet(self) -> None:
        """The welcome line and the nickname prompt."""
        self.write(b"Welcome to Medusa chat (simple mode). Type /help for commands.\r\n")
        self.write(b"nickname: ")

    def say(self, text: str) -> None:
        """Show one line of the server's own (``* text``)."""
        self.write(f"* {text}\r\n".encode("utf-8", "surrogateescape"))

    def show(self, data: bytes) -> None:
        """Show one line the network sent (an encoded IRC line) as plain text."""
        text = render_plain(data, self.user.nick)
        if text is not None:
            self.write(text.encode("utf-8", "surrogateescape") + b"\r\n")

    def receive_line(self, line: bytes, now: float) -> None:
        """Handle one typed line (without its LF): telnet commands (RFC 854) and the
        final CRs are removed, then it is read as :meth:`Session.receive_line` does."""
        super().receive_line(strip_telnet(line).rstrip(b"\r"), now)

    def receive_text(self, text: str) -> None:
        """One typed line: the nickname until one is accepted, then a command or words
        said in the channel. A line holding NUL or CR is refused."""
        text = text.strip()
        if has_forbidden(text):
            self.say("line refused: it holds NUL or CR")
        elif not self.user.registered and self.user.held is None:
            self.choose_nick(text)  # (while the bus answers a nick claim: lines wait)
        elif text:
            self.command(text)

    def refuse_encoding(self, line: bytes) -> None:
        """A line that is not UTF-8 is refused with a line saying so."""
        self.say("line refused: not UTF-8 (set your terminal to UTF-8)")

    def line_too_long(self) -> None:
        """A line over 512 bytes is skipped with a line saying so."""
        self.say("line too long (512 bytes at most)")

    def choose_nick(self, nick: str) -> None:
        """Take ``nick`` if it is valid (RFC 2812 section 2.3.1) and free, register the user
        (user name ``simple``) and join the channel; otherwise say why and prompt again."""
        network = self.network
        user = self.user
        if not is_valid_nick(nick, network.config.nick_length):
            self.write(b"* not a valid nickname (letters, digits, -[]\\`_^{|})\r\nnickname: ")
            return
        if network.nick_taken(nick, user):
            self.write(b"* that nickname is taken\r\nnickname: ")
            return
        user.username = "simple"
        user.realname = "simple mode user"
        if network.bus is not None:
            # The nick is the whole network's to give: NICK claims it on the bus (433 when
            # another node has it) and registers; the JOIN waits for that answer.
            network.dispatch(user, Message("NICK", [nick]))
            network.dispatch(user, Message("JOIN", [self.channel]))
            return
        network.claim_nick(user, nick)
        user.registered = True
        network.dispatch(user, Message("JOIN", [self.channel]))

    def command(self, text: str) -> None:
        """Run one typed line of a registered user: a ``/`` command, or words said in
        the channel (a PRIVMSG)."""
        network = self.network
        user = self.user
        channel = self.channel
        if not text.startswith("/"):
            network.dispatch(user, Message("PRIVMSG", [channel, text]))
            return
        word, _, rest = text[1:].partition(" ")
        word = word.lower()
        if word == "quit":
            network.dispatch(user, Message("QUIT", [rest] if rest else []))
        elif word == "nick":
            network.dispatch(user, Message("NICK", [rest.strip()]))
        elif word == "me" and rest:
            network.dispatch(user, Message("PRIVMSG", [channel, f"\x01ACTION {rest}\x01"]))
        elif word == "msg":
            target, _, body = rest.partition(" ")
            network.dispatch(user, Message("PRIVMSG", [target, body]))
        elif word == "who":
            room = network.find_channel(channel)
            self.say(
                "Here: " + (" ".join(m.nick for m in room.members) if room is not None else "")
            )
        elif word == "help":
            self.say(HELP)
        else:
            self.say(f"unknown command /{word}; {HELP}")
