"""The records nodes of one chat network exchange through a bus (:mod:`medusa.chat.bus`),
built from a :class:`~medusa.chat.network.Network` and applied to another node's replica
(sans-IO: lines go out through the local users' ``send``).

A record is a JSON array; lines are the encoded IRC lines as text (UTF-8, undecodable
bytes kept as surrogates). The node a record comes from is given beside it.

========================================================  ==================================
record                                                    what the receiver does
========================================================  ==================================
``["user", USER]``                                        adds or updates a remote user
``["nick", old_key, nick, line]``                         renames it; ``line`` to its peers
``["quit", key, line]``                                   ``line`` to its peers; removes it
``["join", key, channel_name, flags, line]``              adds the member; ``line`` to members
``["part", key, channel_key, line]``                      ``line`` to members; removes member
``["chan", CHANNEL, line or null]``                       newer topic/modes kept; ``line``
``["msg", channel_key, sender_key, line]``                ``line`` to members but the sender
``["to", key, line]``                                     ``line`` to that local user
``["hello"]``                                             publishes its own ``sync``
``["sync", [USER + [[name, flags], ...], ...], [CHANNEL]]``  the node's users as given
========================================================  ==================================

``USER`` is ``[nick, username, host, realname, modes, away, signon, server]``; ``CHANNEL``
is ``[key, name, modes, key_or_null, limit_or_null, topic, setter, topic_time, created,
[invited keys], stamp, {member key: flags}]``. A ``part`` serves PART, KICK (the key is the
kicked user's) and ``JOIN 0``. Records about users or channels the receiver does not know
are ignored (a ``sync`` will bring them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from medusa.chat.casemap import irc_lower
from medusa.chat.ircchannel import IRCChannel
from medusa.chat.message import encode_line, format_line
from medusa.chat.user import User

if TYPE_CHECKING:  # network.py imports this module: a type only here
    from medusa.chat.bus import Record
    from medusa.chat.network import Network

__all__ = [
    "NODE_LOST",
    "apply",
    "as_bytes",
    "as_text",
    "channel_record",
    "lose_node",
    "snapshot",
    "user_record",
]

NODE_LOST = "node lost"
"""The QUIT reason of the users of a node that stopped heartbeating."""


def as_text(line: bytes) -> str:
    """An encoded line as record text (undecodable bytes as surrogates)."""
    return line.decode("utf-8", "surrogateescape")


def as_bytes(text: str) -> bytes:
    """Record text back to the encoded line."""
    return text.encode("utf-8", "surrogateescape")


def user_record(net: Network, user: User) -> list[Any]:
    """``USER`` for a local registered user."""
    return [
        user.nick,
        user.username,
        user.host,
        user.realname,
        "".join(sorted(user.modes)),
        user.away,
        user.signon,
        net.config.server_name,
    ]


def channel_record(channel: IRCChannel) -> list[Any]:
    """``CHANNEL``: the channel's topic, modes, invitations and member flags."""
    return [
        channel.key,
        channel.name,
        "".join(sorted(channel.modes)),
        channel.password,
        channel.limit,
        channel.topic,
        channel.topic_setter,
        channel.topic_time,
        channel.created,
        sorted(channel.invited),
        channel.stamp,
        {member.key: flags for member, flags in channel.members.items() if flags},
    ]


def snapshot(net: Network) -> Record:
    """``["sync", ...]``: this node's registered users with their channels, and the
    channels where it has members."""
    users: list[Any] = []
    channels: dict[str, IRCChannel] = {}
    for user in net.users.values():
        if user.node or not user.registered or user.gone:
            continue
        joined = [[c.name, c.members.get(user, "")] for c in user.channels.values()]
        users.append([*user_record(net, user), joined])
        for channel in user.channels.values():
            channels[channel.key] = channel
    return ["sync", users, [channel_record(c) for c in channels.values()]]


# -- applying records ------------------------------------------------------------------------


def apply(net: Network, node: str, record: Record) -> None:
    """Apply one ``record`` from ``node`` to ``net`` (``node`` becomes a known node).

    Raises:
        ValueError, TypeError, IndexError, KeyError: for a malformed record (the bus logs
            it and goes on).
    """
    net.nodes.setdefault(node, "")
    handler = _APPLY.get(record[0])
    if handler is not None:  # an unknown kind (a newer node's) is ignored
        handler(net, node, record)


def _remote(net: Network, node: str, key: str) -> User | None:
    user = net.users.get(key)
    return user if user is not None and user.node == node else None


def _new_remote(net: Network, node: str, fields: list[Any]) -> User | None:
    """Add the remote user of ``fields`` (``USER``), or update it; ``None`` when its nick
    belongs to a user of another node."""
    key = irc_lower(fields[0])
    user = net.users.get(key)
    if user is None:
        user = User(str(fields[2]), lambda line: None, lambda reason: None, "remote", node=node)
        user.send = _direct(net, user)
        user.key = key
        user.registered = True
        net.users[key] = user
    elif user.node != node:
        return None
    user.nick, user.username, user.host, user.realname = (str(f) for f in fields[:4])
    user.modes = set(fields[4])
    user.away = None if fields[5] is None else str(fields[5])
    user.signon = float(fields[6])
    user.server = str(fields[7])
    net.nodes[node] = user.server
    user.update_prefix()
    return user


def _direct(net: Network, user: User) -> Any:
    """The ``send`` of a remote user: a ``to`` record for its node."""

    def send(line: bytes) -> None:
        if net.bus is not None and not user.gone:
            net.bus.publish(["to", user.key, as_text(line)])

    return send


def _channel(net: Network, name: str) -> IRCChannel:
    key = irc_lower(name)
    channel = net.channels.get(key)
    if channel is None:
        channel = net.channels[key] = IRCChannel(name, key)
    return channel


def _to_local_peers(net: Network, user: User, line: bytes) -> None:
    for peer in net.peers(user):
        if not peer.node:
            peer.send(line)


def _drop(net: Network, user: User, line: bytes) -> None:
    """A remote user leaves the network: ``line`` (its QUIT) to the local peers."""
    _to_local_peers(net, user, line)
    for channel in list(user.channels.values()):
        net.leave(user, channel)
    if net.users.get(user.key) is user:
        del net.users[user.key]
    user.gone = True


def _set_channel(channel: IRCChannel, fields: list[Any], *, flags: bool) -> None:
    stamp = float(fields[10])
    if stamp < channel.stamp:
        return
    channel.stamp = stamp
    channel.modes = set(fields[2])
    channel.password = None if fields[3] is None else str(fields[3])
    channel.limit = None if fields[4] is None else int(fields[4])
    channel.topic, channel.topic_setter = str(fields[5]), str(fields[6])
    channel.topic_time, channel.created = int(fields[7]), int(fields[8])
    channel.invited = {str(k) for k in fields[9]}
    if flags:
        given: dict[str, str] = fields[11]
        for member in channel.members:
            channel.members[member] = given.get(member.key, "")


def _user(net: Network, node: str, record: Record) -> None:
    _new_remote(net, node, record[1])


def _nick(net: Network, node: str, record: Record) -> None:
    _, old_key, nick, line = record
    user = _remote(net, node, old_key)
    new_key = irc_lower(nick)
    if user is None or (new_key != old_key and new_key in net.users):
        return
    _to_local_peers(net, user, as_bytes(line))
    del net.users[old_key]
    net.users[new_key] = user
    user.nick, user.key = str(nick), new_key
    user.update_prefix()


def _quit(net: Network, node: str, record: Record) -> None:
    user = _remote(net, node, record[1])
    if user is not None:
        _drop(net, user, as_bytes(record[2]))


def _join(net: Network, node: str, record: Record) -> None:
    _, key, name, flags, line = record
    user = _remote(net, node, key)
    if user is None:
        return
    channel = _channel(net, name)
    if user not in channel.members:
        net.add_member(user, channel, str(flags))
        channel.send(as_bytes(line))


def _part(net: Network, node: str, record: Record) -> None:
    _, key, channel_key, line = record
    user = net.users.get(key)
    channel = net.channels.get(channel_key)
    if user is None or channel is None or user not in channel.members:
        return
    channel.send(as_bytes(line))
    net.leave(user, channel)


def _chan(net: Network, node: str, record: Record) -> None:
    fields, line = record[1], record[2]
    channel = net.channels.get(fields[0])
    if channel is None:
        return
    _set_channel(channel, fields, flags=True)
    if line is not None:
        channel.send(as_bytes(line))


def _msg(net: Network, node: str, record: Record) -> None:
    _, channel_key, sender_key, line = record
    channel = net.channels.get(channel_key)
    sender = _remote(net, node, sender_key)
    if channel is not None and sender is not None:
        net.fan_out(channel, as_bytes(line), sender)


def _to(net: Network, node: str, record: Record) -> None:
    user = net.users.get(record[1])
    if user is not None and not user.node and not user.gone:
        user.send(as_bytes(record[2]))


def _hello(net: Network, node: str, record: Record) -> None:
    if net.bus is not None:
        net.bus.publish(snapshot(net))


def _sync(net: Network, node: str, record: Record) -> None:
    """Make ``node``'s users what its snapshot says: new ones are shown joining their
    channels, channels left are shown parted, users missing are shown quitting."""
    seen: set[str] = set()
    for entry in record[1]:
        user = _new_remote(net, node, entry[:8])
        if user is None:
            continue
        seen.add(user.key)
        wanted = {irc_lower(name): (name, flags) for name, flags in entry[8]}
        for channel_key, channel in list(user.channels.items()):
            if channel_key not in wanted:
                channel.send(encode_line(format_line(user.prefix, "PART", channel.name)))
                net.leave(user, channel)
        for channel_key, (name, flags) in wanted.items():
            joined = user.channels.get(channel_key)
            if joined is None:
                joined = _channel(net, name)
                net.add_member(user, joined, str(flags))
                joined.send(encode_line(format_line(user.prefix, "JOIN", joined.name)))
            else:
                joined.members[user] = str(flags)
    for user in list(net.users.values()):
        if user.node == node and user.key not in seen:
            _drop(net, user, encode_line(format_line(user.prefix, "QUIT", "Quit")))
    for fields in record[2]:
        known = net.channels.get(fields[0])
        if known is not None:
            _set_channel(known, fields, flags=False)


def lose_node(net: Network, node: str, reason: str = NODE_LOST) -> list[str]:
    """``node`` stopped: each of its users quits (``QUIT :node lost`` to the local peers).

    Returns:
        the case-folded nicks it held.
    """
    keys: list[str] = []
    for user in list(net.users.values()):
        if user.node == node:
            keys.append(user.key)
            _drop(net, user, encode_line(format_line(user.prefix, "QUIT", reason)))
    net.nodes.pop(node, None)
    return keys


_APPLY = {
    "user": _user,
    "nick": _nick,
    "quit": _quit,
    "join": _join,
    "part": _part,
    "chan": _chan,
    "msg": _msg,
    "to": _to,
    "hello": _hello,
    "sync": _sync,
}
