"""The command handlers of every verb in :data:`medusa.ftp.commands.COMMANDS`, gathered
from the modules that implement them. A handler is ``handler(state, arg) -> result``: it
takes the session's :class:`~medusa.ftp.state.SessionState` and the command's argument and
returns a :class:`~medusa.ftp.results.Reply` or an action (:data:`medusa.ftp.results.Result`)
that the control connection carries out; none writes to the network."""

from __future__ import annotations

from collections.abc import Callable

from medusa.ftp import file_commands, info_commands, login_commands, transfer_commands
from medusa.ftp.commands import COMMANDS
from medusa.ftp.results import Result
from medusa.ftp.state import SessionState

__all__ = ["HANDLERS", "Handler"]

Handler = Callable[[SessionState, str], Result]
"""A command handler: ``(state, argument) -> reply or action``."""

HANDLERS: dict[str, Handler] = {
    **login_commands.HANDLERS,
    **info_commands.HANDLERS,
    **file_commands.HANDLERS,
    **transfer_commands.HANDLERS,
}
"""The handler of each command verb."""

assert set(HANDLERS) == set(COMMANDS), set(HANDLERS) ^ set(COMMANDS)
