"""The chat network: every user and channel of one server, and the primitives the command
handlers share (sans-IO: output goes through each :class:`~medusa.chat.user.User`'s
``send``; nothing here touches a socket)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from medusa.chat import numerics as n
from medusa.chat import replica
from medusa.chat.bus import CLAIMED, TAKEN, Bus
from medusa.chat.casemap import irc_lower
from medusa.chat.commands import COMMANDS, PRE_REGISTRATION, Handler
from medusa.chat.fanout import SharedLines
from medusa.chat.ircchannel import IRCChannel
from medusa.chat.message import Message, encode_line, format_line
from medusa.chat.registration import try_register
from medusa.chat.user import User
from medusa.core.log import error_logger

__all__ = ["MAX_HELD", "Network", "NetworkConfig"]

MAX_HELD = 100
"""Messages a client may send while the bus answers its nick claim (a Redis round trip);
beyond, it is disconnected (``Excess Flood``), so a stalled bus holds no unbounded input."""


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    """Settings of a network.

    Attributes:
        server_name: the server's name in prefixes and numerics.
        network_name: ``NETWORK=`` in ``RPL_ISUPPORT``.
        password: the connection password clients must give with PASS, or ``None``.
        motd: the message of the day's lines; ``None`` sends ``ERR_NOMOTD`` (422).
        nick_length: the longest nickname accepted (``NICKLEN``).
        channel_length: the longest channel name accepted (``CHANNELLEN``).
        topic_length: the longest topic kept (``TOPICLEN``).
        max_channels: channels one client may be on at once (``CHANLIMIT``).
    """

    server_name: str = "medusa"
    network_name: str = "Medusa"
    password: str | None = None
    motd: tuple[str, ...] | None = None
    nick_length: int = 30
    channel_length: int = 50
    topic_length: int = 390
    max_channels: int = 20


class Network:
    """Users by case-folded nick and channels by case-folded name, with the operations
    every transport shares.

    With a :attr:`bus` (:mod:`medusa.chat.bus`) the network is one node of a network
    shared with other processes: ``users`` and ``channels`` then also hold the other nodes'
    users (``User.node`` set) and their memberships, and every change made for a local user
    is published as a record (:mod:`medusa.chat.replica`).

    Args:
        config: the network's settings.
        commands: the command table, command name (upper case) to handler; ``None``: the
            standard one, :data:`medusa.chat.commands.COMMANDS`. A server that serves more
            commands, fewer, or wraps some gives its own.
        pre_registration: the commands accepted before the welcome (``None``:
            :data:`medusa.chat.commands.PRE_REGISTRATION`).
    """

    def __init__(
        self,
        config: NetworkConfig | None = None,
        *,
        commands: Mapping[str, Handler] | None = None,
        pre_registration: frozenset[str] | None = None,
    ) -> None:
        self.config = config or NetworkConfig()
        self.commands: Mapping[str, Handler] = COMMANDS if commands is None else commands
        self.pre_registration = PRE_REGISTRATION if pre_registration is None else pre_registration
        self.users: dict[str, User] = {}
        self.channels: dict[str, IRCChannel] = {}
        self.created = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        self.connected = 0  # users not yet gone, registered or not
        self._open_shared: list[IRCChannel] = []  # channels whose shared lines are open
        self.bus: Bus | None = None
        self.nodes: dict[str, str] = {}  # the other nodes known on the bus: id -> server name

    # -- output ----------------------------------------------------------------------------

    def reply(self, user: User, numeric: str, *params: str) -> None:
        """Send a numeric reply from the server to ``user`` (its nick, or ``*`` before
        registration, as the first parameter)."""
        user.send(encode_line(format_line(self.config.server_name, numeric, user.nick, *params)))

    def broadcast(self, channel: IRCChannel, line: bytes, sender: User) -> None:
        """Send ``line`` (a PRIVMSG or NOTICE from ``sender``) to every member of
        ``channel`` but ``sender`` (RFC 2812 section 3.3.1): :meth:`fan_out` to the members
        of this process, and one ``msg`` record for the other nodes of the bus.

        The record is queued first: the bus's writer is then woken before this
        iteration's local writes are flushed, so the other nodes' members do not wait for
        this node's own fan-out (a few milliseconds for hundreds of local members)."""
        if self.bus is not None:
            self.bus.publish(["msg", channel.key, sender.key, replica.as_text(line)])
        self.fan_out(channel, line, sender)

    def fan_out(self, channel: IRCChannel, line: bytes, sender: User) -> None:
        """Send ``line`` from ``sender`` to the members of ``channel`` connected to this
        process, but ``sender``.

        Members whose transport can share lines (``User.share``) are given the channel's
        :class:`~medusa.chat.fanout.SharedLines` of this iteration once, when it opens; a
        line then costs one append for all of them. The others get it through ``send``.
        :meth:`seal_shared` ends the iteration's shared lines.
        """
        shared = channel.shared
        if shared is None:
            shared = SharedLines()
            direct: list[User] = []
            sharing = 0
            for member in channel.members:
                if member.node:
                    continue  # its own node delivers
                share = member.share
                if share is None:
                    direct.append(member)
                else:
                    share(shared)
                    sharing += 1
            channel.direct = direct
            if sharing:
                channel.shared = shared
                self._open_shared.append(channel)
            else:
                shared = None  # nobody shares: nothing to keep (or to seal) this time
        if shared is not None:
            shared.append(line, sender)
        for member in channel.direct:
            if member is not sender:
                member.send(line)

    def seal_shared(self) -> None:
        """End of a loop iteration (the transports are about to write): close every open
        :class:`~medusa.chat.fanout.SharedLines`; the next channel line opens a new one."""
        for channel in self._open_shared:
            self._seal(channel)
        self._open_shared.clear()

    @staticmethod
    def _seal(channel: IRCChannel) -> None:
        shared = channel.shared
        if shared is not None:
            shared.seal()
            channel.shared = None

    def fail(self, user: User, command: str, code: str, text: str) -> None:
        """Send an IRCv3 standard reply ``FAIL <command> <code> :<text>`` from the server
        (IRCv3 Standard Replies; ``INVALID_UTF8`` is the UTF8ONLY specification's code,
        which a server advertising ``UTF8ONLY`` may send to any client)."""
        user.send(encode_line(format_line(self.config.server_name, "FAIL", command, code, text)))

    def need_more_params(self, user: User, command: str) -> None:
        """Send ``ERR_NEEDMOREPARAMS`` (461) for ``command``."""
        self.reply(user, n.ERR_NEEDMOREPARAMS, command, "Not enough parameters")

    def notice(self, user: User, text: str) -> None:
        """Send a NOTICE from the server to ``user``."""
        user.send(encode_line(format_line(self.config.server_name, "NOTICE", user.nick, text)))

    def peers(self, user: User) -> set[User]:
        """The users who share at least one channel with ``user`` (not ``user``)."""
        out: set[User] = set()
        for channel in user.channels.values():
            out.update(channel.members)
        out.discard(user)
        return out

    # -- lookups ---------------------------------------------------------------------------

    def find_user(self, nick: str) -> User | None:
        """The registered user called ``nick`` (any case, on any node), or ``None``."""
        user = self.users.get(irc_lower(nick))
        return user if user is not None and user.registered else None

    def find_channel(self, name: str) -> IRCChannel | None:
        """The channel called ``name`` (any case), or ``None``."""
        return self.channels.get(irc_lower(name))

    # -- dispatch --------------------------------------------------------------------------

    def dispatch(self, user: User, message: Message) -> None:
        """Run one client message: the handler of :attr:`commands`, ``ERR_NOTREGISTERED``
        (451) for commands other than :attr:`pre_registration` ones before the welcome,
        ``ERR_UNKNOWNCOMMAND`` (421) for commands not served (RFC 2812 sections 3 and 5.2).

        A handler that raises is a bug, never the client's doing (malformed input gets its
        error reply from the handler): it is logged once on the ``medusa`` logger with its
        traceback and answered with ``400 <command> :Internal error: not done``
        (``ERR_UNKNOWNERROR``, modern.ircdocs.horse); the connection goes on, whatever
        carries it (IRC over TCP, the WebSocket, the simple mode).
        """
        if user.gone:
            return
        if user.held is not None:  # a nick claim waits for the bus: later, in order
            if len(user.held) >= MAX_HELD:
                self.quit(user, "Excess Flood")
                return
            user.held.append(message)
            return
        command = message.command
        handler = self.commands.get(command)
        if not user.registered and command not in self.pre_registration:
            if handler is not None or not (command.isascii() and command.isdigit()):
                self.reply(user, n.ERR_NOTREGISTERED, "You have not registered")
            return
        if handler is None:
            self.reply(user, n.ERR_UNKNOWNCOMMAND, command, "Unknown command")
            return
        try:
            handler(self, user, message)
        except Exception:
            error_logger.exception("chat: %s from %s failed", command, user.prefix)
            if not user.gone:
                self.reply(user, n.ERR_UNKNOWNERROR, command, "Internal error: not done")

    # -- membership ------------------------------------------------------------------------

    def add_user(self, user: User) -> None:
        """Count a new connection (called by the transport when it starts)."""
        self.connected += 1

    def claim_nick(self, user: User, nick: str) -> None:
        """Give ``user`` the free nick ``nick`` (the caller checked it) and reserve it,
        announcing the change to the user and its peers when already registered."""
        old_prefix = user.prefix
        key = irc_lower(nick)
        if user.registered:
            line = encode_line(format_line(old_prefix, "NICK", nick))
            user.send(line)
            for peer in self.peers(user):
                if not peer.node:
                    peer.send(line)
            if self.bus is not None:
                self.bus.publish(["nick", user.key, nick, replica.as_text(line)])
        if user.key and self.users.get(user.key) is user:
            del self.users[user.key]
        self.users[key] = user
        user.nick = nick
        user.key = key
        user.update_prefix()

    def claim_on_bus(self, user: User, nick: str) -> None:
        """Ask the bus for the nick ``nick`` (free on this node's replica) for ``user``;
        the user's next messages wait (:attr:`User.held`) until :meth:`nick_claimed`."""
        assert self.bus is not None
        user.held = []
        self.bus.claim_nick(user, nick)

    def nick_claimed(self, user: User, nick: str, result: str) -> None:
        """The bus's answer to :meth:`claim_on_bus`: :data:`~medusa.chat.bus.CLAIMED` gives
        ``user`` the nick (and frees its old one), :data:`~medusa.chat.bus.TAKEN` answers
        ``ERR_NICKNAMEINUSE`` (433), :data:`~medusa.chat.bus.UNREACHABLE`
        ``ERR_UNAVAILRESOURCE`` (437, RFC 2812 section 5.2); then the messages held
        meanwhile are run in order."""
        held, user.held = user.held or [], None
        bus = self.bus
        if user.gone:
            if result == CLAIMED and bus is not None and irc_lower(nick) != user.key:
                bus.release_nick(user, irc_lower(nick))
            return
        if result == CLAIMED:
            old = user.key
            if nick != user.nick:
                self.claim_nick(user, nick)
            if bus is not None and old and old != user.key:
                bus.release_nick(user, old)
            try_register(self, user)
        elif result == TAKEN:
            self.reply(user, n.ERR_NICKNAMEINUSE, nick, "Nickname is already in use")
        else:
            self.reply(
                user, n.ERR_UNAVAILRESOURCE, nick, "Nick is temporarily unavailable (no bus)"
            )
        for message in held:
            self.dispatch(user, message)

    def user_changed(self, user: User) -> None:
        """A local registered user's details changed (registration, AWAY, user modes):
        tell the other nodes."""
        if self.bus is not None and user.registered and not user.node:
            self.bus.publish(["user", replica.user_record(self, user)])

    def nick_taken(self, nick: str, user: User | None) -> bool:
        """True when ``nick`` belongs to another user (registered, or reserved by one
        that is registering)."""
        other = self.users.get(irc_lower(nick))
        return other is not None and other is not user

    def join(self, user: User, channel: IRCChannel) -> None:
        """Add ``user`` to ``channel`` (created empty by the caller: the first member
        becomes operator), announce the JOIN, send the topic and the names."""
        flags = "" if channel.members else "o"
        self.add_member(user, channel, flags)
        line = encode_line(format_line(user.prefix, "JOIN", channel.name))
        channel.send(line)
        if self.bus is not None:
            self.bus.publish(["join", user.key, channel.name, flags, replica.as_text(line)])
        if channel.topic:
            self.send_topic(user, channel)
        self.send_names(user, channel)

    def add_member(self, user: User, channel: IRCChannel, flags: str) -> None:
        """Make ``user`` a member of ``channel`` with ``flags`` (no announcement)."""
        self._seal(channel)  # the lines shared so far are not for the new member
        channel.members[user] = flags
        user.channels[channel.key] = channel
        channel.invited.discard(user.key)

    def depart(self, user: User, channel: IRCChannel, line: bytes) -> None:
        """``user`` leaves ``channel`` (PART, KICK, ``JOIN 0``): ``line`` to the members,
        then :meth:`leave`; the other nodes are told."""
        channel.send(line)
        if self.bus is not None:
            self.bus.publish(["part", user.key, channel.key, replica.as_text(line)])
        self.leave(user, channel)

    def channel_changed(self, channel: IRCChannel, line: bytes | None) -> None:
        """A local user changed ``channel``'s topic, modes or invitations: ``line`` (the
        TOPIC or MODE, if any) to the members; the other nodes get the new state."""
        if line is not None:
            channel.send(line)
        if self.bus is not None:
            channel.stamp = max(time.time(), channel.stamp + 1e-6)
            text = None if line is None else replica.as_text(line)
            self.bus.publish(["chan", replica.channel_record(channel), text])

    def leave(self, user: User, channel: IRCChannel) -> None:
        """Take ``user`` out of ``channel`` (no announcement); drop an empty channel."""
        self._seal(channel)  # later lines are not for the member who left
        channel.members.pop(user, None)
        user.channels.pop(channel.key, None)
        if not channel.members and self.channels.get(channel.key) is channel:
            del self.channels[channel.key]

    def quit(self, user: User, reason: str) -> None:
        """Remove ``user`` from the network: announce ``QUIT :reason`` to its peers, leave
        every channel, free the nick, then close the link with ``reason``. Calling it again
        for a user already gone does nothing."""
        if user.gone:
            return
        user.gone = True
        self.connected -= 1
        if user.registered:
            line = encode_line(format_line(user.prefix, "QUIT", reason))
            for peer in self.peers(user):
                if not peer.node:
                    peer.send(line)
            if self.bus is not None:
                self.bus.publish(["quit", user.key, replica.as_text(line)])
        for channel in list(user.channels.values()):
            self.leave(user, channel)
        if user.key and self.users.get(user.key) is user:
            del self.users[user.key]
            if self.bus is not None:
                self.bus.release_nick(user, user.key)
        user.close(reason)

    # -- shared replies --------------------------------------------------------------------

    def send_topic(self, user: User, channel: IRCChannel) -> None:
        """``RPL_TOPIC`` (332) and ``RPL_TOPICWHOTIME`` (333), or ``RPL_NOTOPIC`` (331)."""
        if not channel.topic:
            self.reply(user, n.RPL_NOTOPIC, channel.name, "No topic is set")
            return
        self.reply(user, n.RPL_TOPIC, channel.name, channel.topic)
        self.reply(
            user, n.RPL_TOPICWHOTIME, channel.name, channel.topic_setter, str(channel.topic_time)
        )

    def send_names(self, user: User, channel: IRCChannel | None, name: str = "") -> None:
        """``RPL_NAMREPLY`` (353) lines that each fit in 512 bytes, then
        ``RPL_ENDOFNAMES`` (366). ``channel`` ``None`` sends only the end (for ``name``).

        The 353 symbol is ``@`` for a secret channel (``+s``), ``*`` for a private one
        (``+p``), ``=`` otherwise; to a user who is not a member, invisible (``+i``) members
        are not shown (modern.ircdocs.horse, NAMES and RPL_NAMREPLY)."""
        if channel is not None:
            name = channel.name
            symbol = channel.names_symbol()
            head = f":{self.config.server_name} {n.RPL_NAMREPLY} {user.nick} {symbol} {name} :"
            room = 510 - len(head.encode())
            names: list[str] = []
            size = 0
            outsider = user not in channel.members
            for member, flags in channel.members.items():
                if outsider and "i" in member.modes:
                    continue
                entry = IRCChannel.member_prefix(flags) + member.nick
                if names and size + len(entry) + 1 > room:
                    user.send(encode_line(head + " ".join(names)))
                    names, size = [], 0
                names.append(entry)
                size += len(entry) + 1
            if names:
                user.send(encode_line(head + " ".join(names)))
        self.reply(user, n.RPL_ENDOFNAMES, name, "End of NAMES list")

    def send_lines(self, user: User, numeric: str, lines: Iterable[str]) -> None:
        """One numeric reply per line of text."""
        for line in lines:
            self.reply(user, numeric, line)
