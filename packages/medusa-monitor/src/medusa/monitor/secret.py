"""The shared secret and the challenge-response login built on it.

The original monitor hashed a timestamp with the password (MD5). Here the server sends a
fresh random nonce of :data:`NONCE_BYTES` bytes (256 bits, from :mod:`secrets`); the client
answers ``HMAC-SHA256(secret, nonce)`` (RFC 2104 with SHA-256, FIPS 180-4); the server
compares the answer with :func:`hmac.compare_digest` (constant time). The secret itself
never crosses the wire, and an answer is worth nothing for any other connection.

Secrets come from a file or an environment variable, never from a command line (where
``ps`` shows them to every user).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat

__all__ = [
    "MAX_SECRET_BYTES",
    "MIN_SECRET_BYTES",
    "NONCE_BYTES",
    "SECRET_ENV",
    "SECRET_FILE_ENV",
    "SecretError",
    "answer_challenge",
    "check_secret",
    "load_secret",
    "new_nonce",
    "read_secret_file",
    "secret_from_env",
    "verify_answer",
]

MIN_SECRET_BYTES = 16
"""Shortest secret accepted, bytes (after stripping the trailing newline of a file)."""

MAX_SECRET_BYTES = 4096
"""Longest secret accepted, bytes."""

NONCE_BYTES = 32
"""Length of the server's challenge, bytes (256 random bits)."""

SECRET_ENV = "MEDUSA_MONITOR_SECRET"  # noqa: S105 -- a variable's name, not a secret
"""The environment variable that ``medusa serve --monitor`` and the client take the secret
from."""

SECRET_FILE_ENV = "MEDUSA_MONITOR_SECRET_FILE"  # noqa: S105 -- a variable's name
"""The environment variable naming a file that holds the secret."""

DIGEST_BYTES = hashlib.sha256().digest_size
"""Length of an answer, bytes (32; 64 hexadecimal digits on the wire)."""


class SecretError(ValueError):
    """A secret that cannot be used (missing, unreadable, too short, exposed file).

    Args:
        option: the option it came from (``secret_file``, ``secret_env``), for messages.
        reason: what is wrong.
    """

    def __init__(self, option: str, reason: str) -> None:
        self.option = option
        super().__init__(reason)


def check_secret(secret: bytes, option: str = "secret") -> bytes:
    """Return ``secret`` when its length is acceptable.

    Args:
        secret: the secret bytes.
        option: where it came from, for the error.

    Raises:
        SecretError: shorter than :data:`MIN_SECRET_BYTES` or longer than
            :data:`MAX_SECRET_BYTES`.
    """
    if len(secret) < MIN_SECRET_BYTES:
        raise SecretError(
            option,
            f"the secret is {len(secret)} bytes long; at least {MIN_SECRET_BYTES} are required",
        )
    if len(secret) > MAX_SECRET_BYTES:
        raise SecretError(option, f"the secret is longer than {MAX_SECRET_BYTES} bytes")
    return secret


def read_secret_file(path: str | os.PathLike[str], option: str = "secret_file") -> bytes:
    """Read a secret from a file: its bytes without one trailing ``\\n`` (or ``\\r\\n``).

    The file must be a regular file that neither its group nor other users can read or
    write (mode 0600 or 0400), as ssh requires of private keys.

    Args:
        path: the file.
        option: the option naming it, for errors.

    Raises:
        SecretError: the file is missing, unreadable, open to other users, or holds a
            secret of a bad length.
    """
    try:
        with open(path, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise SecretError(option, f"{os.fspath(path)}: not a regular file")
            if info.st_mode & 0o077:
                raise SecretError(
                    option,
                    f"{os.fspath(path)}: readable or writable by other users "
                    f"(mode {stat.S_IMODE(info.st_mode):04o}); chmod 600 it",
                )
            data = f.read(MAX_SECRET_BYTES + 3)
    except OSError as exc:
        raise SecretError(option, f"{os.fspath(path)}: {exc.strerror or exc}") from exc
    if data.endswith(b"\n"):
        data = data[:-1].removesuffix(b"\r")
    return check_secret(data, option)


def secret_from_env(name: str, option: str = "secret_env") -> bytes:
    """Read a secret from the environment variable ``name`` (UTF-8).

    Raises:
        SecretError: the variable is not set, or the secret has a bad length.
    """
    value = os.environ.get(name)
    if value is None:
        raise SecretError(option, f"the environment variable {name} is not set")
    return check_secret(os.fsencode(value), option)


def load_secret(
    *,
    secret: bytes | str | None = None,
    secret_file: str | os.PathLike[str] | None = None,
    secret_env: str | None = None,
) -> bytes | None:
    """Return the secret given in one of three ways, or ``None`` when none is given.

    Args:
        secret: the secret itself (API use: a startup script that got it elsewhere).
        secret_file: a file holding it (see :func:`read_secret_file`).
        secret_env: the name of an environment variable holding it.

    Raises:
        SecretError: more than one source is given, or the one given is unusable.
    """
    given = [n for n, v in (("secret", secret), ("secret_file", secret_file)) if v is not None]
    if secret_env is not None:
        given.append("secret_env")
    if len(given) > 1:
        raise SecretError(given[1], f"give only one of {', '.join(given)}")
    if secret is not None:
        return check_secret(secret.encode() if isinstance(secret, str) else bytes(secret))
    if secret_file is not None:
        return read_secret_file(secret_file)
    if secret_env is not None:
        return secret_from_env(secret_env)
    return None


def new_nonce() -> bytes:
    """Return a fresh challenge: :data:`NONCE_BYTES` bytes from the system's CSPRNG."""
    return secrets.token_bytes(NONCE_BYTES)


def answer_challenge(secret: bytes, nonce: bytes) -> bytes:
    """Return the answer to ``nonce``: ``HMAC-SHA256(secret, nonce)``, 32 bytes."""
    return hmac.new(secret, nonce, hashlib.sha256).digest()


def verify_answer(secret: bytes, nonce: bytes, answer: bytes) -> bool:
    """Check an answer in constant time (:func:`hmac.compare_digest`)."""
    return hmac.compare_digest(answer_challenge(secret, nonce), answer)
