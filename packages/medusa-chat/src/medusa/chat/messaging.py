"""Sending messages: PRIVMSG, NOTICE (RFC 2812 sections 3.3.1-3.3.2) and AWAY (section
4.1)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from medusa.chat import numerics as n
from medusa.chat.casemap import CHANNEL_PREFIXES
from medusa.chat.message import Message, encode_line
from medusa.chat.user import User

if TYPE_CHECKING:  # network.py imports the handlers (its default table): a type only here
    from medusa.chat.network import Network

__all__ = ["away", "notice", "privmsg"]


def privmsg(net: Network, user: User, msg: Message) -> None:
    """PRIVMSG <target>{,<target>} <text>: to channels (404 when ``+n``/``+m`` forbid it)
    and nicks (301 when the nick is away). 411 without a target, 412 without text, 401
    for a nick or channel that does not exist."""
    _deliver(net, user, msg, "PRIVMSG", errors=True)


def notice(net: Network, user: User, msg: Message) -> None:
    """NOTICE <target> <text>: as PRIVMSG, but no reply of any kind is ever sent back
    (RFC 2812 section 3.3.2)."""
    _deliver(net, user, msg, "NOTICE", errors=False)


def _deliver(net: Network, user: User, msg: Message, command: str, *, errors: bool) -> None:
    params = msg.params
    if not params or not params[0]:
        if errors:
            net.reply(user, n.ERR_NORECIPIENT, f"No recipient given ({command})")
        return
    if len(params) < 2 or not params[1]:
        if errors:
            net.reply(user, n.ERR_NOTEXTTOSEND, "No text to send")
        return
    text = params[1]
    user.last_spoke = time.monotonic()
    targets = params[0].split(",") if "," in params[0] else (params[0],)
    done: set[str] = set()
    for target in targets:
        if target in done:
            continue
        done.add(target)
        if target and target[0] in CHANNEL_PREFIXES:
            channel = net.find_channel(target)
            if channel is None:
                if errors:
                    net.reply(user, n.ERR_NOSUCHNICK, target, "No such nick/channel")
                continue
            if not channel.can_speak(user):
                if errors:
                    net.reply(user, n.ERR_CANNOTSENDTOCHAN, channel.name, "Cannot send to channel")
                continue
            net.broadcast(
                channel, encode_line(f":{user.prefix} {command} {channel.name} :{text}"), user
            )
            continue
        other = net.find_user(target)
        if other is None:
            if errors:
                net.reply(user, n.ERR_NOSUCHNICK, target, "No such nick/channel")
            continue
        other.send(encode_line(f":{user.prefix} {command} {other.nick} :{text}"))
        if errors and other.away is not None:
            net.reply(user, n.RPL_AWAY, other.nick, other.away)


def away(net: Network, user: User, msg: Message) -> None:
    """AWAY [<text>]: 306 when marked away, 305 when back (RFC 2812 section 4.1)."""
    text = msg.param(0)
    if text:
        user.away = text
        net.reply(user, n.RPL_NOWAWAY, "You have been marked as being away")
    else:
        user.away = None
        net.reply(user, n.RPL_UNAWAY, "You are no longer marked as being away")
    net.user_changed(user)
