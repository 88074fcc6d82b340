"""MODE for users (RFC 2812 section 3.1.5) and channels (section 3.2.3, RFC 2811 section 4).

Channel modes served: ``+i`` invite only, ``+k`` key, ``+l`` limit, ``+m`` moderated,
``+n`` no messages from outside, ``+t`` topic settable by operators only, and the member
modes ``+o`` (operator) and ``+v`` (voice). Changing any needs ``+o`` on the channel. The
list modes ``b``, ``e`` and ``I`` are answered as empty lists (clients ask for them on
join) and cannot be set.
"""

from __future__ import annotations

from medusa.chat import numerics as n
from medusa.chat.casemap import irc_lower, is_channel_name
from medusa.chat.ircchannel import IRCChannel
from medusa.chat.message import Message, encode_line, format_line
from medusa.chat.network import Network
from medusa.chat.user import User

__all__ = ["MAX_MODE_CHANGES", "mode"]

MAX_MODE_CHANGES = 6
"""Mode changes with a parameter applied from one MODE message (``MODES`` in 005)."""

_LIST_ENDS = {
    "b": (n.RPL_ENDOFBANLIST, "End of channel ban list"),
    "e": (n.RPL_ENDOFEXCEPTLIST, "End of channel exception list"),
    "I": (n.RPL_ENDOFINVITELIST, "End of channel invite list"),
}


def mode(net: Network, user: User, msg: Message) -> None:
    """MODE <nick> [<modes>] or MODE <channel> [<modes> [<params>]]. 461 without a
    target."""
    if not msg.params:
        net.need_more_params(user, "MODE")
        return
    if is_channel_name(msg.params[0]):
        _channel_mode(net, user, msg)
    else:
        _user_mode(net, user, msg)


def _user_mode(net: Network, user: User, msg: Message) -> None:
    """User modes ``i`` and ``w`` may be set and unset; ``o`` may only be dropped; ``a``
    is AWAY's (ignored here). 401 for an unknown nick, 502 for another user's modes, 501
    for an unknown flag (the known ones are still applied); 221 answers a query."""
    target = msg.params[0]
    if irc_lower(target) != user.key:
        if net.find_user(target) is None:
            net.reply(user, n.ERR_NOSUCHNICK, target, "No such nick/channel")
        else:
            net.reply(user, n.ERR_USERSDONTMATCH, "Cannot change mode for other users")
        return
    if len(msg.params) < 2:
        net.reply(user, n.RPL_UMODEIS, "+" + "".join(sorted(user.modes)))
        return
    sign = "+"
    applied: list[tuple[str, str]] = []
    unknown = False
    for flag in msg.params[1]:
        if flag in "+-":
            sign = flag
        elif flag in "iw":
            if (flag in user.modes) != (sign == "+"):
                if sign == "+":
                    user.modes.add(flag)
                else:
                    user.modes.discard(flag)
                applied.append((sign, flag))
        elif flag == "o":
            if sign == "-" and "o" in user.modes:
                user.modes.discard("o")
                applied.append(("-", "o"))
        elif flag != "a":
            unknown = True
    if unknown:
        net.reply(user, n.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
    if applied:
        user.send(encode_line(format_line(user.prefix, "MODE", user.nick, _join_changes(applied))))


def _join_changes(changes: list[tuple[str, str]]) -> str:
    out = []
    last = ""
    for sign, flag in changes:
        if sign != last:
            out.append(sign)
            last = sign
        out.append(flag)
    return "".join(out)


def _channel_mode(net: Network, user: User, msg: Message) -> None:
    name = msg.params[0]
    channel = net.find_channel(name)
    if channel is None:
        net.reply(user, n.ERR_NOSUCHCHANNEL, name, "No such channel")
        return
    if len(msg.params) < 2:
        net.reply(
            user, n.RPL_CHANNELMODEIS, channel.name, *channel.mode_string(user in channel.members)
        )
        net.reply(user, n.RPL_CREATIONTIME, channel.name, str(channel.created))
        return
    modes = msg.params[1]
    args = msg.params[2:]
    stripped = modes.lstrip("+-")
    if stripped and all(flag in _LIST_ENDS for flag in stripped) and not args:
        for flag in dict.fromkeys(stripped):
            numeric, text = _LIST_ENDS[flag]
            net.reply(user, numeric, channel.name, text)
        return
    if not channel.is_operator(user):
        net.reply(user, n.ERR_CHANOPRIVSNEEDED, channel.name, "You're not channel operator")
        return
    _apply_channel_modes(net, user, channel, modes, args)


def _apply_channel_modes(
    net: Network, user: User, channel: IRCChannel, modes: str, args: list[str]
) -> None:
    """Apply the changes an operator asked for, answer errors (461, 401, 441, 467, 472)
    and tell the members about what changed, in one MODE line."""
    sign = "+"
    changes: list[tuple[str, str]] = []
    params: list[str] = []
    arg_index = 0
    with_param = 0

    def next_arg() -> str | None:
        nonlocal arg_index
        if arg_index >= len(args):
            return None
        arg_index += 1
        return args[arg_index - 1]

    for flag in modes:
        if flag in "+-":
            sign = flag
            continue
        if flag in "imnt":
            if (flag in channel.modes) != (sign == "+"):
                if sign == "+":
                    channel.modes.add(flag)
                else:
                    channel.modes.discard(flag)
                changes.append((sign, flag))
            continue
        if flag in "ov":
            arg = next_arg()
            if arg is None:
                net.need_more_params(user, "MODE")
                continue
            with_param += 1
            if with_param > MAX_MODE_CHANGES:
                continue
            target = net.find_user(arg)
            if target is None:
                net.reply(user, n.ERR_NOSUCHNICK, arg, "No such nick/channel")
                continue
            flags = channel.members.get(target)
            if flags is None:
                net.reply(
                    user,
                    n.ERR_USERNOTINCHANNEL,
                    target.nick,
                    channel.name,
                    "They aren't on that channel",
                )
                continue
            if (flag in flags) != (sign == "+"):
                new = flags + flag if sign == "+" else flags.replace(flag, "")
                channel.members[target] = "".join(sorted(new, key="ov".index))
                changes.append((sign, flag))
                params.append(target.nick)
            continue
        if flag == "k":
            arg = next_arg() if sign == "+" or arg_index < len(args) else None
            if sign == "+":
                if not arg or " " in arg or "," in arg:
                    net.need_more_params(user, "MODE")
                    continue
                if channel.password is not None:
                    net.reply(user, n.ERR_KEYSET, channel.name, "Channel key already set")
                    continue
                channel.password = arg
                changes.append(("+", "k"))
                params.append(arg)
            elif channel.password is not None:
                params.append(channel.password)
                channel.password = None
                changes.append(("-", "k"))
            continue
        if flag == "l":
            if sign == "+":
                arg = next_arg()
                if arg is None:
                    net.need_more_params(user, "MODE")
                    continue
                if not arg.isdigit() or int(arg) <= 0:
                    continue
                channel.limit = int(arg)
                changes.append(("+", "l"))
                params.append(arg)
            elif channel.limit is not None:
                channel.limit = None
                changes.append(("-", "l"))
            continue
        if flag in _LIST_ENDS:
            next_arg()  # a ban or exception mask: not served
            net.reply(
                user, n.ERR_UNKNOWNMODE, flag, f"is unknown mode char to me for {channel.name}"
            )
            continue
        net.reply(user, n.ERR_UNKNOWNMODE, flag, f"is unknown mode char to me for {channel.name}")
    if changes:
        line = format_line(user.prefix, "MODE", channel.name, _join_changes(changes), *params)
        channel.send(encode_line(line))
