"""Channel membership and channel information: JOIN, PART, TOPIC, NAMES, LIST, KICK,
INVITE (RFC 2812 sections 3.2.1-3.2.8, RFC 2811)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from medusa.chat import numerics as n
from medusa.chat.casemap import irc_lower, is_valid_channel
from medusa.chat.ircchannel import IRCChannel
from medusa.chat.message import Message, encode_line, format_line
from medusa.chat.user import User

if TYPE_CHECKING:  # network.py imports the handlers (its default table): a type only here
    from medusa.chat.network import Network

__all__ = ["invite", "join", "kick", "list_command", "names", "part", "topic"]


def join(net: Network, user: User, msg: Message) -> None:
    """JOIN <channel>{,<channel>} [<key>{,<key>}] and JOIN 0 (part every channel).

    Errors: 461, 403 (malformed name), 405 (too many channels), 475 (+k), 471 (+l),
    473 (+i); an INVITE lets a user past ``+i``, ``+k`` and ``+l``.
    """
    if not msg.params or not msg.params[0]:
        net.need_more_params(user, "JOIN")
        return
    if msg.params[0] == "0":
        for joined in list(user.channels.values()):
            line = encode_line(format_line(user.prefix, "PART", joined.name, user.nick))
            net.depart(user, joined, line)
        return
    keys = msg.param(1).split(",")
    for index, name in enumerate(msg.params[0].split(",")):
        key = keys[index] if index < len(keys) else ""
        if not is_valid_channel(name, net.config.channel_length):
            net.reply(user, n.ERR_NOSUCHCHANNEL, name or "*", "No such channel")
            continue
        folded = irc_lower(name)
        if folded in user.channels:
            continue
        if len(user.channels) >= net.config.max_channels:
            net.reply(user, n.ERR_TOOMANYCHANNELS, name, "You have joined too many channels")
            continue
        channel = net.channels.get(folded)
        if channel is None:
            channel = net.channels[folded] = IRCChannel(name, folded)
        elif user.key not in channel.invited:
            if "i" in channel.modes:
                net.reply(user, n.ERR_INVITEONLYCHAN, channel.name, "Cannot join channel (+i)")
                continue
            if channel.password is not None and key != channel.password:
                net.reply(user, n.ERR_BADCHANNELKEY, channel.name, "Cannot join channel (+k)")
                continue
            if channel.limit is not None and len(channel.members) >= channel.limit:
                net.reply(user, n.ERR_CHANNELISFULL, channel.name, "Cannot join channel (+l)")
                continue
        net.join(user, channel)


def part(net: Network, user: User, msg: Message) -> None:
    """PART <channel>{,<channel>} [<message>]: 461, 403 (no such channel), 442 (not on
    it); the members (the user included) see the PART."""
    if not msg.params or not msg.params[0]:
        net.need_more_params(user, "PART")
        return
    reason = msg.param(1)
    for name in msg.params[0].split(","):
        channel = net.find_channel(name)
        if channel is None:
            net.reply(user, n.ERR_NOSUCHCHANNEL, name or "*", "No such channel")
            continue
        if user not in channel.members:
            net.reply(user, n.ERR_NOTONCHANNEL, channel.name, "You're not on that channel")
            continue
        params = (channel.name, reason) if reason else (channel.name,)
        net.depart(user, channel, encode_line(format_line(user.prefix, "PART", *params)))


def topic(net: Network, user: User, msg: Message) -> None:
    """TOPIC <channel> [<topic>]: without a topic, 331 or 332 + 333; with one, set it (an
    empty one clears it) and tell the members. 461, 403 (also for a secret channel the
    user is not on, RFC 2811 section 4.2.6), 442, 482 (``+t`` and not an operator)."""
    if not msg.params:
        net.need_more_params(user, "TOPIC")
        return
    name = msg.params[0]
    channel = net.find_channel(name)
    if channel is None or channel.secret_from(user):
        net.reply(user, n.ERR_NOSUCHCHANNEL, name, "No such channel")
        return
    if len(msg.params) < 2:
        net.send_topic(user, channel)
        return
    if user not in channel.members:
        net.reply(user, n.ERR_NOTONCHANNEL, channel.name, "You're not on that channel")
        return
    if "t" in channel.modes and not channel.is_operator(user):
        net.reply(user, n.ERR_CHANOPRIVSNEEDED, channel.name, "You're not channel operator")
        return
    text = msg.params[1][: net.config.topic_length]
    channel.topic = text
    channel.topic_setter = user.prefix
    channel.topic_time = int(time.time())
    net.channel_changed(channel, encode_line(format_line(user.prefix, "TOPIC", channel.name, text)))


def names(net: Network, user: User, msg: Message) -> None:
    """NAMES [<channel>{,<channel>}]: 353 lines and 366 for each; 366 alone for a channel
    that does not exist or is secret (``+s``) to a non-member. Without a parameter, every
    channel but the secret and private (``+p``) ones the user is not on (RFC 2811 section
    4.2.6). Invisible (``+i``) members are shown to members only."""
    if not msg.params or not msg.params[0]:
        for each in list(net.channels.values()):
            if not each.hidden_from(user):
                net.send_names(user, each)
        net.send_names(user, None, "*")
        return
    for name in msg.params[0].split(","):
        channel = net.find_channel(name)
        if channel is not None and not channel.secret_from(user):
            net.send_names(user, channel)
        else:
            net.send_names(user, None, name)


def list_command(net: Network, user: User, msg: Message) -> None:
    """LIST [<channel>{,<channel>}]: 321, one 322 per channel (members, topic), 323.
    Without a parameter, secret (``+s``) and private (``+p``) channels the user is not on
    are left out; named, only the secret ones are (RFC 2811 section 4.2.6)."""
    net.reply(user, n.RPL_LISTSTART, "Channel", "Users  Name")
    if msg.params and msg.params[0]:
        found = [net.find_channel(name) for name in msg.params[0].split(",")]
        channels = [c for c in found if c is not None and not c.secret_from(user)]
    else:
        channels = [c for c in net.channels.values() if not c.hidden_from(user)]
    for channel in dict.fromkeys(channels):
        net.reply(user, n.RPL_LIST, channel.name, str(len(channel.members)), channel.topic)
    net.reply(user, n.RPL_LISTEND, "End of LIST")


def kick(net: Network, user: User, msg: Message) -> None:
    """KICK <channel> <user>{,<user>} [<comment>]: 461, 403, 442 (kicker not on it), 482
    (not an operator), 441 (target not on it); the members see the KICK."""
    if len(msg.params) < 2:
        net.need_more_params(user, "KICK")
        return
    channel = net.find_channel(msg.params[0])
    if channel is None:
        net.reply(user, n.ERR_NOSUCHCHANNEL, msg.params[0], "No such channel")
        return
    if user not in channel.members:
        net.reply(user, n.ERR_NOTONCHANNEL, channel.name, "You're not on that channel")
        return
    if not channel.is_operator(user):
        net.reply(user, n.ERR_CHANOPRIVSNEEDED, channel.name, "You're not channel operator")
        return
    comment = msg.param(2) or user.nick
    for target_nick in msg.params[1].split(","):
        target = net.find_user(target_nick)
        if target is None:
            net.reply(user, n.ERR_NOSUCHNICK, target_nick, "No such nick/channel")
            continue
        if target not in channel.members:
            net.reply(
                user,
                n.ERR_USERNOTINCHANNEL,
                target.nick,
                channel.name,
                "They aren't on that channel",
            )
            continue
        line = format_line(user.prefix, "KICK", channel.name, target.nick, comment)
        net.depart(target, channel, encode_line(line))


def invite(net: Network, user: User, msg: Message) -> None:
    """INVITE <nick> <channel>: 341 to the inviter, an INVITE to the target (and 301 when
    away). 461, 401, 442 (inviter not on the channel), 443 (already on it), 482 (``+i``
    and not an operator)."""
    if len(msg.params) < 2:
        net.need_more_params(user, "INVITE")
        return
    target = net.find_user(msg.params[0])
    if target is None:
        net.reply(user, n.ERR_NOSUCHNICK, msg.params[0], "No such nick/channel")
        return
    name = msg.params[1]
    channel = net.find_channel(name)
    if channel is not None:
        if user not in channel.members:
            net.reply(user, n.ERR_NOTONCHANNEL, channel.name, "You're not on that channel")
            return
        if target in channel.members:
            net.reply(user, n.ERR_USERONCHANNEL, target.nick, channel.name, "is already on channel")
            return
        if "i" in channel.modes and not channel.is_operator(user):
            net.reply(user, n.ERR_CHANOPRIVSNEEDED, channel.name, "You're not channel operator")
            return
        channel.invited.add(target.key)
        net.channel_changed(channel, None)
        name = channel.name
    net.reply(user, n.RPL_INVITING, target.nick, name)
    if target.away is not None:
        net.reply(user, n.RPL_AWAY, target.nick, target.away)
    target.send(encode_line(format_line(user.prefix, "INVITE", target.nick, name)))
