"""The control connection (RFC 959 §5, the server's protocol interpreter): :class:`FTPChannel`
reads command lines, runs one command at a time through its handler (which reads and
changes the session's :class:`~medusa.ftp.state.SessionState` and returns a reply or an
action, :mod:`medusa.ftp.results`), carries out the actions and writes every reply (the one
place that does). Its data connections and transfers are kept by its
:class:`~medusa.ftp.dtp.ServerDTP` (``dtp``), which reaches the session through
:class:`~medusa.ftp.dtp.ControlSession`.

Commands that arrive while the session is busy (a password being checked, the delay after
a failed login, a TLS handshake, a transfer) wait in a queue and run in order afterwards;
only ``ABOR`` and ``STAT`` are answered during a transfer (RFC 959 §4.1.3). A line longer
than the server's ``max_line`` gets ``500`` and the session goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any

from medusa.core.channel import Channel
from medusa.core.filesys import OSFilesystem
from medusa.core.log import error_logger, peer_text
from medusa.core.vfs import Filesystem
from medusa.ftp.accounts import Account
from medusa.ftp.authorizers import AnonymousAuthorizer, VirtualUsers
from medusa.ftp.commands import COMMANDS, NOT_IMPLEMENTED, CommandError, parse_command
from medusa.ftp.dispatch import HANDLERS
from medusa.ftp.dtp import ServerDTP
from medusa.ftp.hostport import canonical_host, epsv_reply, pasv_reply
from medusa.ftp.persona import PersonaFilesystem
from medusa.ftp.replies import format_reply
from medusa.ftp.results import (
    Abort,
    Close,
    Login,
    Logout,
    OpenPassive,
    Reply,
    Result,
    SecureControl,
    SetActive,
    StartTransfer,
)
from medusa.ftp.state import SessionState
from medusa.ftp.xferlog import session_line

if TYPE_CHECKING:
    from medusa.ftp.server import FTPServer

__all__ = ["FTPChannel"]

_IMMEDIATE_DURING_TRANSFER = frozenset({"ABOR", "STAT"})
_MAX_QUEUED = 32
_RESTARTABLE = frozenset({"RETR", "STOR", "APPE"})
_WRITES = frozenset({"STOR", "APPE", "STOU", "MKD", "XMKD", "RMD", "XRMD", "DELE", "RNFR", "RNTO"})
"""Commands that change files: a refusal of one (a 4xx or 5xx reply from its handler) is
written to the session log with its reason (``SITE CHMOD`` too)."""


class FTPChannel(Channel):
    """One FTP session on its control connection.

    Args:
        server: the :class:`~medusa.ftp.server.FTPServer` that accepted it.

    Attributes:
        state: the session's protocol state (user, directory, transfer parameters, TLS):
            a :class:`~medusa.ftp.state.SessionState`.
        dtp: the data side: data ports, the data connection, the transfer in progress.
        counted_host: the client address this session counts against
            ``max_sessions_per_ip`` (set once the session is greeted), or None.
    """

    terminator = b"\n"

    def __init__(self, server: FTPServer) -> None:
        super().__init__(server)
        self.ftp = server
        self.dtp = ServerDTP(self)
        self.state = SessionState(server, data=self.dtp, listing_style=server.listing_style)
        self.counted_host: str | None = None
        self._line: list[bytes] = []
        self._line_size = 0
        self._overlong = False
        self._queue: list[bytes] = []
        self._hold: str | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._stop_after_transfer = False
        self._greeted = False  # 220 sent (behind a proxy, only after its PROXY header)
        self._local_host: str | None = None
        self._write: str | None = None  # the write command running, for its refusal

    # -- addresses -------------------------------------------------------------------------

    @property
    def peer_host(self) -> str:
        """The client's address, canonical (IPv4-mapped IPv6 as IPv4)."""
        peer = self.peer
        return canonical_host(str(peer[0])) if isinstance(peer, tuple) else ""

    @property
    def local_host(self) -> str:
        """The server's address on this connection, canonical (asked once: it does not
        change while the connection lasts)."""
        host = self._local_host
        if host is None:
            transport = self.transport
            name = transport.get_extra_info("sockname") if transport is not None else None
            if not isinstance(name, tuple):
                return "127.0.0.1"
            host = self._local_host = canonical_host(str(name[0]))
        return host

    @property
    def public_host(self) -> str:
        """The address the client connected to, canonical: the destination of the PROXY
        protocol header behind a trusted proxy (the proxy's own address, which ``PASV``
        announces when no ``masquerade_address`` is set, and whose family ``EPSV``
        answers for), else :attr:`local_host`. Passive sockets are always bound on
        :attr:`local_host`."""
        header = self.proxy_header
        if header is not None and header.destination is not None:
            return canonical_host(header.destination[0])
        return self.local_host

    @property
    def peer_text(self) -> str:
        """``host:port`` of the client (``[host]:port`` for IPv6), for logs."""
        return peer_text(self.peer)

    @property
    def closing(self) -> bool:
        """True once the control connection is being closed."""
        return self._closing

    # -- replies and logs ------------------------------------------------------------------

    def reply(self, code: int, text: str | list[str]) -> None:
        """Send one reply (multi-line for a list or text with newlines). A 4xx or 5xx
        reply to a command that changes files is also written to the session log."""
        if code >= 400 and self._write is not None:
            what, self._write = self._write, None
            reason = text if isinstance(text, str) else " ".join(text)
            self.log_session(f"{what} refused: {code} {reason}")
        self.push(format_reply(code, text))

    def replies(self, *replies: tuple[int, str]) -> None:
        """Send several single-line replies ``(code, text)`` in one write (a transfer's
        ``125`` and its ``226`` when it ended at once)."""
        for code, text in replies:
            if code >= 400 and self._write is not None:
                what, self._write = self._write, None
                self.log_session(f"{what} refused: {code} {text}")
        self.push(b"".join(format_reply(code, text) for code, text in replies))

    def log_session(self, event: str) -> None:
        """Write a line to the server's session log."""
        log = self.ftp.session_log
        if log is not None:
            state = self.state
            name = state.account.name if state.account is not None else state.pending_user
            log.log(session_line(self.peer_text, name, event))

    def answer(self, result: Result) -> None:
        """Carry out what a command handler returned: write its reply (with its session
        log line first), or do its action and write the replies that go with it."""
        if type(result) is Reply:
            if result.log:
                self.log_session(result.log)
            self.reply(result.code, result.text)
        elif type(result) is StartTransfer:
            if result.log:
                self.log_session(result.log)
            self.dtp.start_transfer(result.transfer, result.preliminary)
        elif type(result) is OpenPassive:
            self._open_passive(result)
        elif type(result) is Login:
            self.start_login(result.user, result.password)
        elif type(result) is Close:
            reply = result.reply
            self.reply(reply.code, reply.text)
            if result.log:
                self.log_session(result.log)
            self.close_when_done()
        elif type(result) is SetActive:
            self.dtp.set_active(result.host, result.port)
            self.answer(result.reply)
        elif type(result) is Logout:
            self.logout()
            self.answer(result.reply)
        elif type(result) is SecureControl:
            self.answer(result.reply)
            self.start_tls(result.context)
        elif type(result) is Abort:
            if self.dtp.abort_transfer(resume=False):
                self.reply(226, "ABOR command successful.")
                self.release()
            else:
                self.dtp.close_data()
                self.reply(225, "No transfer to abort.")

    def _open_passive(self, action: OpenPassive) -> None:
        """``PASV``/``EPSV``: listen, announce the port (227 or 229), then accept."""
        try:
            listener = self.dtp.open_passive()
        except OSError as exc:
            self.log_session(f"passive listen failed: {exc}")
            self.reply(425, "Cannot open a passive data connection.")
            return
        if action.extended:
            self.reply(229, epsv_reply(listener.port))
        else:
            self.reply(227, pasv_reply(action.host, listener.port))
        listener.start()  # after the reply: the client connects meanwhile

    # -- input -----------------------------------------------------------------------------

    def handle_connect(self) -> None:
        """Greet (RFC 959 §5.4: 220) unless the server refused the connection.

        Urgent data is read inline (``SO_OOBINLINE``): clients send ``ABOR`` with the Telnet
        Synch as TCP urgent data (RFC 959 §4.1.3), and Python's ftplib sends the whole
        ``ABOR`` line that way, whose last byte would otherwise leave the stream.

        The session counts against ``max_sessions_per_ip`` here, not when the connection
        was accepted: behind a trusted proxy the client's address is known only now (the
        PROXY protocol header came first), and a session over the limit gets 421."""
        if not self.ftp.session_opened(self):
            return
        self.reply(220, self.ftp.banner)  # first: the client reads it meanwhile
        self._greeted = True
        state = self.state
        state.peer_host = self.peer_host
        state.public_host = self.public_host
        transport = self.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
        self.log_session("connected")

    def collect_incoming_data(self, data: bytes) -> None:
        """Gather a command line, dropping what exceeds ``max_line`` bytes."""
        if self._overlong:
            return
        self._line_size += len(data)
        if self._line_size > self.ftp.max_line:
            self._overlong = True
            self._line = []
            return
        self._line.append(data)

    def found_terminator(self) -> None:
        """A complete line: run it now, or queue it while the session is busy."""
        line = b"".join(self._line)
        overlong = self._overlong
        self._line, self._line_size, self._overlong = [], 0, False
        if overlong:
            self.reply(500, "Command line too long.")
            return
        if self._hold is not None:
            if self._hold == "transfer" and _verb(line) in _IMMEDIATE_DURING_TRANSFER:
                self.run_line(line)
                return
            self._queue.append(line)
            if len(self._queue) >= _MAX_QUEUED:
                self.pause_reading("queue")
            return
        self.run_line(line)

    def eof_received(self) -> bool | None:
        """The client closed its side: finish what is queued, then close (a TLS transport
        cannot stay half-open)."""
        self.close_when_done()
        return None if self.state.tls else True

    def hold(self, reason: str) -> None:
        """Queue incoming commands until :meth:`release` (``reason`` names why)."""
        self._hold = reason

    def release(self) -> None:
        """Run the queued commands in order, until one makes the session busy again."""
        self._hold = None
        while self._queue and self._hold is None and not self._closing:
            self.run_line(self._queue.pop(0))
        if not self._queue:
            self.resume_reading("queue")

    def run_line(self, line: bytes) -> None:
        """Parse and run one command line (RFC 959 §5.3); every error gets its reply."""
        try:
            command = parse_command(line)
        except CommandError as exc:
            self.reply(exc.code, exc.text)
            return
        verb, arg = command.verb, command.arg
        self.ftp.counters.requests += 1
        state = self.state
        spec = COMMANDS.get(verb)
        if spec is None:
            if verb in NOT_IMPLEMENTED:
                self.reply(502, f"Command {verb} not implemented.")
            else:
                self.reply(500, f"Command {verb} not understood.")
            return
        if verb != "RNTO":
            state.rename_from = None
        if verb not in _RESTARTABLE and verb != "REST":
            state.restart = 0
        if spec.login and state.account is None:
            self.reply(530, "Please log in with USER and PASS first.")
            return
        if spec.arg == "required" and not arg.strip():
            self.reply(501, f"Syntax error in parameters or arguments: {spec.syntax}.")
            return
        if spec.arg == "none" and arg.strip():
            self.reply(501, f"{verb} takes no argument.")
            return
        if verb in _WRITES or (verb == "SITE" and arg.lstrip()[:6].upper() == "CHMOD "):
            self._write = self._describe_write(verb, arg)
        try:
            result = HANDLERS[verb](state, arg)
            if type(result) is Reply and not result.log:
                self.reply(result.code, result.text)  # most commands: no call to answer()
            else:
                self.answer(result)
        except Exception:
            error_logger.exception("FTP command %s from %s failed", verb, self.peer_text)
            self.ftp.counters.errors += 1
            self.reply(451, "Requested action aborted: local error in processing.")
        finally:
            self._write = None

    def _describe_write(self, verb: str, arg: str) -> str:
        """The command and its virtual path, for the session log."""
        if verb == "SITE":
            return f"SITE {arg.strip()}"
        if not arg.strip():
            return verb  # STOU without a name
        path = arg
        state = self.state
        if state.fs is not None:
            with contextlib.suppress(OSError, ValueError):
                path = state.fs.normalize(arg)
        if verb == "RNTO":
            return f"RNTO {path} (from {state.rename_from or '-'})"
        return f"{verb} {path}"

    # -- login -----------------------------------------------------------------------------

    def start_login(self, user: str, password: str) -> None:
        """Check ``user``'s ``password``, then reply 230 or, after the failure delay, 530
        (RFC 959 §4.1.1). Anonymous logins and passwords that passed their scrypt check
        in the last 5 minutes are answered at once; others are checked in the background
        (in a worker thread) while later commands wait."""
        authorizer = self.ftp.authorizer_for(user)
        if type(authorizer) is AnonymousAuthorizer:
            # No password to check: no task, no wait.
            self._logged_in(authorizer.account, user, password)
            return
        host = self.state.peer_host
        left = self.ftp.login_failures.locked(host, time.monotonic())
        if left:
            # The password is not checked: guesses from a locked-out address are useless.
            self.state.pending_user = None
            self.log_session(
                f"login {user!r} refused: {host} is locked out for {left:.0f} more s "
                "after repeated failed logins"
            )
            self.reply(421, "Too many failed logins from your address; try again later.")
            self.close_when_done()
            return
        account = (
            authorizer.verified_at_once(user, password)
            if isinstance(authorizer, VirtualUsers)
            else None
        )
        if account is not None:
            # Checked with scrypt within 5 minutes: no thread, no task, no wait.
            self._logged_in(account, user, password)
            return
        self.hold("login")
        task = asyncio.get_running_loop().create_task(self.ftp.authenticate(user, password))
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._login_checked(t, user, password))

    def _login_checked(self, task: asyncio.Task[Account | None], user: str, password: str) -> None:
        self._tasks.discard(task)
        if self._closing:
            return
        account: Account | None = None
        try:
            account = task.result()
        except Exception:
            error_logger.exception("authentication of %r failed", user)
        if account is not None:
            self._logged_in(account, user, password)
        else:
            self._login_failed(user)

    def _logged_in(self, account: Account, user: str, password: str) -> None:
        """The password was right: enter the home directory (or fail the login), 230."""
        try:
            self._enter(account)
        except OSError as exc:
            self.log_session(f"login {user} refused: home directory: {exc.strerror}")
            self._login_failed(user)
            return
        self.state.pending_user = None
        if account.anonymous:
            self.state.guest_id = password
        if self.ftp.session_log is not None:
            what = f" (password {password!r})" if account.anonymous else ""
            self.log_session(f"login ok{what}")
        self.reply(230, "Login successful.")
        self.release()

    def _login_failed(self, user: str) -> None:
        """Refused: 530 after the failure delay, which grows with the failures of the
        client's address on every connection (see
        :class:`~medusa.core.throttle.LoginFailures`); commands wait until then."""
        self.hold("login")
        self.state.failed_logins += 1
        self.state.pending_user = None
        host = self.state.peer_host
        failures = self.ftp.login_failures
        now = time.monotonic()
        if failures.locked(host, now):
            # A check already running when the address was locked out (the lockout came
            # from another connection meanwhile): refused like the others, counted for the
            # address's next round, and said as it is.
            failures.failure(host, now)
            self.log_session(f"login {user!r} failed while {host} is locked out")
            self._timer = asyncio.get_running_loop().call_later(
                failures.max_delay, self._login_refused
            )
            return
        count = failures.failures(host, now) + 1  # the number of this failure
        delay = failures.failure(host, now)
        failed = self.state.failed_logins
        self.log_session(
            f"login {user!r} failed ({failed} on this connection, {count} from {host})"
        )
        if failures.locked(host, now):
            message = f"{host} locked out for {failures.lockout:g} s after {count} failed logins"
            self.log_session(message)
            error_logger.warning("FTP: %s (last user %r)", message, user)
        self._timer = asyncio.get_running_loop().call_later(delay, self._login_refused)

    def _login_refused(self) -> None:
        self._timer = None
        if self._closing:
            return
        locked = self.ftp.login_failures.locked(self.state.peer_host, time.monotonic())
        if locked or self.state.failed_logins >= self.ftp.max_login_attempts:
            self.reply(530, "Login incorrect.")
            if locked:
                self.reply(421, "Too many failed logins from your address; try again later.")
            else:
                self.reply(421, "Too many failed logins; closing the connection.")
            self.log_session("disconnected after too many failed logins")
            self.close_when_done()
            return
        self.reply(530, "Login incorrect.")
        self.release()

    def _enter(self, account: Account) -> None:
        """Set up the session for a user who logged in: the filesystem on their root (as
        them, for a real user), in their home directory."""
        fs: Filesystem
        if account.persona is not None:
            with account.persona:
                inner = OSFilesystem(account.root, account.home)
            fs = PersonaFilesystem(inner, account.persona)
        else:
            fs = OSFilesystem(account.root, account.home)
        self.state.account = account
        self.state.fs = fs

    def logout(self) -> None:
        """Forget the user and the transfer parameters (``REIN``, RFC 959 §4.1.1)."""
        self.dtp.abort_transfer()
        self.dtp.close_data()
        if self.state.account is not None:
            self.log_session("logout")
        self.state.logout()

    # -- TLS -------------------------------------------------------------------------------

    def start_tls(self, context: ssl.SSLContext) -> None:
        """Secure the control connection (``AUTH TLS`` after its 234, RFC 4217 §4)."""
        self.hold("tls")
        task = asyncio.get_running_loop().create_task(self._handshake(context))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handshake(self, context: ssl.SSLContext) -> None:
        transport = self.transport
        assert transport is not None
        try:
            new = await asyncio.get_running_loop().start_tls(
                transport, self, context, server_side=True, ssl_handshake_timeout=30.0
            )
        except (TimeoutError, OSError, ssl.SSLError, ConnectionError) as exc:
            self.log_session(f"TLS handshake failed: {exc}")
            self.abort()
            return
        if new is None:
            self.abort()
            return
        self.transport = new
        self._sockfd = -1
        self.state.tls = True
        self.log_session("control connection secured")
        self.release()

    # -- timeouts and the end --------------------------------------------------------------

    def check_timeout(self, now: float) -> None:
        """Data-connection timeouts during a transfer, the idle timeout otherwise."""
        if self.dtp.check_timeout(now):
            return
        if (
            self._hold is None
            and self.idle_timeout
            and now - self.last_activity > self.idle_timeout
        ):
            self.reply(421, "Idle timeout; closing the control connection.")
            self.log_session("idle timeout")
            self.close_when_done()

    def transfer_ended(self, *, resume: bool = True) -> None:
        """The data side ended a transfer (its reply was sent): close when the server is
        stopping, else (``resume``) run the commands that waited."""
        if self._stop_after_transfer:
            self.shutdown()
        elif resume:
            self.release()

    def shutdown(self) -> None:
        """The server is stopping: 421 and close, after the transfer in progress (a
        connection still waiting for its PROXY header, never greeted, just closes)."""
        if not self._greeted:
            self.close()
            return
        if self.dtp.transfer is not None:
            self._stop_after_transfer = True
            return
        self.reply(421, "Server shutting down.")
        self.close_when_done()

    def handle_close(self) -> None:
        """The control connection is gone: drop the data connection, an unfinished
        upload's temporary file, pending work."""
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        self.dtp.session_closed()
        if self._greeted:  # a connection that never had a session logs nothing here
            self.log_session("disconnected")


def _verb(line: bytes) -> str:
    """The upper-case verb of a raw line, Telnet controls removed ("" when garbled)."""
    try:
        return parse_command(line).verb
    except CommandError:
        return ""
