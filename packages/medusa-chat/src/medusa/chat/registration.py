"""Connection registration and link upkeep: PASS, NICK, USER, CAP, PING, PONG, QUIT, MOTD
(RFC 2812 sections 3.1, 3.4.1, 3.7.2-3; IRCv3 capability negotiation, answered with an empty
list so clients that start with ``CAP LS`` go on)."""

from __future__ import annotations

import string
from typing import TYPE_CHECKING

from medusa.chat import numerics as n
from medusa.chat.casemap import is_valid_nick
from medusa.chat.message import Message, encode_line, parse_number
from medusa.chat.serverqueries import VERSION, send_isupport, send_lusers
from medusa.chat.user import User

if TYPE_CHECKING:  # network.py imports the handlers (its default table): a type only here
    from medusa.chat.network import Network

__all__ = [
    "cap",
    "motd",
    "nick",
    "password",
    "ping",
    "pong",
    "quit_command",
    "send_motd",
    "user_command",
]

USER_MODES = "iow"
CHANNEL_MODES = "iklmnopstv"

_USERNAME_CHARACTERS = frozenset(string.ascii_letters + string.digits + "-_.[]{}|`^")


def password(net: Network, user: User, msg: Message) -> None:
    """PASS <password> (RFC 2812 section 3.1.1): optional unless the server has one."""
    if user.registered:
        net.reply(user, n.ERR_ALREADYREGISTRED, "Unauthorized command (already registered)")
        return
    if not msg.params:
        net.need_more_params(user, "PASS")
        return
    user.password_ok = net.config.password is None or msg.params[0] == net.config.password


def nick(net: Network, user: User, msg: Message) -> None:
    """NICK <nickname> (RFC 2812 section 3.1.2): 431 without one, 432 when malformed, 433
    when taken; a registered user's change is announced to its peers. On a bus the nick
    is claimed for the whole network first (:meth:`Network.claim_on_bus`): 433 when
    another node's user holds it, 437 while the bus is unreachable."""
    if not msg.params or not msg.params[0]:
        net.reply(user, n.ERR_NONICKNAMEGIVEN, "No nickname given")
        return
    new = msg.params[0]
    if not is_valid_nick(new, net.config.nick_length):
        net.reply(user, n.ERR_ERRONEUSNICKNAME, new, "Erroneous nickname")
        return
    if net.nick_taken(new, user):
        net.reply(user, n.ERR_NICKNAMEINUSE, new, "Nickname is already in use")
        return
    if new == user.nick:
        return
    if net.bus is not None:  # one answer for the whole network: the bus's (433 or 437)
        net.claim_on_bus(user, new)
        return
    net.claim_nick(user, new)
    try_register(net, user)


def user_command(net: Network, user: User, msg: Message) -> None:
    """USER <user> <mode> <unused> <realname> (RFC 2812 section 3.1.3).

    461 when a parameter is missing or the user name or the realname is empty (as
    modern.ircdocs.horse says). The user name keeps its ASCII letters, digits and
    ``-_.[]{}|`^``, 10 at most (``user`` when none is left). ``<mode>`` is a number whose
    bit 2 sets ``+w`` and bit 3 ``+i``; anything else there (``*``, a Unicode digit) sets
    nothing.
    """
    if user.registered:
        net.reply(user, n.ERR_ALREADYREGISTRED, "Unauthorized command (already registered)")
        return
    params = msg.params
    if len(params) < 4 or not params[0] or not params[3]:
        net.need_more_params(user, "USER")
        return
    name = "".join(c for c in params[0] if c in _USERNAME_CHARACTERS)[:10]
    user.username = name or "user"
    user.realname = params[3]
    bits = parse_number(params[1], 3)
    if bits is not None:
        if bits & 4:
            user.modes.add("w")
        if bits & 8:
            user.modes.add("i")
    try_register(net, user)


def cap(net: Network, user: User, msg: Message) -> None:
    """CAP LS/LIST/REQ/END (IRCv3 Client Capability Negotiation, versions 3.1 and 3.2):
    a server that offers no capabilities answers ``CAP * LS :`` (an empty list; irssi
    1.4 and WeeChat 3.8 start with ``CAP LS 302`` and then send ``CAP END``), ``NAK``s
    every ``REQ``, and lets registration wait for ``END`` once a client started the
    negotiation. Other subcommands get ``ERR_INVALIDCAPCMD`` (410)."""
    sub = msg.param(0).upper()

    def answer(reply: str, caps: str) -> None:
        user.send(encode_line(f":{net.config.server_name} CAP {user.nick} {reply} :{caps}"))

    if sub == "LS":
        if not user.registered:
            user.cap_negotiating = True
        answer("LS", "")
    elif sub == "LIST":
        answer("LIST", "")
    elif sub == "REQ":
        if not user.registered:
            user.cap_negotiating = True
        answer("NAK", msg.param(1))
    elif sub == "END":
        if user.cap_negotiating:
            user.cap_negotiating = False
            try_register(net, user)
    else:
        net.reply(user, n.ERR_INVALIDCAPCMD, sub or "*", "Invalid CAP command")


def try_register(net: Network, user: User) -> None:
    """Complete the registration once NICK and USER were given (and CAP ended): the
    password check (464 and a close when wrong), then 001-005, the LUSERS replies
    (251-255) and the MOTD (or 422)."""
    if user.registered or user.key == "" or not user.username or user.cap_negotiating:
        return
    if net.config.password is not None and not user.password_ok:
        net.reply(user, n.ERR_PASSWDMISMATCH, "Password incorrect")
        net.quit(user, "Bad password")
        return
    user.registered = True
    user.update_prefix()
    net.user_changed(user)
    config = net.config
    net.reply(user, n.RPL_WELCOME, f"Welcome to the Internet Relay Network {user.prefix}")
    net.reply(user, n.RPL_YOURHOST, f"Your host is {config.server_name}, running version {VERSION}")
    net.reply(user, n.RPL_CREATED, f"This server was created {net.created}")
    net.reply(user, n.RPL_MYINFO, config.server_name, VERSION, USER_MODES, CHANNEL_MODES)
    send_isupport(net, user)
    send_lusers(net, user)
    send_motd(net, user)


def send_motd(net: Network, user: User) -> None:
    """The message of the day (375, 372 per line, 376) or ``ERR_NOMOTD`` (422)."""
    lines = net.config.motd
    if lines is None:
        net.reply(user, n.ERR_NOMOTD, "MOTD File is missing")
        return
    net.reply(user, n.RPL_MOTDSTART, f"- {net.config.server_name} Message of the day - ")
    net.send_lines(user, n.RPL_MOTD, (f"- {line}" for line in lines))
    net.reply(user, n.RPL_ENDOFMOTD, "End of MOTD command")


def motd(net: Network, user: User, msg: Message) -> None:
    """MOTD (RFC 2812 section 3.4.1)."""
    send_motd(net, user)


def ping(net: Network, user: User, msg: Message) -> None:
    """PING <token> (RFC 2812 section 3.7.2): answered with PONG; 409 without a token."""
    if not msg.params:
        net.reply(user, n.ERR_NOORIGIN, "No origin specified")
        return
    server = net.config.server_name
    user.send(encode_line(f":{server} PONG {server} :{msg.params[0]}"))


def pong(net: Network, user: User, msg: Message) -> None:
    """PONG (RFC 2812 section 3.7.3): the transport already counted the line as a sign of
    life, which is all a PONG is for here."""


def quit_command(net: Network, user: User, msg: Message) -> None:
    """QUIT [<message>] (RFC 2812 section 3.1.7): peers see ``QUIT :Quit: message``."""
    text = msg.param(0)
    net.quit(user, f"Quit: {text}" if text else "Quit")
