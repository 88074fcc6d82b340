"""The control connection (RFC 959 §5): :class:`FTPChannel` reads command lines, keeps the
session's state (user, directory, transfer parameters, data connection, TLS), runs one
command at a time, and writes replies.

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
from medusa.core.log import error_logger
from medusa.core.vfs import Filesystem, PathEscapeError
from medusa.ftp.accounts import Account
from medusa.ftp.commands import COMMANDS, NOT_IMPLEMENTED, CommandError, parse_command
from medusa.ftp.dataconn import DataChannel
from medusa.ftp.dispatch import HANDLERS
from medusa.ftp.facts import DEFAULT_FACTS
from medusa.ftp.hostport import canonical_host
from medusa.ftp.passive import PassiveListener, attach_socket
from medusa.ftp.persona import PersonaFilesystem
from medusa.ftp.replies import format_reply
from medusa.ftp.throttle import Throttle
from medusa.ftp.transfers import Transfer
from medusa.ftp.xferlog import session_line, xferlog_line

if TYPE_CHECKING:
    from medusa.ftp.server import FTPServer

__all__ = ["FTPChannel"]

_IMMEDIATE_DURING_TRANSFER = frozenset({"ABOR", "STAT"})
_MAX_QUEUED = 32
_RESTARTABLE = frozenset({"RETR", "STOR", "APPE"})


class FTPChannel(Channel):
    """One FTP session on its control connection.

    Args:
        server: the :class:`~medusa.ftp.server.FTPServer` that accepted it.

    Attributes:
        account: the logged-in user, or ``None``.
        fs: the user's filesystem (``None`` before login).
        binary: ``TYPE I`` (True) or ``TYPE A`` (False, the default of RFC 959).
        restart: the ``REST`` offset for the next transfer, bytes.
        rename_from: the path given to ``RNFR``.
        tls: True once ``AUTH TLS`` succeeded.
        protect_data: ``PROT P`` in force.
        pbsz: ``PBSZ`` was given (RFC 4217 §8).
        epsv_all: ``EPSV ALL`` was given: other data-port commands are refused.
        facts: the ``MLST`` facts selected with ``OPTS MLST``.
        listing_style: ``"unix"`` or ``"msdos"`` for ``LIST``.
    """

    terminator = b"\n"

    def __init__(self, server: FTPServer) -> None:
        super().__init__(server)
        self.ftp = server
        self.account: Account | None = None
        self.fs: Filesystem | None = None
        self.pending_user: str | None = None
        self.binary = False
        self.restart = 0
        self.rename_from: str | None = None
        self.tls = False
        self.protect_data = False
        self.pbsz = False
        self.epsv_all = False
        self.facts = DEFAULT_FACTS
        self.listing_style = server.listing_style
        self.failed_logins = 0
        self.guest_id = ""
        self.passive: PassiveListener | None = None
        self.active_target: tuple[str, int] | None = None
        self.data: DataChannel | None = None
        self.transfer: Transfer | None = None
        self._line: list[bytes] = []
        self._line_size = 0
        self._overlong = False
        self._queue: list[bytes] = []
        self._hold: str | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._stop_after_transfer = False

    # -- addresses -------------------------------------------------------------------------

    @property
    def peer_host(self) -> str:
        """The client's address, canonical (IPv4-mapped IPv6 as IPv4)."""
        peer = self.peer
        return canonical_host(str(peer[0])) if isinstance(peer, tuple) else ""

    @property
    def local_host(self) -> str:
        """The server's address on this connection, canonical."""
        transport = self.transport
        name = transport.get_extra_info("sockname") if transport is not None else None
        return canonical_host(str(name[0])) if isinstance(name, tuple) else "127.0.0.1"

    @property
    def peer_text(self) -> str:
        """``host:port`` of the client, for logs."""
        peer = self.peer
        return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

    # -- replies and logs ------------------------------------------------------------------

    def reply(self, code: int, text: str | list[str]) -> None:
        """Send one reply (multi-line for a list or text with newlines)."""
        self.push(format_reply(code, text))

    def log_session(self, event: str) -> None:
        """Write a line to the server's session log."""
        log = self.ftp.session_log
        if log is not None:
            name = self.account.name if self.account is not None else self.pending_user
            log.log(session_line(self.peer_text, name, event))

    # -- input -----------------------------------------------------------------------------

    def handle_connect(self) -> None:
        """Greet (RFC 959 §5.4: 220) unless the server refused the connection.

        Urgent data is read inline (``SO_OOBINLINE``): clients send ``ABOR`` with the Telnet
        Synch as TCP urgent data (RFC 959 §4.1.3), and Python's ftplib sends the whole
        ``ABOR`` line that way, whose last byte would otherwise leave the stream."""
        transport = self.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            with contextlib.suppress(OSError, AttributeError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_OOBINLINE, 1)
        self.reply(220, self.ftp.banner)
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
        return None if self.tls else True

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
        spec = COMMANDS.get(verb)
        if spec is None:
            if verb in NOT_IMPLEMENTED:
                self.reply(502, f"Command {verb} not implemented.")
            else:
                self.reply(500, f"Command {verb} not understood.")
            return
        if verb != "RNTO":
            self.rename_from = None
        if verb not in _RESTARTABLE and verb != "REST":
            self.restart = 0
        if spec.login and self.account is None:
            self.reply(530, "Please log in with USER and PASS first.")
            return
        if spec.arg == "required" and not arg.strip():
            self.reply(501, f"Syntax error in parameters or arguments: {spec.syntax}.")
            return
        if spec.arg == "none" and arg.strip():
            self.reply(501, f"{verb} takes no argument.")
            return
        try:
            HANDLERS[verb](self, arg)
        except Exception:
            error_logger.exception("FTP command %s from %s failed", verb, self.peer_text)
            self.ftp.counters.errors += 1
            self.reply(451, "Requested action aborted: local error in processing.")

    # -- errors ----------------------------------------------------------------------------

    def fail(self, exc: OSError, code: int = 550) -> None:
        """Reply to a failed file-system operation: ``550`` (or ``code``) with the reason,
        never a real path."""
        if isinstance(exc, PathEscapeError):
            reason = "Permission denied"
        elif isinstance(exc, FileNotFoundError):
            reason = "No such file or directory"
        else:
            reason = exc.strerror or type(exc).__name__
        self.reply(code, f"{reason}.")

    def allowed(self, letter: str) -> bool:
        """Return True when the user has permission ``letter``; else reply 550."""
        if self.account is not None and self.account.may(letter):
            return True
        self.reply(550, "Permission denied.")
        return False

    def as_user(self) -> contextlib.AbstractContextManager[object]:
        """The persona of a real Unix user around an operation (nothing for others)."""
        account = self.account
        if account is not None and account.persona is not None:
            return account.persona
        return contextlib.nullcontext()

    # -- login -----------------------------------------------------------------------------

    def start_login(self, user: str, password: str) -> None:
        """Check ``user``'s ``password`` (in the background; commands wait), then reply 230
        or, after the failure delay, 530 (RFC 959 §4.1.1)."""
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
            try:
                self._enter(account)
            except OSError as exc:
                self.log_session(f"login {user} refused: home directory: {exc.strerror}")
                account = None
        if account is not None:
            self.pending_user = None
            if account.anonymous:
                self.guest_id = password
            what = f" (password {password!r})" if account.anonymous else ""
            self.log_session(f"login ok{what}")
            self.reply(230, "Login successful.")
            self.release()
            return
        self.failed_logins += 1
        self.log_session(f"login {user!r} failed ({self.failed_logins})")
        self.pending_user = None
        delay = self.ftp.login_failure_delay * self.failed_logins
        self._timer = asyncio.get_running_loop().call_later(delay, self._login_refused)

    def _login_refused(self) -> None:
        self._timer = None
        if self._closing:
            return
        if self.failed_logins >= self.ftp.max_login_attempts:
            self.reply(530, "Login incorrect.")
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
                inner = OSFilesystem(account.root)
            fs = PersonaFilesystem(inner, account.persona)
        else:
            fs = OSFilesystem(account.root)
        fs.chdir(account.home)
        self.account = account
        self.fs = fs

    def logout(self) -> None:
        """Forget the user and the transfer parameters (``REIN``, RFC 959 §4.1.1)."""
        self.abort_transfer()
        self.close_data()
        if self.account is not None:
            self.log_session("logout")
        self.account = None
        self.fs = None
        self.pending_user = None
        self.binary = False
        self.restart = 0
        self.rename_from = None
        self.epsv_all = False
        self.facts = DEFAULT_FACTS

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
        self.tls = True
        self.log_session("control connection secured")
        self.release()

    # -- data connections ------------------------------------------------------------------

    def open_passive(self) -> PassiveListener:
        """Listen for a passive data connection from this client (``PASV``/``EPSV``).

        Raises:
            OSError: when no port could be bound.
        """
        self.close_data()
        self.passive = PassiveListener(
            self, self.local_host, self.peer_host, self.ftp.passive_ports
        )
        return self.passive

    def set_active(self, host: str, port: int) -> None:
        """Connect to ``host:port`` for the next transfer (``PORT``/``EPRT``)."""
        self.close_data()
        self.active_target = (host, port)

    def close_data(self) -> None:
        """Drop the data connection and any passive listener (not during a transfer)."""
        if self.passive is not None:
            self.passive.close()
            self.passive = None
        self.active_target = None
        if self.data is not None and self.transfer is None:
            self.data.cancel()
            self.data = None

    def data_connected(self, channel: DataChannel) -> None:
        """A data connection came up: start the waiting transfer, if any."""
        if self.data is not None or self._closing:
            channel.cancel()  # a second connection for one transfer
            return
        self.data = channel
        if self.passive is not None:
            self.passive.close()
        transfer = self.transfer
        if transfer is not None and not transfer.connected:
            self._run_transfer()

    def data_refused(self, peer: str) -> None:
        """A data connection came from another address than the client's: dropped."""
        self.log_session(f"data connection from {peer} refused (port theft)")
        self.ftp.counters.errors += 1

    def start_transfer(self, transfer: Transfer, preliminary: str | None = None) -> None:
        """Begin a transfer: 125 when the data connection is already up, 150 when it is
        being opened, 425 when there is none (RFC 959 §4.2); ``preliminary`` replaces the
        text of the 125/150 reply (``STOU``'s ``FILE: name``, RFC 1123 §4.1.2.9)."""
        if self.data is None and self.passive is None and self.active_target is None:
            transfer.release()
            self.reply(425, "Use PORT, PASV, EPRT or EPSV first.")
            return
        self.transfer = transfer
        self.hold("transfer")
        mode = "BINARY" if self.binary else "ASCII"
        if self.data is not None:
            self.reply(125, preliminary or "Data connection already open; transfer starting.")
            self._run_transfer()
            return
        self.reply(150, preliminary or f"Opening {mode} mode data connection for {transfer.verb}.")
        if self.active_target is not None:
            host, port = self.active_target
            self.active_target = None
            task = asyncio.get_running_loop().create_task(self._connect(host, port))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _connect(self, host: str, port: int) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setblocking(False)
            sock.bind((self.local_host, 0))
            await asyncio.wait_for(
                loop.sock_connect(sock, (host, port)), self.ftp.data_timeout or None
            )
        except (TimeoutError, OSError) as exc:
            sock.close()
            self.data_failed(f"{type(exc).__name__}: {exc}")
            return
        await attach_socket(self, DataChannel(self), sock)

    def _run_transfer(self) -> None:
        transfer, channel = self.transfer, self.data
        if transfer is None or channel is None:
            return
        transfer.connected = True
        self._move(channel, transfer)

    def data_tls(self) -> ssl.SSLContext | None:
        """The TLS context of data connections under ``PROT P``, else None."""
        return self.ftp.data_tls_context if self.protect_data else None

    def data_failed(self, reason: str) -> None:
        """A data connection failed before use: a waiting transfer gets 425."""
        self.log_session(f"data connection failed: {reason}")
        transfer = self.transfer
        if transfer is not None and not transfer.connected and self.data is None:
            self.end_transfer(425, f"Cannot open data connection ({reason}).")

    def _move(self, channel: DataChannel, transfer: Transfer) -> None:
        if transfer.upload is not None:
            rate = self.ftp.max_upload_rate
            channel.receive(transfer.upload, Throttle(rate) if rate else None)
        else:
            assert transfer.producer is not None
            rate = self.ftp.max_download_rate
            channel.send(transfer.producer, Throttle(rate) if rate else None)
            transfer.producer = None  # the channel owns it now

    def data_finished(self, channel: DataChannel, error: str | None) -> None:
        """The data connection ended: reply 226, or 426/451 for a failed transfer."""
        if channel is not self.data:
            return
        self.data = None
        transfer = self.transfer
        if transfer is None:
            return
        transfer.bytes = channel.received if transfer.incoming else channel.bytes_out
        if error is not None:
            self.log_session(f"{transfer.verb} {transfer.path} failed: {error}")
            self.end_transfer(426, f"Connection closed; transfer aborted ({error}).")
            return
        if transfer.upload is not None:
            try:
                with self.as_user():
                    transfer.upload.commit()
            except OSError as exc:
                self.end_transfer(451, f"Upload not stored: {exc.strerror or exc}.")
                return
        self.end_transfer(226, "Transfer complete.")

    def end_transfer(self, code: int, text: str, *, resume: bool = True) -> None:
        """Finish the current transfer with a reply and log it; then (``resume``) run the
        commands that waited."""
        transfer, self.transfer = self.transfer, None
        if transfer is None:
            return
        complete = code == 226
        if not complete:
            with self.as_user():
                transfer.release()
            if self.data is not None:
                self.data.cancel()
                self.data = None
        self.close_data()
        self.reply(code, text)
        self._log_transfer(transfer, complete)
        if self._stop_after_transfer:
            self.shutdown()
        elif resume:
            self.release()

    def abort_transfer(self, *, resume: bool = True) -> bool:
        """Stop the transfer in progress (``ABOR``, RFC 959 §4.1.3): reply 426 for it.
        Returns False when there was none; ``resume`` as :meth:`end_transfer`."""
        if self.transfer is None:
            return False
        if self.data is not None:
            self.transfer.bytes = (
                self.data.received if self.transfer.incoming else self.data.bytes_out
            )
        self.end_transfer(426, "Transfer aborted.", resume=resume)
        return True

    def _log_transfer(self, transfer: Transfer, complete: bool) -> None:
        if transfer.incoming:
            self.ftp.counters.bytes_in += transfer.bytes
        else:
            self.ftp.counters.bytes_out += transfer.bytes
        if not transfer.is_file:
            return
        if not complete and transfer.incoming:
            self.log_session(f"upload of {transfer.path} aborted; partial file removed")
        log = self.ftp.xferlog
        account = self.account
        if log is None or account is None:
            return
        log.log(
            xferlog_line(
                when=time.time(),
                seconds=time.monotonic() - transfer.started,
                host=self.peer_host,
                nbytes=transfer.bytes,
                path=transfer.path,
                binary=self.binary,
                direction="i" if transfer.incoming else "o",
                anonymous=account.anonymous,
                user=(self.guest_id or "anonymous") if account.anonymous else account.name,
                complete=complete,
            )
        )

    # -- timeouts and the end --------------------------------------------------------------

    def check_timeout(self, now: float) -> None:
        """Data-connection timeouts during a transfer, the idle timeout otherwise."""
        transfer = self.transfer
        limit = self.ftp.data_timeout
        if transfer is not None:
            if not limit:
                return
            if self.data is None or not transfer.connected:
                if now - transfer.started > limit:
                    self.end_transfer(425, "Data connection timed out.")
            elif now - max(self.data.last_activity, transfer.started) > limit:
                self.end_transfer(426, "Data connection timed out; transfer aborted.")
            return
        if (
            self._hold is None
            and self.idle_timeout
            and now - self.last_activity > self.idle_timeout
        ):
            self.reply(421, "Idle timeout; closing the control connection.")
            self.log_session("idle timeout")
            self.close_when_done()

    def shutdown(self) -> None:
        """The server is stopping: 421 and close, after the transfer in progress."""
        if self.transfer is not None:
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
        if self.transfer is not None:
            transfer, self.transfer = self.transfer, None
            with self.as_user():
                transfer.release()
            self._log_transfer(transfer, False)
        if self.data is not None:
            self.data.cancel()
            self.data = None
        self.close_data()
        self.log_session("disconnected")


def _verb(line: bytes) -> str:
    """The upper-case verb of a raw line, Telnet controls removed ("" when garbled)."""
    try:
        return parse_command(line).verb
    except CommandError:
        return ""
