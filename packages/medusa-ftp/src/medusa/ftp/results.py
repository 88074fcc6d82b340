"""What an FTP command handler returns, sans-IO: a :class:`Reply` (RFC 959 §4.2) or an
:data:`Action` the control connection carries out (a login to check, a data port to open,
a transfer to start, the connection to secure or close). The control connection
(:class:`~medusa.ftp.session.FTPChannel`) is the one place that writes replies.

Handlers are ``handler(state, arg) -> Result`` with ``state`` a
:class:`~medusa.ftp.state.SessionState` and ``arg`` the command's argument; nothing here
does I/O. A result is made once per command and read once: the actions are plain slotted
dataclasses (not frozen: a frozen one costs an ``object.__setattr__`` call per field,
measurable on a session's path); nobody changes one after it is returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from medusa.core.vfs import PathEscapeError

if TYPE_CHECKING:
    import ssl

    from medusa.ftp.transfers import Transfer

__all__ = [
    "Abort",
    "Action",
    "Close",
    "Login",
    "Logout",
    "OpenPassive",
    "Reply",
    "Result",
    "SecureControl",
    "SetActive",
    "StartTransfer",
    "failure",
]


class Reply(NamedTuple):
    """One reply to send (RFC 959 §4.2).

    Attributes:
        code: the three-digit reply code (100-599).
        text: the text: a ``str`` (newlines make a multi-line reply) or a list of lines.
        log: an event for the session log written with the reply (``"MKD /a"``), or
            ``""`` for none.
    """

    code: int
    text: str | list[str]
    log: str = ""


@dataclass(slots=True)
class Close:
    """Send ``reply``, then close the control connection once it is written (``QUIT``,
    RFC 959 §4.1.1); ``log`` goes to the session log."""

    reply: Reply
    log: str = ""


@dataclass(slots=True)
class Login:
    """Check ``password`` for ``user`` (``PASS``, RFC 959 §4.1.1): the control connection
    answers 230 or, after the failure delay, 530 (later commands wait meanwhile)."""

    user: str
    password: str


@dataclass(slots=True)
class Logout:
    """Forget the user and the transfer parameters, drop the data connection, then send
    ``reply`` (``REIN``, RFC 959 §4.1.1)."""

    reply: Reply


@dataclass(slots=True)
class SecureControl:
    """Send ``reply`` (234), then run the TLS handshake on the control connection with
    ``context`` (``AUTH TLS``, RFC 4217 §4); later commands wait for it."""

    reply: Reply
    context: ssl.SSLContext


@dataclass(slots=True)
class SetActive:
    """Connect to ``host:port`` for the next transfer (``PORT``/``EPRT``, RFC 959 §4.1.2,
    RFC 2428 §2; the address was checked), then send ``reply``."""

    host: str
    port: int
    reply: Reply


@dataclass(slots=True)
class OpenPassive:
    """Listen for a passive data connection (``PASV``, ``EPSV``): reply ``227`` with
    ``host`` and the port (RFC 959 §4.1.2), or with ``extended`` ``229`` with the port only
    (RFC 2428 §3); ``425`` when no port could be bound."""

    extended: bool
    host: str


@dataclass(slots=True)
class StartTransfer:
    """Start ``transfer`` on the data connection: ``125``/``150`` (``preliminary``
    replaces their text), the transfer, then its ``226`` or error; later commands wait
    (RFC 959 §4.2). ``log``: an event for the session log first (``"STOR /a started"``)."""

    transfer: Transfer
    preliminary: str | None = None
    log: str = ""


@dataclass(slots=True)
class Abort:
    """``ABOR`` (RFC 959 §4.1.3): ``426`` for the transfer in progress and ``226``, or
    ``225`` when there was none (the data connection is closed)."""


Action = Close | Login | Logout | SecureControl | SetActive | OpenPassive | StartTransfer | Abort
"""What the control connection carries out for a handler."""

Result = Reply | Action
"""What a command handler returns."""


def failure(exc: OSError, code: int = 550) -> Reply:
    """The reply to a failed file-system operation: ``550`` (or ``code``) with the
    reason, never a real path."""
    if isinstance(exc, PathEscapeError):
        reason = "Permission denied"
    elif isinstance(exc, FileNotFoundError):
        reason = "No such file or directory"
    else:
        reason = exc.strerror or type(exc).__name__
    return Reply(code, f"{reason}.")
