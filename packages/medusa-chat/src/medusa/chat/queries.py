"""Queries about users: WHO, WHOIS, WHOWAS, ISON, USERHOST (RFC 2812 sections
3.6.1-3.6.3, 4.8, 4.9)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from medusa.chat import numerics as n
from medusa.chat.casemap import irc_lower, is_channel_name, mask_matcher
from medusa.chat.ircchannel import IRCChannel
from medusa.chat.message import Message
from medusa.chat.user import User

if TYPE_CHECKING:  # network.py imports the handlers (its default table): a type only here
    from medusa.chat.network import Network

__all__ = ["ison", "userhost", "who", "whois", "whowas"]


def who(net: Network, user: User, msg: Message) -> None:
    """WHO [<mask> ["o"]]: one 352 per user matched, then 315 (modern.ircdocs.horse).

    * A channel name lists its members: all of them to a member; to others the members
      who are not ``+i``, and nobody for a secret (``+s``) channel.
    * An exact nickname (no ``*`` or ``?``) lists that user, ``+i`` or not.
    * Another mask is matched (``*``, ``?``) against nicks, hosts, user and real names of
      users who are not ``+i`` or share a channel with the asker.

    The channel shown in a 352 is one the asker may see (``*`` when none: RFC 2811 section
    4.2.6 hides secret and private channels from non-members). ``o`` (operators only)
    matches nobody: the server has no IRC operators.
    """
    mask = msg.param(0) or "*"
    if msg.param(1) == "o":
        net.reply(user, n.RPL_ENDOFWHO, mask, "End of WHO list")
        return
    if is_channel_name(mask):
        channel = net.find_channel(mask)
        if channel is not None and not channel.secret_from(user):
            outsider = user not in channel.members
            for member, flags in channel.members.items():
                if outsider and "i" in member.modes:
                    continue
                _who_reply(net, user, member, channel.name, IRCChannel.member_prefix(flags))
        net.reply(user, n.RPL_ENDOFWHO, mask, "End of WHO list")
        return
    exact = net.find_user(mask) if "*" not in mask and "?" not in mask else None
    if exact is not None:
        _who_user(net, user, exact)
        net.reply(user, n.RPL_ENDOFWHO, mask, "End of WHO list")
        return
    match = mask_matcher("*" if mask == "0" else mask)
    peers = net.peers(user)
    for other in list(net.users.values()):
        if not other.registered:
            continue
        if "i" in other.modes and other is not user and other not in peers:
            continue
        if any(
            match(irc_lower(field))
            for field in (other.nick, other.host, other.username, other.realname)
        ):
            _who_user(net, user, other)
    net.reply(user, n.RPL_ENDOFWHO, mask, "End of WHO list")


def _who_user(net: Network, user: User, other: User) -> None:
    """The 352 of ``other`` outside a channel listing: with the first of its channels
    ``user`` may see, or ``*``."""
    for channel in other.channels.values():
        if not channel.hidden_from(user):
            prefix = IRCChannel.member_prefix(channel.members.get(other, ""))
            _who_reply(net, user, other, channel.name, prefix)
            return
    _who_reply(net, user, other, "*", "")


def _who_reply(net: Network, user: User, other: User, where: str, prefix: str) -> None:
    status = ("G" if other.away is not None else "H") + prefix
    net.reply(
        user,
        n.RPL_WHOREPLY,
        where,
        other.username,
        other.host,
        other.server or net.config.server_name,
        other.nick,
        status,
        f"0 {other.realname}",
    )


def whois(net: Network, user: User, msg: Message) -> None:
    """WHOIS [<server>] <nick>{,<nick>}: 311, 319, 312, 301, 317 for each user found, 401
    for the others, then 318. 431 without a nick. 319 leaves out the secret and private
    channels the asker is not on (RFC 2811 section 4.2.6)."""
    if not msg.params or not msg.params[-1]:
        net.reply(user, n.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    nicks = msg.params[-1]
    for name in nicks.split(","):
        other = net.find_user(name)
        if other is None:
            net.reply(user, n.ERR_NOSUCHNICK, name, "No such nick/channel")
            continue
        net.reply(
            user, n.RPL_WHOISUSER, other.nick, other.username, other.host, "*", other.realname
        )
        channels = " ".join(
            IRCChannel.member_prefix(c.members.get(other, "")) + c.name
            for c in other.channels.values()
            if not c.hidden_from(user)
        )
        if channels:
            net.reply(user, n.RPL_WHOISCHANNELS, other.nick, channels)
        server = other.server or net.config.server_name
        net.reply(user, n.RPL_WHOISSERVER, other.nick, server, "Medusa chat")
        if other.away is not None:
            net.reply(user, n.RPL_AWAY, other.nick, other.away)
        idle = int(time.monotonic() - other.last_spoke)
        net.reply(
            user,
            n.RPL_WHOISIDLE,
            other.nick,
            str(idle),
            str(int(other.signon)),
            "seconds idle, signon time",
        )
    net.reply(user, n.RPL_ENDOFWHOIS, nicks, "End of WHOIS list")


def ison(net: Network, user: User, msg: Message) -> None:
    """ISON <nick> {<nick>}: 303 with the nicks that are on the network (in their own
    case). 461 without a nick."""
    if not msg.params:
        net.need_more_params(user, "ISON")
        return
    found: list[str] = []
    for param in msg.params:
        for name in param.split():
            other = net.find_user(name)
            if other is not None:
                found.append(other.nick)
    net.reply(user, n.RPL_ISON, " ".join(found))


def userhost(net: Network, user: User, msg: Message) -> None:
    """USERHOST <nick> {<nick>} (at most 5; commas are taken as separators too): 302 with
    ``nick=+user@host`` (``-`` when away). 461 without a nick."""
    if not msg.params:
        net.need_more_params(user, "USERHOST")
        return
    replies: list[str] = []
    wanted = [name for param in msg.params for name in param.replace(",", " ").split()]
    for name in wanted[:5]:
        other = net.find_user(name)
        if other is not None:
            sign = "-" if other.away is not None else "+"
            replies.append(f"{other.nick}={sign}{other.username}@{other.host}")
    net.reply(user, n.RPL_USERHOST, " ".join(replies))


def whowas(net: Network, user: User, msg: Message) -> None:
    """WHOWAS <nickname>{,<nickname>} [<count> [<target>]] (RFC 2812 section 3.6.3): no
    history of nicknames is kept, so each name gets ``ERR_WASNOSUCHNICK`` (406), then
    ``RPL_ENDOFWHOWAS`` (369). 431 without a nick."""
    if not msg.params or not msg.params[0]:
        net.reply(user, n.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    nicks = msg.params[0]
    for name in nicks.split(","):
        if name:
            net.reply(user, n.ERR_WASNOSUCHNICK, name, "There was no such nickname")
    net.reply(user, n.RPL_ENDOFWHOWAS, nicks, "End of WHOWAS")
