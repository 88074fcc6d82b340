"""Queries about the server: VERSION, TIME, LUSERS, ADMIN, INFO (RFC 2812 sections 3.4.2,
3.4.3, 3.4.6, 3.4.9, 3.4.10).

Terminal clients have a command for each (irssi's and WeeChat's ``/version``, ``/time``,
``/lusers``, ``/admin``, ``/info``) and show ``ERR_UNKNOWNCOMMAND`` as an error, so they
are answered. A ``<target>`` naming another server (there are no server links) gets
``ERR_NOSUCHSERVER`` (402).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from medusa.chat import numerics as n
from medusa.chat.casemap import irc_lower, mask_matcher
from medusa.chat.message import Message
from medusa.chat.modes import FLAG_MODES, KEY_LENGTH, MAX_MODE_CHANGES
from medusa.chat.user import User

if TYPE_CHECKING:  # network.py imports the handlers (its default table): a type only here
    from medusa.chat.network import Network

__all__ = [
    "VERSION",
    "admin",
    "info",
    "lusers",
    "send_isupport",
    "send_lusers",
    "time_command",
    "version",
]

VERSION = "medusa-chat-0.1.0"
"""The server's version, in 002, 004, 351 and INFO."""


def _other_server(net: Network, user: User, target: str) -> bool:
    """True (after answering 402) when ``target`` is given and does not match this
    server's name (a mask with ``*``/``?`` may, as RFC 2812 section 3.4 allows)."""
    name = net.config.server_name
    if not target or mask_matcher(target)(irc_lower(name)):
        return False
    net.reply(user, n.ERR_NOSUCHSERVER, target, "No such server")
    return True


def version(net: Network, user: User, msg: Message) -> None:
    """VERSION [<target>] (RFC 2812 section 3.4.3): ``RPL_VERSION`` (351) ``<version>.
    <debuglevel> <server> :<comments>``, then ``RPL_ISUPPORT`` (005) again, as current
    servers do."""
    if _other_server(net, user, msg.param(0)):
        return
    server = net.config.server_name
    net.reply(user, n.RPL_VERSION, f"{VERSION}.0", server, "Medusa chat (IRC, RFC 2812)")
    send_isupport(net, user)


_ISUPPORT_PER_LINE = 12
"""Tokens per 005 line: with the nick and the final text, 14 of the 15 parameters a
message may have (RFC 2812 section 2.3.1)."""


def send_isupport(net: Network, user: User) -> None:
    """``RPL_ISUPPORT`` (005): the server's features and limits, as clients read them
    (the de facto standard that followed RFC 2812, which names 005 ``RPL_BOUNCE``), on as
    many lines as needed. ``UTF8ONLY`` (IRCv3): lines that are not UTF-8 are refused."""
    config = net.config
    tokens = [
        "CASEMAPPING=rfc1459",
        "CHANTYPES=#&",
        f"CHANMODES=,k,l,{FLAG_MODES}",
        "PREFIX=(ov)@+",
        f"NICKLEN={config.nick_length}",
        f"CHANNELLEN={config.channel_length}",
        f"TOPICLEN={config.topic_length}",
        f"KEYLEN={KEY_LENGTH}",
        f"CHANLIMIT=#&:{config.max_channels}",
        f"MODES={MAX_MODE_CHANGES}",
        f"NETWORK={config.network_name}",
        "UTF8ONLY",
    ]
    for start in range(0, len(tokens), _ISUPPORT_PER_LINE):
        chunk = tokens[start : start + _ISUPPORT_PER_LINE]
        net.reply(user, n.RPL_ISUPPORT, *chunk, "are supported by this server")


def time_command(net: Network, user: User, msg: Message) -> None:
    """TIME [<target>] (RFC 2812 section 3.4.6): ``RPL_TIME`` (391) ``<server> :<the
    server's local time>``."""
    if _other_server(net, user, msg.param(0)):
        return
    now = time.strftime("%A %B %d %Y -- %H:%M:%S %z", time.localtime())
    net.reply(user, n.RPL_TIME, net.config.server_name, now)


def send_lusers(net: Network, user: User) -> None:
    """The LUSERS replies: 251 (users, services, servers: the whole network's, every
    node of a bus counted), 253 (connections not yet registered, when any), 254
    (channels), 255 (this server's clients; the other nodes as its links)."""
    registered = sum(1 for u in net.users.values() if u.registered)
    local = sum(1 for u in net.users.values() if u.registered and not u.node)
    servers = 1 + len(net.nodes)
    net.reply(
        user,
        n.RPL_LUSERCLIENT,
        f"There are {registered} users and 0 services on {servers} servers",
    )
    unknown = net.connected - local
    if unknown > 0:
        net.reply(user, n.RPL_LUSERUNKNOWN, str(unknown), "unknown connection(s)")
    net.reply(user, n.RPL_LUSERCHANNELS, str(len(net.channels)), "channels formed")
    net.reply(user, n.RPL_LUSERME, f"I have {local} clients and {len(net.nodes)} servers")


def lusers(net: Network, user: User, msg: Message) -> None:
    """LUSERS [<mask> [<target>]] (RFC 2812 section 3.4.2): the size of the network (one
    server); see :func:`send_lusers`."""
    if _other_server(net, user, msg.param(1)):
        return
    send_lusers(net, user)


def admin(net: Network, user: User, msg: Message) -> None:
    """ADMIN [<target>] (RFC 2812 section 3.4.9): ``ERR_NOADMININFO`` (423): no
    administrator is configured."""
    if _other_server(net, user, msg.param(0)):
        return
    server = net.config.server_name
    net.reply(user, n.ERR_NOADMININFO, server, "No administrative info available")


def info(net: Network, user: User, msg: Message) -> None:
    """INFO [<target>] (RFC 2812 section 3.4.10): ``RPL_INFO`` (371) lines, then
    ``RPL_ENDOFINFO`` (374)."""
    if _other_server(net, user, msg.param(0)):
        return
    lines = (
        f"{VERSION}: Medusa's chat server, an IRC server (RFC 1459, RFC 2812)",
        "on medusa-core's asyncio channels; a rebirth of Sam Rushing's Medusa.",
        f"Running since {net.created}.",
    )
    net.send_lines(user, n.RPL_INFO, lines)
    net.reply(user, n.RPL_ENDOFINFO, "End of INFO list")
