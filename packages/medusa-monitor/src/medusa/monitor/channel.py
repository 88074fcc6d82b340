"""One monitor connection: the login, then the prompt (see :mod:`medusa.monitor.wire`).

The login is the challenge-response of :mod:`medusa.monitor.secret` (or, on a Unix socket
served without a secret, the peer's uid from ``SO_PEERCRED``). A wrong answer is counted by
the server's :class:`~medusa.core.throttle.LoginFailures`, logged with the client's
address, answered ``DENIED`` after the throttle's delay, and the connection dropped; a login
not completed within ``login_timeout`` counts as a failure too.

After the login each ``LINE`` goes to the session's :class:`~medusa.monitor.console.Console`
(``MORE`` until a statement is complete) and each ``EXEC`` block is compiled whole; the code
runs in the loop's thread from this callback. Every line executed is written to the
server's audit log with the client's identity.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING, Any

from medusa.core.channel import Channel
from medusa.monitor import wire
from medusa.monitor.console import Console, Outcome
from medusa.monitor.namespace import banner, build_namespace
from medusa.monitor.secret import new_nonce, verify_answer
from medusa.monitor.unixsock import PeerCredentials, peer_credentials

if TYPE_CHECKING:
    from medusa.monitor.server import MonitorServer

__all__ = ["MonitorChannel"]

_LOGIN_LINE = 256
"""Bytes a client may send before logging in without a newline."""

_NO_LIMIT = 10**12
"""EXEC lengths are checked by the channel, which skips an oversized block."""

_COMPILE_ERRORS = (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError)


def _printable(text: str) -> str:
    """``text`` with control characters escaped, for one log line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class MonitorChannel(Channel):
    """A monitor session.

    Args:
        server: the :class:`~medusa.monitor.server.MonitorServer` that accepted it.

    Attributes:
        client: who is connected, for logs: ``HOST:PORT``, or ``unix:pid=P,uid=U``.
        client_key: what failures are counted against: the host, or ``unix:uid=U``.
        credentials: the Unix-socket peer's pid, uid and gid (``None`` on TCP).
        console: the session's interpreter once logged in.
    """

    terminator = b"\n"

    def __init__(self, server: MonitorServer) -> None:
        super().__init__(server, max_incoming=_LOGIN_LINE)
        self.monitor = server
        self.client = "?"
        self.client_key = "?"
        self.credentials: PeerCredentials | None = None
        self.console: Console | None = None
        self._state = "login"
        self._nonce = b""
        self._task: asyncio.Task[Any] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._discard = False  # skipping an EXEC block over max_source

    def __repr__(self) -> str:
        return f"<MonitorChannel {self.client} {self._state}>"

    @property
    def logged_in(self) -> bool:
        """True once the login succeeded."""
        return self._state == "ready"

    @property
    def busy(self) -> bool:
        """True while awaited code of this session runs."""
        return self._task is not None

    # -- login -----------------------------------------------------------------------------

    def handle_connect(self) -> None:
        """Identify the client; refuse a locked-out one; send the challenge."""
        peer = self.peer
        monitor = self.monitor
        if isinstance(peer, tuple):
            host, port = peer[0], peer[1]
            self.client_key = host
            self.client = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        else:
            sock = self.transport.get_extra_info("socket") if self.transport else None
            creds = self.credentials = peer_credentials(sock)
            if creds is None:
                self.client_key = self.client = "unix"
            else:
                self.client_key = f"unix:uid={creds.uid}"
                self.client = f"unix:pid={creds.pid},uid={creds.uid}"
        left = monitor.throttle.locked(self.client_key, time.monotonic())
        if left:
            monitor.audit(f"{self.client} refused: locked out for {left:.0f} more s")
            self._refuse("locked")
            return
        if monitor.secret is None:
            creds = self.credentials
            if creds is None or creds.uid not in (os.geteuid(), 0):
                monitor.audit(f"{self.client} refused: not this server's user")
                self._refuse("peer")
                return
            self.push(wire.hello(None))
            self._logged_in()
            return
        self._nonce = new_nonce()
        self.push(wire.hello(self._nonce))

    def _refuse(self, reason: str) -> None:
        self._state = "denied"
        self.push(wire.denied(reason))
        self.close_when_done()

    def _login(self, data: bytes) -> None:
        monitor = self.monitor
        secret = monitor.secret
        assert secret is not None
        now = time.monotonic()
        if monitor.throttle.locked(self.client_key, now):
            monitor.audit(f"{self.client} refused: locked out")
            self._refuse("locked")
            return
        try:
            request = wire.parse_request(data, max_length=0)
        except wire.ProtocolError:
            request = None
        if (
            request is not None
            and request.kind == "AUTH"
            and verify_answer(secret, self._nonce, bytes.fromhex(request.text))
        ):
            monitor.throttle.success(self.client_key)
            self._logged_in()
            return
        self._failed(now)

    def _failed(self, now: float) -> None:
        """Count a failure; refuse after the throttle's delay."""
        monitor = self.monitor
        throttle = monitor.throttle
        delay = throttle.failure(self.client_key, now)
        monitor.counters.errors += 1
        message = f"{self.client} login failed; refused after {delay:g} s"
        if throttle.locked(self.client_key, now):
            message += f"; {self.client_key} locked out for {throttle.lockout:g} s"
        monitor.audit(message, failure=True)
        self._state = "denied"
        self._nonce = b""
        self.pause_reading("denied")
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(delay, self._refuse, "secret")

    def _logged_in(self) -> None:
        monitor = self.monitor
        self._state = "ready"
        self.max_incoming = monitor.max_source + _LOGIN_LINE
        self.console = Console(
            build_namespace(monitor, self, monitor.namespace),
            output_limit=monitor.output_limit,
            name=str(monitor.next_session()),
        )
        monitor.audit(f"{self.client} logged in")
        self.push(wire.ok(banner(monitor)))

    # -- requests --------------------------------------------------------------------------

    def found_terminator(self) -> None:
        """Dispatch one request line, or the ``EXEC`` block just collected."""
        data = self.get_incoming()
        if isinstance(self.terminator, int):
            self.set_terminator(b"\n")
            if self._discard:
                self._discard = False
                self._protocol_error(f"EXEC block over {self.monitor.max_source} bytes")
            else:
                self._run_block(data)
            return
        if self._state == "login":
            self._login(data)
            return
        if self._state != "ready":
            return
        try:
            request = wire.parse_request(data, max_length=_NO_LIMIT)
        except wire.ProtocolError as exc:
            self._protocol_error(str(exc))
            return
        if self._task is not None:
            if request.kind == "CANCEL":
                self.monitor.audit(f"{self.client} cancel")
                self._task.cancel()
            else:
                self._protocol_error(f"{request.kind} while code is running")
            return
        if request.kind == "LINE":
            self._run_line(request.text)
        elif request.kind == "EXEC":
            if request.length:
                self._discard = request.length > self.monitor.max_source
                self.set_terminator(request.length)
            else:
                self._run_block(b"")
        elif request.kind == "RESET":
            assert self.console is not None
            self.console.reset()
            self.push(wire.result(True, ""))
        elif request.kind != "CANCEL":  # a CANCEL after the code ended needs no answer
            self._protocol_error(f"{request.kind} after the login")

    def collect_incoming_data(self, data: bytes) -> None:
        """Keep input (up to ``max_incoming``), or drop an oversized block's bytes."""
        if not self._discard:
            super().collect_incoming_data(data)

    def incoming_overflow(self) -> None:
        """A line over the limit: refused like a failed login before it, closed after."""
        if self._state == "login":
            self._failed(time.monotonic())
            return
        self.monitor.audit(f"{self.client} sent a line over {self.max_incoming} bytes")
        self.close()

    def _protocol_error(self, reason: str) -> None:
        self.monitor.audit(f"{self.client} protocol error: {reason}")
        if self._task is not None:
            self.close()  # the pending answer would be ambiguous
        else:
            self.push(wire.result(False, f"protocol error: {reason}\n"))

    def _run_line(self, text: str) -> None:
        console = self.console
        assert console is not None
        lines = [*console.pending_lines, text]
        try:
            code = console.feed(text)
        except _COMPILE_ERRORS as exc:
            self._audit_source(lines)
            self.push(wire.result(False, console.syntax_error(exc).output))
            return
        if code is None:
            self.push(wire.more())
            return
        self._audit_source(lines)
        self._start(console, code)

    def _run_block(self, data: bytes) -> None:
        console = self.console
        assert console is not None
        try:
            source = data.decode("utf-8")
        except UnicodeDecodeError:
            self._protocol_error("the block is not UTF-8")
            return
        lines = source.split("\n")
        self._audit_source(lines)
        try:
            code = console.compile_block(source)
        except _COMPILE_ERRORS as exc:
            self.push(wire.result(False, console.syntax_error(exc).output))
            return
        self._start(console, code)

    def _audit_source(self, lines: list[str]) -> None:
        monitor = self.monitor
        for index, line in enumerate(lines):
            monitor.audit(f"{self.client} {'...' if index else '>>>'} {_printable(line)}")

    def _start(self, console: Console, code: Any) -> None:
        self.monitor.counters.requests += 1
        task = console.run(code, self._finished)
        if task is not None and not task.done():
            self._task = task

    def _finished(self, outcome: Outcome) -> None:
        self._task = None
        self.push(wire.result(outcome.ok, outcome.output))
        if outcome.exit:
            self.monitor.audit(f"{self.client} left (SystemExit)")
            self.close_when_done()

    # -- timeouts and close ----------------------------------------------------------------

    def check_timeout(self, now: float) -> None:
        """Close a login not completed within ``login_timeout``; never time out while
        awaited code runs; otherwise the idle timeout."""
        if self._state == "login":
            if now - self.connected_at > self.monitor.login_timeout:
                # Counted as a failed login: connections held open without an answer would
                # otherwise keep the administrator out (max_connections) at no cost.
                throttle = self.monitor.throttle
                throttle.failure(self.client_key, now)
                message = f"{self.client} login timed out (counted as a failed login)"
                if throttle.locked(self.client_key, now):
                    message += f"; {self.client_key} locked out for {throttle.lockout:g} s"
                self.monitor.audit(message)
                self.close()
            return
        if self._state == "ready" and self._task is None:
            super().check_timeout(now)

    def handle_close(self) -> None:
        """Cancel awaited code still running and a pending refusal; drop the session."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if self._state == "ready":
            self.monitor.audit(f"{self.client} disconnected")
        self._state = "closed"
        self.console = None
