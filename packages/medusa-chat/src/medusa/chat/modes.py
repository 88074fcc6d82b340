"""MODE for users (RFC 2812 section 3.1.5) and channels (section 3.2.3, RFC 2811 section 4).

Channel modes served: ``+i`` invite only, ``+k`` key, ``+l`` limit, ``+m`` moderated,
``+n`` no messages from outside, ``+p`` private, ``+s`` secret (RFC 2811 section 4.2.6),
``+t`` topic settable by operators only, and the member modes ``+o`` (operator) and ``+v``
(voice). Changing any needs ``+o`` on the channel. The list modes ``b``, ``e`` and ``I``
are answered as empty lists (clients ask for them on join) and cannot be set.

A MODE message applies all of its changes or none: one unknown mode, missing parameter,
absent member or invalid key or limit (``ERR_INVALIDMODEPARAM``, 696, as
modern.ircdocs.horse advises) refuses the whole message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medusa.chat import numerics as n
from medusa.chat.casemap import irc_lower, is_channel_name
from medusa.chat.ircchannel import IRCChannel
from medusa.chat.message import Message, encode_line, format_line, parse_number
from medusa.chat.user import User

if TYPE_CHECKING:  # network.py imports the handlers (its default table): a type only here
    from medusa.chat.network import Network

__all__ = ["FLAG_MODES", "KEY_LENGTH", "MAX_MODE_CHANGES", "mode"]

MAX_MODE_CHANGES = 6
"""Mode changes with a parameter one MODE message may make (``MODES`` in 005)."""

KEY_LENGTH = 32
"""The longest channel key (``KEYLEN`` in 005)."""

FLAG_MODES = "imnpst"
"""Channel modes without a parameter (type D of ``CHANMODES`` in 005)."""

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
    for an unknown flag (and then nothing is applied); 221 answers a query."""
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
    modes = set(user.modes)
    applied: list[tuple[str, str]] = []
    for flag in msg.params[1]:
        if flag in "+-":
            sign = flag
        elif flag in "iw":
            if (flag in modes) != (sign == "+"):
                if sign == "+":
                    modes.add(flag)
                else:
                    modes.discard(flag)
                applied.append((sign, flag))
        elif flag == "o":
            if sign == "-" and "o" in modes:
                modes.discard("o")
                applied.append(("-", "o"))
        elif flag != "a":
            net.reply(user, n.ERR_UMODEUNKNOWNFLAG, "Unknown MODE flag")
            return
    if applied:
        user.modes = modes
        user.send(encode_line(format_line(user.prefix, "MODE", user.nick, _join_changes(applied))))
        net.user_changed(user)


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


def _valid_key(key: str) -> bool:
    """A channel key clients can give back with JOIN: 1 to :data:`KEY_LENGTH` characters,
    no space, no comma (JOIN's separator), no control character, not starting with ``:``."""
    if not 0 < len(key) <= KEY_LENGTH or key[0] == ":":
        return False
    return not any(c in " ," or c < " " or c == "\x7f" for c in key)


def _apply_channel_modes(
    net: Network, user: User, channel: IRCChannel, modes: str, args: list[str]
) -> None:
    """Apply the changes an operator asked for, all of them or none.

    The changes are worked out on a copy of the channel's state; the first problems found
    are answered (461 a parameter missing, 401/441 no such member, 467 key already set, 472
    unknown mode, 696 ``ERR_INVALIDMODEPARAM`` for a bad key or limit, 400 for more than
    :data:`MAX_MODE_CHANGES` changes with a parameter) and then nothing is applied. When
    there is no problem the copy replaces the state and the members are told about what
    changed in one MODE line (modes already so are left out of it).
    """
    sign = "+"
    flag_modes = set(channel.modes)
    password = channel.password
    limit = channel.limit
    member_flags: dict[User, str] = {}
    changes: list[tuple[str, str]] = []
    params: list[str] = []
    errors: list[tuple[str, ...]] = []
    arg_index = 0
    with_param = 0
    name = channel.name

    def next_arg() -> str | None:
        nonlocal arg_index, with_param
        if arg_index >= len(args):
            return None
        arg_index += 1
        with_param += 1
        return args[arg_index - 1]

    for flag in modes:
        if len(errors) >= MAX_MODE_CHANGES:
            break
        if flag in "+-":
            sign = flag
            continue
        if flag in FLAG_MODES:
            if (flag in flag_modes) != (sign == "+"):
                if sign == "+":
                    flag_modes.add(flag)
                else:
                    flag_modes.discard(flag)
                changes.append((sign, flag))
            continue
        if flag in "ov":
            arg = next_arg()
            if arg is None:
                errors.append((n.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters"))
                continue
            target = net.find_user(arg)
            if target is None:
                errors.append((n.ERR_NOSUCHNICK, arg, "No such nick/channel"))
                continue
            flags = member_flags.get(target, channel.members.get(target))
            if flags is None:
                errors.append(
                    (n.ERR_USERNOTINCHANNEL, target.nick, name, "They aren't on that channel")
                )
                continue
            if (flag in flags) != (sign == "+"):
                new = flags + flag if sign == "+" else flags.replace(flag, "")
                member_flags[target] = "".join(sorted(new, key="ov".index))
                changes.append((sign, flag))
                params.append(target.nick)
            continue
        if flag == "k":
            if sign == "+":
                arg = next_arg()
                if arg is None:
                    errors.append((n.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters"))
                elif not _valid_key(arg):
                    errors.append(
                        (
                            n.ERR_INVALIDMODEPARAM,
                            name,
                            "k",
                            arg,
                            f"Invalid key: 1 to {KEY_LENGTH} characters, no space or comma",
                        )
                    )
                elif password is not None:
                    errors.append((n.ERR_KEYSET, name, "Channel key already set"))
                else:
                    password = arg
                    changes.append(("+", "k"))
                    params.append(arg)
            else:
                if arg_index < len(args):
                    next_arg()  # -k names the key (RFC 2812 section 3.2.3); any is taken
                if password is not None:
                    params.append(password)
                    password = None
                    changes.append(("-", "k"))
            continue
        if flag == "l":
            if sign == "+":
                arg = next_arg()
                value = parse_number(arg) if arg is not None else None
                if arg is None:
                    errors.append((n.ERR_NEEDMOREPARAMS, "MODE", "Not enough parameters"))
                elif value is None or value <= 0:
                    errors.append(
                        (
                            n.ERR_INVALIDMODEPARAM,
                            name,
                            "l",
                            arg,
                            "Invalid limit: a number of members from 1 to 999999999",
                        )
                    )
                elif value != limit:
                    limit = value
                    changes.append(("+", "l"))
                    params.append(str(value))
            elif limit is not None:
                limit = None
                changes.append(("-", "l"))
            continue
        if flag in _LIST_ENDS:
            next_arg()  # a ban or exception mask: not served
        errors.append((n.ERR_UNKNOWNMODE, flag, f"is unknown mode char to me for {name}"))
    if not errors and with_param > MAX_MODE_CHANGES:
        errors.append(
            (
                n.ERR_UNKNOWNERROR,
                "MODE",
                f"Too many changes with a parameter: {MAX_MODE_CHANGES} at most (MODES)",
            )
        )
    if errors:
        for error in dict.fromkeys(errors):
            net.reply(user, *error)
        return
    if not changes:
        return
    channel.modes = flag_modes
    channel.password = password
    channel.limit = limit
    for member, flags in member_flags.items():
        if member in channel.members:
            channel.members[member] = flags
    line = format_line(user.prefix, "MODE", name, _join_changes(changes), *params)
    net.channel_changed(channel, encode_line(line))
