"""HTTP Basic authentication (RFC 7617) wrapped round any other handler.

Credentials come from a password file of salted scrypt hashes
(:class:`medusa.core.passwords.PasswordFile`, written by ``medusa passwd FILE USER``) and are
compared in constant time. A request without valid credentials gets 401 (RFC 9110 §15.5.2)
with a ``WWW-Authenticate: Basic realm="...", charset="UTF-8"`` challenge (RFC 7617 §2,
§2.1); each failure is logged with the client address and the user name tried, never the
password.

Password checks are throttled (:class:`medusa.http.throttle.CheckQueue` and
:class:`medusa.core.throttle.LoginFailures`): at most ``max_checks`` scrypt computations run
at once, taken from the client addresses in turn; a client address may have
``max_checks_per_address`` checks waiting or running and a connection
``max_checks_per_connection`` (more get 429 Too Many Requests, RFC 6585 §4, with
``Retry-After``); a check whose connection closed before its turn is dropped; the 401 of a
failure is sent after a delay that doubles with each failure of that address, and an address
with ``max_failures`` failures is answered 429 without any check for ``lockout`` seconds.
Concurrent requests with the same credentials share one check.

When the wrapped handler streams request bodies (a PUT, :mod:`medusa.http.body`), the
credentials are checked from the request's head, before ``100 Continue`` is sent and before
any of the body is read: a client without them gets its 401 without uploading anything.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import hmac
import inspect
import math
import os
import secrets
import time
from collections.abc import Awaitable
from typing import Any

from medusa.core.log import error_logger, peer_text
from medusa.core.passwords import PasswordFile
from medusa.core.throttle import LoginFailures
from medusa.http.body import BodySink
from medusa.http.handler import NOT_DONE_YET, Handler, NotDoneYet
from medusa.http.request import Request
from medusa.http.throttle import CheckQueue

__all__ = ["BasicAuthHandler", "client_address", "parse_basic_credentials"]


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


def client_address(request: Request) -> str:
    """Return the client's address without its port (``"192.0.2.7"``, ``"2001:db8::1"``),
    the key of the failure budget; ``"unix"`` for a Unix-domain socket peer."""
    peer = request.peer
    if isinstance(peer, tuple) and peer:
        return str(peer[0])
    return "unix"


def _alive(request: Request) -> bool:
    """True while ``request`` may still be answered (not finished, connection open)."""
    if request.finished:
        return False
    transport = request.channel.transport
    return transport is not None and not transport.is_closing()


class _Check:
    """One scrypt check and the requests waiting for its verdict."""

    __slots__ = ("address", "key", "password", "user", "waiters")

    def __init__(self, user: str, password: str, key: tuple[str, bytes], address: str) -> None:
        self.user = user
        self.password = password
        self.key = key
        self.address = address
        # (request, future of (ok, seconds before the refusal); None: refused unchecked)
        self.waiters: list[tuple[Request, asyncio.Future[tuple[bool, float] | None]]] = []

    def alive(self) -> bool:
        return any(_alive(request) for request, _ in self.waiters)

    def resolve(self, verdict: tuple[bool, float] | None) -> None:
        for _, future in self.waiters:
            if not future.done():
                future.set_result(verdict)


def _peer(request: Request) -> str:
    return peer_text(request.peer)


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
    loop's default thread pool, never on the loop's thread, and a success is remembered for 5
    minutes (medusa-core's credential cache, :func:`~medusa.core.passwords.recently_verified`:
    an HMAC of the password entry and the password under a per-process random key), so a
    client that sends its credentials on every request pays it once; a changed entry in the
    password file forgets it.
    Checks are throttled as the module's description says; 429 answers carry
    ``Retry-After`` (seconds).

    Args:
        handler: the :class:`~medusa.http.handler.Handler` to protect.
        passwords: a :class:`~medusa.core.passwords.PasswordFile`, or the path of one.
        realm: the protection space named in the challenge (``str``; quoted here).
        max_failures: failed checks from one client address after which it is locked out
            (0: never).
        lockout: seconds a locked-out address is answered 429 without a check; also how
            long its failures are remembered.
        failure_delay: seconds before the 401 of an address's first failure; doubled with
            each further failure, at most 8 s (0: no delay).
        max_checks: scrypt checks running at once.
        max_checks_per_address: checks waiting or running per client address (more: 429).
        max_checks_per_connection: checks waiting or running per connection (more: 429).

    Attributes:
        checks_run: scrypt checks started so far (``int``).
        checks_dropped: checks dropped unrun, their connection closed (``int``).
        throttled: requests answered 429 (``int``).

    Raises:
        ValueError: when ``realm`` contains CR, LF or other control characters, or
            characters outside Latin-1; when a bound is below 1 or a time negative.
        OSError: when ``passwords`` is a path that cannot be read.
    """

    def __init__(
        self,
        handler: Handler,
        passwords: PasswordFile | str | os.PathLike[str],
        realm: str = "Medusa",
        *,
        max_failures: int = 10,
        lockout: float = 300.0,
        failure_delay: float = 0.5,
        max_checks: int = 2,
        max_checks_per_address: int = 4,
        max_checks_per_connection: int = 2,
    ) -> None:
        if not realm.isprintable() or any(ord(c) > 0xFF for c in realm):
            raise ValueError(f"invalid realm {realm!r}: control or non-Latin-1 characters")
        if min(max_checks, max_checks_per_address, max_checks_per_connection) < 1:
            raise ValueError("max_checks, max_checks_per_address, max_checks_per_connection: >= 1")
        if max_failures < 0 or not lockout >= 0 or not failure_delay >= 0:
            raise ValueError("max_failures, lockout, failure_delay: >= 0")
        self.handler = handler
        self.passwords = (
            passwords if isinstance(passwords, PasswordFile) else PasswordFile(passwords)
        )
        self.realm = realm
        # Checks in progress are keyed by user and an HMAC of the password under a key that
        # lives only in this process (the password itself is never kept as a key).
        self._cache_key = secrets.token_bytes(32)
        quoted = realm.replace("\\", "\\\\").replace('"', '\\"')
        self.challenge = f'Basic realm="{quoted}", charset="UTF-8"'
        self.budget = LoginFailures(
            max_failures=max_failures,
            lockout=lockout,
            delay=failure_delay,
            max_delay=8.0,
            max_clients=10000,
        )
        self.queue: CheckQueue[_Check] = CheckQueue(
            _Check.alive,
            dropped=self._dropped,
            per_address=max_checks_per_address,
            per_connection=max_checks_per_connection,
        )
        self.max_checks = max_checks
        self._running = 0
        self._checks: dict[tuple[str, bytes], _Check] = {}  # waiting or running
        self.checks_run = 0
        self.checks_dropped = 0
        self.throttled = 0

    def __repr__(self) -> str:
        return f"<BasicAuthHandler realm={self.realm!r} {self.handler!r}>"

    def match(self, request: Request) -> bool:
        """Return the wrapped handler's answer."""
        return self.handler.match(request)

    def handle_request(self, request: Request) -> Awaitable[None] | NotDoneYet | None:
        """Check the credentials, then delegate to the wrapped handler or answer 401
        (429 when throttled)."""
        if request.user is not None and request.body_sink is not None:
            # Checked by receive_body before the body was streamed to the wrapped handler.
            return self.handler.handle_request(request)
        checked = self._credentials(request)
        if checked is None:
            return None
        user, password, key = checked
        if self.passwords.recently_verified(user, password):
            request.user = user
            return self.handler.handle_request(request)
        # scrypt takes tens of milliseconds: check in a thread so that the loop (and every
        # other client) never waits for it; the answer continues from the callback.
        future = self._submit(request, user, password, key)
        if future is None:
            return None  # answered already (429)
        future.add_done_callback(lambda f: self._verified(request, user, key, f))
        return NOT_DONE_YET

    def receive_body(self, request: Request) -> BodySink | Awaitable[BodySink | None] | None:
        """Check the credentials before a body is read (:class:`~medusa.http.body.BodyReceiver`):
        answer 401 (or 429) at once, or let the wrapped handler decide on the body (it is
        buffered when the wrapped handler does not stream bodies)."""
        checked = self._credentials(request)
        if checked is None:
            return None
        user, password, key = checked
        if self.passwords.recently_verified(user, password):
            request.user = user
            return self._inner_receive(request)
        future = self._submit(request, user, password, key)
        if future is None:
            return None
        return self._verify_then_receive(request, user, key, future)

    async def _verify_then_receive(
        self,
        request: Request,
        user: str,
        key: tuple[str, bytes],
        future: asyncio.Future[tuple[bool, float] | None],
    ) -> BodySink | None:
        verdict = await future
        if verdict is None or not _alive(request) or request.answered:
            return None
        ok, delay = verdict
        if not ok:
            if delay > 0:
                await asyncio.sleep(delay)
            if _alive(request) and not request.answered:
                self._refuse(request, user)
            return None
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
        401 (missing or malformed credentials) or 429 (the address is locked out) and
        return None."""
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
        # A locked-out address is refused before even the cache of verified credentials
        # is looked at (else that cache would answer its guesses at full speed).
        left = self.budget.locked(client_address(request), time.monotonic())
        if left > 0:
            error_logger.debug("authentication refused from %s: locked out", _peer(request))
            self._too_many(request, left)
            return None
        user, password = credentials
        key = (user, hmac.new(self._cache_key, password.encode(), hashlib.sha256).digest())
        return user, password, key

    # -- the queue of checks ---------------------------------------------------------------

    def _submit(
        self, request: Request, user: str, password: str, key: tuple[str, bytes]
    ) -> asyncio.Future[tuple[bool, float] | None] | None:
        """Queue a check of ``user``/``password`` for ``request`` (or join the same one in
        progress) and return the future of its verdict; answer 429 and return None when a
        bound is reached."""
        future: asyncio.Future[tuple[bool, float] | None] = (
            asyncio.get_running_loop().create_future()
        )
        check = self._checks.get(key)
        if check is None:
            address = client_address(request)
            full = self.queue.admit(address, request.channel)
            if full is not None:
                error_logger.info(
                    "authentication refused from %s: too many password checks for this %s",
                    _peer(request),
                    full,
                )
                self._too_many(request, 1.0)
                return None
            check = self._checks[key] = _Check(user, password, key, address)
            self.queue.push(address, request.channel, check)
        check.waiters.append((request, future))
        self._start_checks()
        return future

    def _start_checks(self) -> None:
        """Run waiting checks while fewer than ``max_checks`` run."""
        while self._running < self.max_checks:
            taken = self.queue.pop()
            if taken is None:
                return
            address, connection, check = taken
            self._running += 1
            self.checks_run += 1
            running = asyncio.get_running_loop().run_in_executor(
                None, self.passwords.verify, check.user, check.password
            )
            running.add_done_callback(functools.partial(self._checked, address, connection, check))

    def _checked(
        self, address: str, connection: Any, check: _Check, running: asyncio.Future[bool]
    ) -> None:
        """A check ended: count a failure, resolve its waiters, start the next ones."""
        self._running -= 1
        self.queue.finished(address, connection)
        self._checks.pop(check.key, None)
        ok = False
        if running.cancelled():
            pass
        elif running.exception() is not None:
            error_logger.error("password check failed", exc_info=running.exception())
        else:
            ok = running.result()
        delay = 0.0
        if not ok:  # a success was remembered by the check itself (verify_password)
            now = time.monotonic()
            delay = self.budget.failure(address, now)
            left = self.budget.locked(address, now)
            if left > 0:
                error_logger.warning(
                    "authentication: %s locked out for %.0f s after %d failures",
                    address,
                    left,
                    self.budget.max_failures,
                )
                for waiting in self.queue.remove_address(address):
                    self._checks.pop(waiting.key, None)
                    waiting.resolve(None)
                    for request, _ in waiting.waiters:
                        if _alive(request):
                            self._too_many(request, left)
        check.resolve((ok, delay))
        self._start_checks()

    def _dropped(self, check: _Check) -> None:
        """A check was dropped unrun: every request waiting for it is gone."""
        self.checks_dropped += 1
        self._checks.pop(check.key, None)
        check.resolve(None)

    def _verified(
        self,
        request: Request,
        user: str,
        key: tuple[str, bytes],
        future: asyncio.Future[tuple[bool, float] | None],
    ) -> None:
        verdict = future.result()
        if verdict is None or not _alive(request):
            return
        ok, delay = verdict
        if ok:
            request.user = user
            request.hand_to(self.handler)
        elif delay > 0:
            asyncio.get_running_loop().call_later(delay, self._refuse_later, request, user)
        else:
            self._refuse(request, user)

    # -- answers ---------------------------------------------------------------------------

    def _refuse_later(self, request: Request, user: str) -> None:
        if _alive(request) and not request.answered:
            self._refuse(request, user)

    def _refuse(self, request: Request, user: str) -> None:
        error_logger.warning(
            "authentication failed from %s: user %r, wrong password or unknown user",
            _peer(request),
            user,
        )
        self._challenge(request)

    def _too_many(self, request: Request, seconds: float) -> None:
        """Answer 429 Too Many Requests (RFC 6585 §4) with ``Retry-After`` (RFC 9110
        §10.2.3) in whole seconds."""
        self.throttled += 1
        request.set_header("Retry-After", str(max(1, math.ceil(seconds))))
        request.error(429, "Too many authentication attempts: try again later.")

    def _challenge(self, request: Request) -> None:
        request.set_header("WWW-Authenticate", self.challenge)
        request.error(401, "Authentication is required.")
