"""HTTP Basic authentication (RFC 7617) wrapped round any other handler.

Credentials come from a password file of salted scrypt hashes
(:class:`medusa.core.passwords.PasswordFile`, written by ``medusa passwd FILE USER``) and are
compared in constant time. A request without valid credentials gets 401 (RFC 9110 §15.5.2)
with a ``WWW-Authenticate: Basic realm="...", charset="UTF-8"`` challenge (RFC 7617 §2,
§2.1); each failure is logged with the client address and the user name tried, never the
password.

When the wrapped handler streams request bodies (a PUT, :mod:`medusa.http.body`), the
credentials are checked from the request's head, before ``100 Continue`` is sent and before
any of the body is read: a client without them gets its 401 without uploading anything.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import inspect
import os
import secrets
import time
from collections.abc import Awaitable

from medusa.core.log import error_logger
from medusa.core.passwords import PasswordFile
from medusa.http.body import BodySink
from medusa.http.handler import Handler
from medusa.http.request import Request

CACHE_SECONDS = 300.0
"""How long a verified user and password are accepted without another scrypt check."""

CACHE_ENTRIES = 1024
"""Verified credentials remembered at most (the cache is emptied when full)."""

__all__ = ["BasicAuthHandler", "parse_basic_credentials"]


def parse_basic_credentials(value: str | None) -> tuple[str, str] | None:
    """Return ``(user, password)`` from an ``Authorization`` field value of the Basic
    scheme (RFC 7617 §2), or None when it is missing, of another scheme or malformed.

    The scheme name is case-insensitive; the credentials are base64 of ``user:password``
    in UTF-8 (RFC 7617 §2.1). A user-id containing control characters is refused (RFC 7617
    §2: neither part may contain them).
    """
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "basic" or not token or " " in token:
        return None
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep or not user.isprintable():
        return None
    return user, password


def _peer(request: Request) -> str:
    peer = request.peer
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = str(peer[0])
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
    return str(peer) if peer else "-"


class BasicAuthHandler:
    """Require Basic authentication (RFC 7617) before another handler answers.

    :meth:`match` is the wrapped handler's. :meth:`handle_request` reads the
    ``Authorization`` field; when its user and password check out against the password
    file, ``request.user`` is set (the access log shows it) and the wrapped handler answers
    (its result, possibly awaitable, is returned). Otherwise the answer is 401 with
    ``WWW-Authenticate: Basic realm="<realm>", charset="UTF-8"`` and a warning on
    :data:`medusa.core.log.error_logger` naming the client address and the user tried
    (requests without credentials, a browser's first try, are logged at debug level).

    Checking a password costs a scrypt computation (tens of milliseconds): it runs in the
    loop's default thread pool, never on the loop's thread, and a success is remembered for
    :data:`CACHE_SECONDS` (keyed by the user and an HMAC of the password under a per-process
    random key), so a client that sends its credentials on every request pays it once.

    Args:
        handler: the :class:`~medusa.http.handler.Handler` to protect.
        passwords: a :class:`~medusa.core.passwords.PasswordFile`, or the path of one.
        realm: the protection space named in the challenge (``str``; quoted here).

    Raises:
        ValueError: when ``realm`` contains CR, LF or other control characters, or
            characters outside Latin-1.
        OSError: when ``passwords`` is a path that cannot be read.
    """

    def __init__(
        self,
        handler: Handler,
        passwords: PasswordFile | str | os.PathLike[str],
        realm: str = "Medusa",
    ) -> None:
        if not realm.isprintable() or any(ord(c) > 0xFF for c in realm):
            raise ValueError(f"invalid realm {realm!r}: control or non-Latin-1 characters")
        self.handler = handler
        self.passwords = (
            passwords if isinstance(passwords, PasswordFile) else PasswordFile(passwords)
        )
        self.realm = realm
        # Recently verified credentials, keyed by user and an HMAC of the password under a
        # key that lives only in this process (the password itself is never kept).
        self._cache_key = secrets.token_bytes(32)
        self._recent: dict[tuple[str, bytes], float] = {}
        quoted = realm.replace("\\", "\\\\").replace('"', '\\"')
        self.challenge = f'Basic realm="{quoted}", charset="UTF-8"'

    def __repr__(self) -> str:
        return f"<BasicAuthHandler realm={self.realm!r} {self.handler!r}>"

    def match(self, request: Request) -> bool:
        """Return the wrapped handler's answer."""
        return self.handler.match(request)

    def handle_request(self, request: Request) -> Awaitable[None] | None:
        """Check the credentials, then delegate to the wrapped handler or answer 401."""
        if request.user is not None and request.body_sink is not None:
            # Checked by receive_body before the body was streamed to the wrapped handler.
            return self.handler.handle_request(request)
        checked = self._credentials(request)
        if checked is None:
            return None
        user, password, key = checked
        if self._recently_verified(key):
            request.user = user
            return self.handler.handle_request(request)
        # scrypt takes tens of milliseconds: check in a thread so that the loop (and every
        # other client) never waits for it; the answer continues from the callback.
        future = asyncio.get_running_loop().run_in_executor(
            None, self.passwords.verify, user, password
        )
        future.add_done_callback(lambda f: self._verified(request, user, key, f))
        return None

    def receive_body(self, request: Request) -> BodySink | Awaitable[BodySink | None] | None:
        """Check the credentials before a body is read (:class:`~medusa.http.body.BodyReceiver`):
        answer 401 at once, or let the wrapped handler decide on the body (it is buffered
        when the wrapped handler does not stream bodies)."""
        checked = self._credentials(request)
        if checked is None:
            return None
        user, password, key = checked
        if self._recently_verified(key):
            request.user = user
            return self._inner_receive(request)
        return self._verify_then_receive(request, user, password, key)

    async def _verify_then_receive(
        self, request: Request, user: str, password: str, key: tuple[str, bytes]
    ) -> BodySink | None:
        ok = await asyncio.get_running_loop().run_in_executor(
            None, self.passwords.verify, user, password
        )
        if request.answered:
            return None
        if not ok:
            self._refuse(request, user)
            return None
        self._remember(key)
        request.user = user
        result = self._inner_receive(request)
        if result is not None and inspect.isawaitable(result):
            return await result
        return result

    def _inner_receive(self, request: Request) -> BodySink | Awaitable[BodySink | None] | None:
        receive = getattr(self.handler, "receive_body", None)
        if receive is None:
            return None
        result: BodySink | Awaitable[BodySink | None] | None = receive(request)
        return result

    def _credentials(self, request: Request) -> tuple[str, str, tuple[str, bytes]] | None:
        """Return ``(user, password, cache key)`` from the Authorization field, or answer
        401 and return None."""
        value = request.get_header("Authorization")
        credentials = parse_basic_credentials(value)
        if credentials is None:
            if value is None:
                error_logger.debug("authentication required from %s", _peer(request))
            else:
                error_logger.warning(
                    "authentication failed from %s: malformed Authorization", _peer(request)
                )
            self._challenge(request)
            return None
        user, password = credentials
        key = (user, hmac.new(self._cache_key, password.encode(), hashlib.sha256).digest())
        return user, password, key

    def _recently_verified(self, key: tuple[str, bytes]) -> bool:
        expires = self._recent.get(key)
        return expires is not None and expires > time.monotonic()

    def _remember(self, key: tuple[str, bytes]) -> None:
        if len(self._recent) >= CACHE_ENTRIES:
            self._recent.clear()
        self._recent[key] = time.monotonic() + CACHE_SECONDS

    def _refuse(self, request: Request, user: str) -> None:
        error_logger.warning(
            "authentication failed from %s: user %r, wrong password or unknown user",
            _peer(request),
            user,
        )
        self._challenge(request)

    def _verified(
        self,
        request: Request,
        user: str,
        key: tuple[str, bytes],
        future: asyncio.Future[bool],
    ) -> None:
        if request.channel.transport is None or request.finished:
            return
        ok = not future.cancelled() and future.exception() is None and future.result()
        if not ok:
            self._refuse(request, user)
            return
        self._remember(key)
        request.user = user
        request.channel.run_handler(request, self.handler)

    def _challenge(self, request: Request) -> None:
        request.set_header("WWW-Authenticate", self.challenge)
        request.error(401, "Authentication is required.")
