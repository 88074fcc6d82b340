"""Salted password hashes and the password files that hold them.

Passwords are hashed with scrypt (RFC 7914) from the standard library (:func:`hashlib.scrypt`)
with a 16-byte random salt from :mod:`secrets` and a 32-byte derived key, and encoded as::

    $scrypt$n=16384,r=8,p=1$<salt, base64>$<key, base64>

A password file holds one ``user:encoded`` entry a line; blank lines and lines starting with
``#`` are ignored. :class:`PasswordFile` reads such a file and checks passwords in constant
time (:func:`hmac.compare_digest`), with the same cost for unknown users; :func:`set_password`
adds or replaces an entry atomically. HTTP Basic authentication and FTP virtual users share
this module.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import tempfile
import time
from pathlib import Path

from medusa.core.credentialcache import CredentialCache
from medusa.core.log import error_logger

__all__ = [
    "PasswordFile",
    "hash_password",
    "recently_verified",
    "set_password",
    "valid_user_name",
    "verify_password",
]

SCRYPT_N = 2**14
"""The scrypt CPU/memory cost parameter of new hashes (RFC 7914 §2, ``N``)."""
SCRYPT_R = 8
"""The scrypt block size parameter of new hashes (RFC 7914 §2, ``r``)."""
SCRYPT_P = 1
"""The scrypt parallelization parameter of new hashes (RFC 7914 §2, ``p``)."""
SALT_BYTES = 16
KEY_BYTES = 32

# Limits on the parameters of stored hashes, so that a crafted entry cannot make one check
# take seconds or gigabytes (scrypt needs about 128 * N * r bytes and N * r * p time).
MAX_N = 2**20
MAX_R = 32
MAX_P = 16
MAX_MEMORY = 2**27  # 128 MiB
MAX_WORK = 2**14 * 8 * 16  # sixteen times the default cost
_MIN_KEY, _MAX_KEY = 16, 64

_PARAMS = re.compile(r"n=([0-9]{1,8}),r=([0-9]{1,3}),p=([0-9]{1,3})")
_USER = re.compile(r"[^\s:#][^\s:]*")
_RELOAD_INTERVAL = 1.0


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=n,
        r=r,
        p=p,
        maxmem=128 * n * r * (p + 2) + 2**20,
        dklen=length,
    )


def hash_password(password: str) -> str:
    """Return the encoded scrypt hash (RFC 7914) of ``password`` with a fresh random salt.

    Args:
        password: the password (``str``), hashed as UTF-8.

    Returns:
        ``$scrypt$n=16384,r=8,p=1$<salt b64>$<key b64>`` (``str``).

    Raises:
        UnicodeEncodeError: when ``password`` holds lone surrogates.
    """
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES)
    return f"$scrypt$n={SCRYPT_N},r={SCRYPT_R},p={SCRYPT_P}${_b64(salt)}${_b64(key)}"


def _parse(encoded: str) -> tuple[int, int, int, bytes, bytes] | None:
    """Return ``(n, r, p, salt, key)`` of a well-formed, reasonably priced hash, or None."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != "scrypt":
        return None
    found = _PARAMS.fullmatch(parts[2])
    if found is None:
        return None
    n, r, p = (int(g) for g in found.groups())
    if n < 2 or n > MAX_N or n & (n - 1) or not 1 <= r <= MAX_R or not 1 <= p <= MAX_P:
        return None
    if 128 * n * r > MAX_MEMORY or n * r * p > MAX_WORK:
        return None
    try:
        salt = base64.b64decode(parts[3], validate=True)
        key = base64.b64decode(parts[4], validate=True)
    except (binascii.Error, ValueError):
        return None
    if not salt or not _MIN_KEY <= len(key) <= _MAX_KEY:
        return None
    return n, r, p, salt, key


_recent = CredentialCache()
"""The process's remembered successes (see :mod:`medusa.core.credentialcache`)."""


def recently_verified(password: str, encoded: str) -> bool:
    """True when ``password`` matched the hash ``encoded`` in the last 5 minutes (a
    success remembered by :func:`verify_password`): microseconds, so callers may ask on
    the event loop before handing a scrypt check to a thread. Never raises."""
    return _recent.verified(password, encoded)


def verify_password(password: str, encoded: str) -> bool:
    """Return True when ``password`` matches the scrypt hash ``encoded``.

    The derived key is compared in constant time (:func:`hmac.compare_digest`). Malformed
    entries, and entries whose parameters would cost too much time or memory (``n`` above
    2**20, more than 128 MiB, or more than sixteen times the default work), give False
    without hashing. A success is remembered for 5 minutes (as Apache's
    ``mod_authn_socache``; :mod:`medusa.core.credentialcache`): the same password checked
    against the same entry again is answered without scrypt; a wrong one always costs the
    full check.

    Args:
        password: the password tried (``str``).
        encoded: an entry made by :func:`hash_password` (``str``).

    Returns:
        ``bool``; never raises for bad input.
    """
    if _recent.verified(password, encoded):
        return True
    parsed = _parse(encoded)
    if parsed is None:
        return False
    n, r, p, salt, key = parsed
    try:
        derived = _scrypt(password, salt, n, r, p, len(key))
    except (ValueError, MemoryError, UnicodeEncodeError):
        return False
    if not hmac.compare_digest(derived, key):
        return False
    _recent.remember(password, encoded)
    return True


_dummy_hash: str | None = None


def _dummy() -> str:
    """A hash checked for unknown users, so that they cost as much as known ones."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password(secrets.token_hex(16))
    return _dummy_hash


def valid_user_name(user: str) -> bool:
    """Return True when ``user`` may appear in a password file: not empty, no ``:``, no
    whitespace or control characters, and not starting with ``#``."""
    return _USER.fullmatch(user) is not None and user.isprintable()


def _read(path: Path) -> dict[str, str]:
    entries: dict[str, str] = {}
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            user, sep, encoded = line.partition(":")
            if not sep or not valid_user_name(user) or _parse(encoded) is None:
                error_logger.warning("%s:%d: malformed password entry ignored", path, number)
                continue
            entries[user] = encoded
    return entries


class PasswordFile:
    """A file of ``user:encoded`` entries, read at construction and again when it changes.

    Lines are ``user:$scrypt$...`` (see :func:`hash_password`); blank lines and lines
    starting with ``#`` are ignored; malformed lines are skipped with a warning on
    :data:`medusa.core.log.error_logger`. When a user appears twice, the last entry wins.

    :meth:`verify` checks at most once a second whether the file changed (modification
    time, size or inode) and reads it again if so.

    Args:
        path: the file (``str`` or :class:`os.PathLike`).

    Raises:
        OSError: when the file cannot be read at construction.
        UnicodeDecodeError: when it is not UTF-8.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._entries: dict[str, str] = {}
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self._load()

    def __repr__(self) -> str:
        return f"<PasswordFile {str(self.path)!r} {len(self._entries)} users>"

    def __contains__(self, user: object) -> bool:
        return user in self._entries

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def users(self) -> list[str]:
        """The user names, sorted."""
        return sorted(self._entries)

    def _load(self) -> None:
        st = os.stat(self.path)
        self._entries = _read(self.path)
        self._stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        self._checked = time.monotonic()

    def reload(self) -> bool:
        """Read the file again if its modification time, size or inode changed.

        A file that became unreadable keeps the entries last read (and logs a warning).

        Returns:
            True when the file was read again.
        """
        self._checked = time.monotonic()
        try:
            st = os.stat(self.path)
            if (st.st_mtime_ns, st.st_size, st.st_ino) == self._stamp:
                return False
            self._load()
        except (OSError, UnicodeDecodeError) as exc:
            error_logger.warning("password file %s not reloaded: %s", self.path, exc)
            return False
        return True

    def recently_verified(self, user: str, password: str) -> bool:
        """True when ``password`` is ``user``'s current entry's and passed
        :meth:`verify` in the last 5 minutes (see :func:`recently_verified`). The file is
        read again first when it may have changed (at most once a second, as in
        :meth:`verify`), so a changed password stops the old one within a second."""
        if time.monotonic() - self._checked >= _RELOAD_INTERVAL:
            self.reload()
        encoded = self._entries.get(user)
        return encoded is not None and recently_verified(password, encoded)

    def verify(self, user: str, password: str) -> bool:
        """Return True when ``password`` is ``user``'s password.

        Unknown users are checked against a dummy hash, so an answer costs the same time
        whether the user exists or not. Never raises for bad input.
        """
        if time.monotonic() - self._checked >= _RELOAD_INTERVAL:
            self.reload()
        encoded = self._entries.get(user)
        if encoded is None:
            verify_password(password, _dummy())
            return False
        return verify_password(password, encoded)


def set_password(path: str | os.PathLike[str], user: str, password: str) -> None:
    """Add ``user`` to the password file ``path`` or replace their entry, atomically.

    The new content goes to a temporary file in the same directory (mode 0o600), is flushed
    to disk (:func:`os.fsync`) and renamed over ``path`` (:func:`os.replace`), so readers see
    either the old file or the new one. Other lines, comments included, are kept; a missing
    file is created.

    Args:
        path: the password file (``str`` or :class:`os.PathLike`).
        user: the user name (no ``:``, whitespace or control characters; not starting
            with ``#``).
        password: the new password (``str``, not empty).

    Raises:
        ValueError: for an invalid user name or an empty password.
        OSError: when the file cannot be read or written.
    """
    if not valid_user_name(user):
        raise ValueError(f"invalid user name {user!r}")
    if not password:
        raise ValueError("empty password")
    target = Path(path)
    entry = f"{user}:{hash_password(password)}\n"
    try:
        old = target.read_text(encoding="utf-8").splitlines(keepends=True)
    except FileNotFoundError:
        old = []
    lines: list[str] = []
    replaced = False
    for line in old:
        if line.partition(":")[0].strip() == user and not line.lstrip().startswith("#"):
            if not replaced:
                lines.append(entry)
                replaced = True
            continue
        lines.append(line if line.endswith("\n") else line + "\n")
    if not replaced:
        lines.append(entry)
    directory = target.parent
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), 0o600)
            file.writelines(lines)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
