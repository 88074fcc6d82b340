"""Passwords that recently passed their scrypt check, remembered as keyed digests.

A scrypt check costs tens of milliseconds on purpose (RFC 7914; the cost that makes a stolen
password file expensive to attack). A client that logs in again and again with the right
password (an FTP client opening a session per transfer, a script polling a protected page)
would pay it every time. Like Apache's ``mod_authn_socache``, a success is remembered for a
few minutes: as a keyed BLAKE2b digest (RFC 7693's keyed mode, a MAC; a quarter of
HMAC-SHA256's cost here), under a key drawn at random when the process starts, of the stored
hash and the password together, so that

* a wrong password never matches (it is always checked with scrypt, and so still costs an
  attacker the full price per guess, on top of the servers' failed-login delays);
* a changed password entry (a new hash, a new salt) never matches an old success;
* what is held in memory is useless without the key, which never leaves the process.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable

__all__ = ["CredentialCache"]


class CredentialCache:
    """Remembered successes of password checks.

    Args:
        lifetime: seconds a success is remembered (300: Apache's ``AuthnCacheTimeout``).
        size: most successes held; when full, expired ones are dropped, then all.
        clock: monotonic seconds (the test's own clock, or :func:`time.monotonic`).

    Safe to use from several threads (the checks run in worker threads).
    """

    def __init__(
        self,
        lifetime: float = 300.0,
        size: int = 4096,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.lifetime = lifetime
        self.size = size
        self._clock = clock
        self._key = secrets.token_bytes(32)
        self._until: dict[bytes, float] = {}
        self._lock = threading.Lock()

    def _digest(self, password: str, encoded: str) -> bytes:
        text = f"{encoded}\x00{password}".encode("utf-8", "surrogatepass")
        return hashlib.blake2b(text, key=self._key, digest_size=32).digest()

    def verified(self, password: str, encoded: str) -> bool:
        """True when ``password`` passed its check against ``encoded`` (a stored hash, as
        :func:`~medusa.core.passwords.hash_password` makes) within :attr:`lifetime`
        seconds. A few microseconds; never raises."""
        digest = self._digest(password, encoded)
        with self._lock:
            until = self._until.get(digest)
            if until is None:
                return False
            if self._clock() < until:
                return True
            del self._until[digest]
            return False

    def remember(self, password: str, encoded: str) -> None:
        """Record that ``password`` matched ``encoded`` (after a successful scrypt check)."""
        digest = self._digest(password, encoded)
        now = self._clock()
        with self._lock:
            if len(self._until) >= self.size:
                for old in [d for d, until in self._until.items() if until <= now]:
                    del self._until[old]
                if len(self._until) >= self.size:
                    self._until.clear()
            self._until[digest] = now + self.lifetime

    def clear(self) -> None:
        """Forget every success."""
        with self._lock:
            self._until.clear()
