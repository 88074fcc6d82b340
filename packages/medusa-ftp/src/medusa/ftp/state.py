"""The state of one FTP session, sans-IO: who is logged in, where, the transfer parameters
and the security level (RFC 959 §4.1, RFC 4217), in one typed object that command handlers
read and change (:mod:`medusa.ftp.results` is what they return).

The control connection (:class:`~medusa.ftp.session.FTPChannel`) owns one
:class:`SessionState`; a handler gets it with the command's argument and does no network
I/O (file-system calls go through :attr:`SessionState.fs`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from medusa.core.uploads import is_upload_temporary
from medusa.ftp.facts import DEFAULT_FACTS
from medusa.ftp.results import Reply

if TYPE_CHECKING:
    from medusa.core.vfs import Filesystem
    from medusa.ftp.accounts import Account
    from medusa.ftp.server import FTPServer
    from medusa.ftp.transfers import Transfer

__all__ = ["DataStatus", "SessionState"]


class DataStatus(Protocol):
    """What handlers may know of the data side (:class:`~medusa.ftp.dtp.ServerDTP`)."""

    @property
    def has_port(self) -> bool:
        """True when a data connection is up or one was prepared (``PASV``, ``PORT``...)."""
        ...

    @property
    def transfer(self) -> Transfer | None:
        """The transfer in progress, or None."""
        ...


@dataclass(slots=True, eq=False)
class SessionState:
    """One session's protocol state.

    Attributes:
        server: the :class:`~medusa.ftp.server.FTPServer` (its settings).
        peer_host: the client's address, canonical (``""`` before the greeting).
        public_host: the server address the client connected to (behind a trusted proxy,
            the PROXY header's destination), canonical: ``PASV`` announces it when no
            ``masquerade_address`` is set; ``EPSV`` answers for its family.
        data: the data side's status (None: no data port, as in handler tests).
        account: the logged-in user, or ``None``.
        fs: the user's filesystem (``None`` before login).
        pending_user: the name given to ``USER``, until ``PASS``.
        binary: ``TYPE I`` (True) or ``TYPE A`` (False, the default of RFC 959).
        restart: the ``REST`` offset for the next transfer, bytes.
        rename_from: the path given to ``RNFR``, for the ``RNTO`` right after it.
        tls: True once ``AUTH TLS`` succeeded.
        pbsz: ``PBSZ`` was given (RFC 4217 §8).
        protect_data: ``PROT P`` in force.
        epsv_all: ``EPSV ALL`` was given: other data-port commands are refused.
        facts: the ``MLST`` facts selected with ``OPTS MLST``.
        listing_style: ``"unix"`` or ``"msdos"`` for ``LIST``.
        failed_logins: failed logins on this connection.
        guest_id: the password (e-mail) an anonymous user gave, for the transfer log.
    """

    server: FTPServer
    peer_host: str = ""
    public_host: str = ""
    data: DataStatus | None = None
    account: Account | None = None
    fs: Filesystem | None = None
    pending_user: str | None = None
    binary: bool = False
    restart: int = 0
    rename_from: str | None = None
    tls: bool = False
    pbsz: bool = False
    protect_data: bool = False
    epsv_all: bool = False
    facts: frozenset[str] = DEFAULT_FACTS
    listing_style: Literal["unix", "msdos"] = "unix"
    failed_logins: int = 0
    guest_id: str = ""

    def logout(self) -> None:
        """Forget the user and the transfer parameters (``REIN``, RFC 959 §4.1.1); the
        security level (``AUTH``, ``PBSZ``, ``PROT``) stays."""
        self.account = None
        self.fs = None
        self.pending_user = None
        self.binary = False
        self.restart = 0
        self.rename_from = None
        self.epsv_all = False
        self.facts = DEFAULT_FACTS

    @property
    def has_port(self) -> bool:
        """True when a data connection is up or one was prepared."""
        data = self.data
        return data is not None and data.has_port

    def refusal(self, letter: str) -> Reply | None:
        """None when the user has permission ``letter`` (see :mod:`medusa.ftp.accounts`),
        else the ``550`` to send."""
        account = self.account
        if account is not None and letter in account.perms:
            return None
        return Reply(550, "Permission denied.")

    def checked_fs(self, letter: str, path: str, *, creates: bool = False) -> Filesystem | Reply:
        """The user's filesystem for an operation on ``path`` that needs permission
        ``letter``, or the refusal to send: ``550`` without the permission, then
        :meth:`hidden` (or, when the operation ``creates`` the name, :meth:`reserved`)."""
        fs = self.fs
        assert fs is not None
        refused = self.refusal(letter) or (self.reserved(path) if creates else self.hidden(path))
        return fs if refused is None else refused

    def hidden(self, path: str) -> Reply | None:
        """A ``550`` as for a missing file when ``path`` names the temporary file of an
        upload in progress (see :mod:`medusa.core.uploads`), else None."""
        return Reply(550, "No such file or directory.") if self._names_upload(path) else None

    def reserved(self, path: str) -> Reply | None:
        """A ``553`` (RFC 959: file name not allowed) when ``path`` would create or
        replace a file named like an upload in progress, else None."""
        if self._names_upload(path):
            return Reply(553, "File name not allowed (reserved for uploads in progress).")
        return None

    def _names_upload(self, path: str) -> bool:
        fs = self.fs
        if fs is None:
            return False
        try:
            return is_upload_temporary(fs.normalize(path))
        except (OSError, ValueError):
            return False  # a malformed path: the command's own check refuses it

    def as_user(self) -> contextlib.AbstractContextManager[object]:
        """The persona of a real Unix user around an operation (nothing for others)."""
        account = self.account
        if account is not None and account.persona is not None:
            return account.persona
        return contextlib.nullcontext()
