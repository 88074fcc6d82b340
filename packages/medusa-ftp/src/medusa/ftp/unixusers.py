"""Real Unix users: a password checked by PAM, a session in the user's home directory,
and every file operation made as the user (:class:`~medusa.ftp.persona.Persona`), as the
original Medusa's ``unix_user_handler`` did.

The server must run as root. ``root`` and users whose login shell is not listed in
``/etc/shells`` are refused unless configured otherwise.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import sys

from medusa.core.log import error_logger
from medusa.ftp.accounts import Account, parse_permissions
from medusa.ftp.authorizers import ANONYMOUS_NAMES
from medusa.ftp.persona import Persona

__all__ = ["UnixUsers", "valid_shells"]

FULL = parse_permissions("elradfmwM")


def valid_shells(path: str = "/etc/shells") -> frozenset[str]:
    """Return the login shells listed in ``path`` (empty when it cannot be read)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            return frozenset(
                line.strip() for line in file if line.strip() and not line.startswith("#")
            )
    except OSError:
        return frozenset()


class UnixUsers:
    """Authorizer of the machine's own users through PAM.

    Args:
        service: the PAM service name (``/etc/pam.d/SERVICE``).
        allow_root: accept uid 0 (refused by default).
        require_shell: refuse users whose shell is not in ``/etc/shells``.
        perms: the permission letters of every Unix user (all by default; the file
            system's own permissions apply on top, as the user).
        check_timeout: seconds a PAM check may take.

    Raises:
        PermissionError: when the process is not running as root (it could not take a
            user's persona).
    """

    def __init__(
        self,
        service: str = "login",
        *,
        allow_root: bool = False,
        require_shell: bool = True,
        perms: frozenset[str] = FULL,
        check_timeout: float = 30.0,
    ) -> None:
        if os.geteuid() != 0:
            raise PermissionError("real Unix users need the server to run as root")
        self.service = service
        self.allow_root = allow_root
        self.require_shell = require_shell
        self.perms = perms
        self.check_timeout = check_timeout

    def handles(self, user: str) -> bool:
        """True for every name but the anonymous ones (unknown users are refused by
        :meth:`authenticate`)."""
        return user.lower() not in ANONYMOUS_NAMES

    def _eligible(self, user: str) -> pwd.struct_passwd | None:
        try:
            entry = pwd.getpwnam(user)
        except (KeyError, ValueError):
            return None
        if entry.pw_uid == 0 and not self.allow_root:
            return None
        if self.require_shell and entry.pw_shell not in valid_shells():
            return None
        return entry

    async def authenticate(self, user: str, password: str) -> Account | None:
        """Check the password with PAM (in a child process) and return the account: root
        is the user's home directory, the persona their uid, gid and groups."""
        entry = self._eligible(user)
        if entry is None or "\0" in user or "\0" in password:
            return None
        if not await self._pam(user, password):
            return None
        groups = tuple(os.getgrouplist(user, entry.pw_gid))
        persona = Persona(entry.pw_uid, entry.pw_gid, groups)
        return Account(user, entry.pw_dir, self.perms, persona=persona)

    async def _pam(self, user: str, password: str) -> bool:
        """Run the PAM check in a child process (:mod:`medusa.ftp.pam_check`); True when
        PAM accepted the password. Refusals are logged at INFO, failures of the check
        itself (PAM missing, an error, the timeout) at WARNING, with the child's stderr."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "medusa.ftp.pam_check",
            self.service,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        data = user.encode("utf-8", "surrogateescape") + b"\0"
        data += password.encode("utf-8", "surrogateescape")
        try:
            _, err = await asyncio.wait_for(process.communicate(data), self.check_timeout)
        except TimeoutError:
            process.kill()
            await process.wait()
            error_logger.warning("PAM check of %r took over %s s", user, self.check_timeout)
            return False
        status = process.returncode
        reason = err.decode("utf-8", "replace").strip()[-2000:]
        if status == 1:
            error_logger.info("%s", reason or f"PAM refused {user!r}")
        elif status != 0:
            error_logger.warning("PAM check of %r exited with %s: %s", user, status, reason)
        return status == 0
