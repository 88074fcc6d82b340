"""Authorizers: who may log in, and as what :class:`~medusa.ftp.accounts.Account`.

* :class:`AnonymousAuthorizer` — ``anonymous`` or ``ftp`` with any password (by convention
  an e-mail address, which is logged), read-only on one directory (RFC 1635).
* :class:`VirtualUsers` — users of the configuration, each with a salted scrypt hash (inline,
  or in a password file from ``medusa passwd``), a root directory and permissions.

Real Unix users are in :mod:`medusa.ftp.unixusers`. Password checks cost tens of
milliseconds of CPU (scrypt), so they run in a worker thread, never on the loop.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from medusa.core.passwords import PasswordFile, recently_verified, verify_password
from medusa.ftp.accounts import READ_ONLY, Account

__all__ = [
    "ANONYMOUS_NAMES",
    "AnonymousAuthorizer",
    "Authorizer",
    "VirtualUser",
    "VirtualUsers",
]

ANONYMOUS_NAMES = frozenset({"anonymous", "ftp"})
"""The user names of anonymous FTP (RFC 1635)."""


@runtime_checkable
class Authorizer(Protocol):
    """Something that checks logins for some user names."""

    def handles(self, user: str) -> bool:
        """Return True when ``user`` is one of this authorizer's users (its
        :meth:`authenticate` gives the answer)."""
        ...

    async def authenticate(self, user: str, password: str) -> Account | None:
        """Return the account of ``user`` when ``password`` is right, else None."""
        ...


class AnonymousAuthorizer:
    """Anonymous logins (``anonymous`` and ``ftp``, RFC 1635), read-only on ``root``.

    Args:
        root: the directory anonymous users see as ``/``.
        perms: their permission letters (read-only by default).

    Attributes:
        account: the (immutable) account of every anonymous login.

    Raises:
        NotADirectoryError: when ``root`` is not a directory.
    """

    def __init__(self, root: str | os.PathLike[str], perms: frozenset[str] = READ_ONLY) -> None:
        self.root = os.path.realpath(os.fspath(root))
        if not os.path.isdir(self.root):
            raise NotADirectoryError(f"{root}: not a directory")
        self.perms = perms
        self.account = Account("anonymous", self.root, perms, anonymous=True)

    def handles(self, user: str) -> bool:
        """True for ``anonymous`` and ``ftp`` (any case)."""
        return user.lower() in ANONYMOUS_NAMES

    async def authenticate(self, user: str, password: str) -> Account | None:
        """Accept any password; the account (:attr:`account`) is read-only on :attr:`root`."""
        return self.account


@dataclass(frozen=True, slots=True)
class VirtualUser:
    """One configured user.

    Attributes:
        name: the login name.
        root: the real directory that is ``/`` for them.
        perms: permission letters (see :mod:`medusa.ftp.accounts`).
        password_hash: a ``$scrypt$...`` hash (:func:`medusa.core.passwords.hash_password`),
            or ``None`` to look the user up in the authorizer's password file.
    """

    name: str
    root: str
    perms: frozenset[str]
    password_hash: str | None = None


class VirtualUsers:
    """Users from the configuration, checked against salted scrypt hashes in constant time.

    Args:
        users: the users.
        password_file: a file of ``user:hash`` lines (``medusa passwd``) for users without an
            inline hash; it is read again when it changes.

    Raises:
        ValueError: for a user with neither a hash nor a password file, or a root that is
            not a directory.
        OSError: when the password file cannot be read.
    """

    def __init__(
        self,
        users: Iterable[VirtualUser],
        password_file: str | os.PathLike[str] | PasswordFile | None = None,
    ) -> None:
        if password_file is not None and not isinstance(password_file, PasswordFile):
            password_file = PasswordFile(password_file)
        self.password_file = password_file
        self.users: dict[str, VirtualUser] = {}
        for user in users:
            if user.password_hash is None and password_file is None:
                raise ValueError(f"user {user.name!r}: no password and no password file")
            if not os.path.isdir(user.root):
                raise ValueError(f"user {user.name!r}: root {user.root}: not a directory")
            self.users[user.name] = user

    def handles(self, user: str) -> bool:
        """True for the configured names."""
        return user in self.users

    def verified_at_once(self, user: str, password: str) -> Account | None:
        """Return ``user``'s account when ``password`` passed its scrypt check in the last
        5 minutes (:func:`medusa.core.passwords.recently_verified`: an HMAC, microseconds,
        so it is asked on the event loop), else None, and then :meth:`authenticate`
        decides. A changed entry (inline or in the password file, which is read again
        when it changed, at most once a second) never matches an old success; a wrong
        password never matches at all."""
        entry = self.users.get(user)
        if entry is None:
            return None
        if entry.password_hash is not None:
            ok = recently_verified(password, entry.password_hash)
        else:
            passwords = self.password_file
            ok = passwords is not None and passwords.recently_verified(user, password)
        return self._account(entry) if ok else None

    async def authenticate(self, user: str, password: str) -> Account | None:
        """Check ``password`` (a success of the last 5 minutes at once, on the loop:
        :meth:`verified_at_once`; else scrypt in a worker thread); return the account or
        None."""
        account = self.verified_at_once(user, password)
        entry = self.users.get(user)
        if account is not None or entry is None:
            return account
        if entry.password_hash is not None:
            ok = await asyncio.to_thread(verify_password, password, entry.password_hash)
        else:
            passwords = self.password_file
            assert passwords is not None
            ok = await asyncio.to_thread(passwords.verify, user, password)
        return self._account(entry) if ok else None

    @staticmethod
    def _account(entry: VirtualUser) -> Account:
        """The account of a user who logged in. Its root is the configured directory: the
        session's filesystem resolves it (symbolic links followed) as the user logs in."""
        return Account(entry.name, entry.root, entry.perms)
