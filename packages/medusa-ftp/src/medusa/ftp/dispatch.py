"""The command handlers of every verb in :data:`medusa.ftp.commands.COMMANDS`, gathered
from the modules that implement them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from medusa.ftp import file_commands, info_commands, login_commands, transfer_commands
from medusa.ftp.commands import COMMANDS

if TYPE_CHECKING:
    from medusa.ftp.session import FTPChannel

__all__ = ["HANDLERS"]

Handler = Callable[["FTPChannel", str], None]

HANDLERS: dict[str, Handler] = {
    **login_commands.HANDLERS,
    **info_commands.HANDLERS,
    **file_commands.HANDLERS,
    **transfer_commands.HANDLERS,
}
"""The handler of each command verb."""

assert set(HANDLERS) == set(COMMANDS), set(HANDLERS) ^ set(COMMANDS)
