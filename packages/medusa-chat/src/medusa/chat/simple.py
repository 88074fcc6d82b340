"""The original Medusa chat server's simple mode, for telnet users: a nickname prompt, then
every line typed is said in one channel (``simple_channel``), shared with IRC and web users.

Commands: ``/quit [message]``, ``/nick NAME``, ``/who``, ``/me ACTION``, ``/msg NICK TEXT``,
``/help``. What the network sends is shown as plain text (:func:`render_plain`). As on the
IRC port, a line that is not UTF-8 or holds NUL or CR is refused (with a line saying so).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from medusa.chat.casemap import is_valid_nick
from medusa.chat.connection import peer_host
from medusa.chat.flood import TokenBucket
from medusa.chat.message import MAX_LINE, Message, decode_line, has_forbidden, parse_message
from medusa.chat.user import User
from medusa.core.channel import Channel

if TYPE_CHECKING:
    from medusa.chat.server import ChatServer

__all__ = ["SimpleConnection", "render_plain", "strip_telnet"]

HELP = (
    "Commands: /quit [message], /nick NAME, /who, /me ACTION, /msg NICK TEXT, /help. "
    "Anything else is said to everyone."
)

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
    ``None`` for lines not shown (end-of-list numerics, mode changes).

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
    if command.isascii() and command.isdigit() and command[0] == "4":
        return "* " + " ".join(params[1:])
    return None


class SimpleConnection(Channel):
    """A telnet user of the simple mode.

    Args:
        server: the chat server (its network, ``simple_channel`` and flood settings).
    """

    terminator = b"\n"

    def __init__(self, server: ChatServer) -> None:
        super().__init__(server, max_incoming=MAX_LINE)
        self._chat = server
        self.user: User | None = None
        self.bucket = TokenBucket(server.policy.flood_rate, server.policy.flood_burst, 0.0)
        self._too_long = False

    def handle_connect(self) -> None:
        """Greet and ask for a nickname (unless the address has too many connections
        already)."""
        if not self._chat.admit(self):
            return
        self.bucket.stamp = self.connected_at
        self.push(b"Welcome to Medusa chat (simple mode). Type /help for commands.\r\n")
        self.push(b"nickname: ")

    def incoming_overflow(self) -> None:
        """A line over 512 bytes: skip it and say so."""
        self._too_long = True

    def found_terminator(self) -> None:
        """One typed line."""
        line = self.get_incoming()
        if self._too_long:
            self._too_long = False
            self.push(b"* line too long (512 bytes at most)\r\n")
            return
        if not self.bucket.take(time.monotonic()):
            if self.user is not None:
                self._chat.network.quit(self.user, "Excess Flood")
            else:
                self.close_link("Excess Flood")
            return
        try:
            text = decode_line(strip_telnet(line).rstrip(b"\r")).strip()
        except UnicodeDecodeError:
            self.push(b"* line refused: not UTF-8 (set your terminal to UTF-8)\r\n")
            return
        if has_forbidden(text):
            self.push(b"* line refused: it holds NUL or CR\r\n")
            return
        if self.user is None:
            self._choose_nick(text)
        elif text:
            self._command(text)

    def _choose_nick(self, nick: str) -> None:
        network = self._chat.network
        if not is_valid_nick(nick, network.config.nick_length):
            self.push(b"* not a valid nickname (letters, digits, -[]\\`_^{|})\r\nnickname: ")
            return
        if network.nick_taken(nick, None):
            self.push(b"* that nickname is taken\r\nnickname: ")
            return
        user = User(peer_host(self.peer), self.send_line, self.close_link, "simple")
        user.username = "simple"
        user.realname = "simple mode user"
        network.add_user(user)
        network.claim_nick(user, nick)
        user.registered = True
        self.user = user
        network.dispatch(user, Message("JOIN", [self._chat.simple_channel]))

    def _command(self, text: str) -> None:
        user = self.user
        assert user is not None
        network = self._chat.network
        channel = self._chat.simple_channel
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
            nicks = " ".join(m.nick for m in room.members) if room is not None else ""
            self.push(f"* Here: {nicks}\r\n".encode("utf-8", "surrogateescape"))
        elif word == "help":
            self.push(f"* {HELP}\r\n".encode())
        else:
            self.push(f"* unknown command /{word}; {HELP}\r\n".encode("utf-8", "surrogateescape"))

    def send_line(self, data: bytes) -> None:
        """Show one line the network sent, as plain text."""
        user = self.user
        text = render_plain(data, user.nick if user is not None else "")
        if text is not None:
            self.push(text.encode("utf-8", "surrogateescape") + b"\r\n")

    def close_link(self, reason: str) -> None:
        """Say goodbye and close once it is sent."""
        self.push(f"* Closing link ({reason})\r\n".encode("utf-8", "surrogateescape"))
        self.close_when_done()

    def handle_close(self) -> None:
        """The connection is gone: the user quits."""
        if self.user is not None:
            self._chat.network.quit(self.user, "Connection closed")
