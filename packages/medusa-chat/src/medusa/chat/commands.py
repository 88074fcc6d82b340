"""The standard table of client commands, from command name to handler (RFC 2812 section
3), and the commands accepted before registration.

:class:`~medusa.chat.network.Network` is given a table when it is built (the server passes
its own, ``Network()`` takes :data:`COMMANDS`) and looks commands up there. The import runs
one way: ``network`` imports this module and the handler modules, which name ``Network``
only as a type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeAlias

from medusa.chat import membership, messaging, modes, queries, registration, serverqueries
from medusa.chat.message import Message
from medusa.chat.user import User

if TYPE_CHECKING:
    from medusa.chat.network import Network

__all__ = ["COMMANDS", "PRE_REGISTRATION", "Handler"]

Handler: TypeAlias = Callable[["Network", User, Message], None]
"""A command handler: ``handler(network, user, message)``; replies go out through
``user.send``. Malformed input is the handler's to answer (an error numeric); an exception
it raises is a bug, which the network logs and answers with ``ERR_UNKNOWNERROR`` (400)."""

COMMANDS: Mapping[str, Handler] = {
    "PASS": registration.password,
    "NICK": registration.nick,
    "USER": registration.user_command,
    "CAP": registration.cap,
    "PING": registration.ping,
    "PONG": registration.pong,
    "QUIT": registration.quit_command,
    "MOTD": registration.motd,
    "VERSION": serverqueries.version,
    "TIME": serverqueries.time_command,
    "LUSERS": serverqueries.lusers,
    "ADMIN": serverqueries.admin,
    "INFO": serverqueries.info,
    "JOIN": membership.join,
    "PART": membership.part,
    "TOPIC": membership.topic,
    "NAMES": membership.names,
    "LIST": membership.list_command,
    "KICK": membership.kick,
    "INVITE": membership.invite,
    "PRIVMSG": messaging.privmsg,
    "NOTICE": messaging.notice,
    "AWAY": messaging.away,
    "MODE": modes.mode,
    "WHO": queries.who,
    "WHOIS": queries.whois,
    "WHOWAS": queries.whowas,
    "ISON": queries.ison,
    "USERHOST": queries.userhost,
}

PRE_REGISTRATION = frozenset({"PASS", "NICK", "USER", "CAP", "PING", "PONG", "QUIT"})
"""Commands accepted before the welcome; others get ``ERR_NOTREGISTERED`` (451)."""
