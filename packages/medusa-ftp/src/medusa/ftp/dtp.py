"""The server's data transfer process (RFC 959 §2.3, §3.2, §3.3): :class:`ServerDTP` keeps a
session's data-port state (a passive listener or an active target), its data connection
and the transfer in progress; it opens and accepts data connections, runs transfers on
them, and ends each transfer with its reply and its transfer-log line.

The control session (the protocol interpreter, :class:`~medusa.ftp.session.FTPChannel`)
owns one :class:`ServerDTP` and is reached through :class:`ControlSession`, which lists
exactly what the data side needs of it; the data connections report to the
:class:`ServerDTP` (it is their :class:`~medusa.ftp.dataconn.DataOwner`), and it tells the
session when a transfer ended so that the commands waiting for it run.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from typing import TYPE_CHECKING, Any, Protocol

from medusa.core.producers import SimpleProducer
from medusa.ftp.dataconn import DataChannel, lost_reason
from medusa.ftp.listings import ListingProducer
from medusa.ftp.passive import PassiveListener, attach_socket
from medusa.ftp.throttle import Throttle
from medusa.ftp.transfers import Transfer
from medusa.ftp.xferlog import xferlog_line

if TYPE_CHECKING:
    from medusa.ftp.server import FTPServer
    from medusa.ftp.state import SessionState

__all__ = ["ControlSession", "ServerDTP"]


class ControlSession(Protocol):
    """What the data side needs of its control session
    (:class:`~medusa.ftp.session.FTPChannel`).

    Attributes:
        ftp: the server (its settings: passive ports, rates, timeouts, TLS, logs).
        state: the session's state (``binary``, ``protect_data``, ``account``,
            ``guest_id``, ``peer_host``, ``as_user()``), read only.
    """

    ftp: FTPServer
    state: SessionState

    @property
    def local_host(self) -> str:
        """The server's address on the control connection, canonical (passive sockets
        and active connections are bound there)."""
        ...

    @property
    def closing(self) -> bool:
        """True once the control connection is being closed."""
        ...

    def reply(self, code: int, text: str | list[str]) -> None:
        """Send one reply on the control connection."""
        ...

    def replies(self, *replies: tuple[int, str]) -> None:
        """Send several single-line replies in one write."""
        ...

    def log_session(self, event: str) -> None:
        """Write a line to the session log."""
        ...

    def hold(self, reason: str) -> None:
        """Make later commands wait (a transfer, an upload being stored)."""
        ...

    def transfer_ended(self, *, resume: bool = True) -> None:
        """The transfer's reply was sent: (``resume``) run the commands that waited."""
        ...


class ServerDTP:
    """The data side of one FTP session.

    Args:
        session: the control connection it serves.

    Attributes:
        passive: the listener of ``PASV``/``EPSV``, until a connection came.
        active_target: ``(host, port)`` of ``PORT``/``EPRT``, until the next transfer.
        accepted: a passive connection accepted before its transfer command, kept as a
            plain socket with its client's address from a PROXY header (or None), until
            that command: a listing is then written to it at once (see
            :meth:`start_transfer`), other transfers get a :class:`DataChannel`.
        data: the data connection's channel, once up.
        transfer: the transfer in progress (from its command to its reply), or ``None``.
    """

    def __init__(self, session: ControlSession) -> None:
        self.session = session
        self.ftp = session.ftp
        self.passive: PassiveListener | None = None
        self.active_target: tuple[str, int] | None = None
        self.accepted: tuple[socket.socket, tuple[str, int] | None] | None = None
        self.data: DataChannel | None = None
        self.transfer: Transfer | None = None
        self._tasks: set[asyncio.Future[Any]] = set()
        self._storing: set[asyncio.Future[Any]] = set()  # not cancelled with the session
        self._attaching: set[asyncio.Future[Any]] = set()  # they close their socket

    # -- data ports ------------------------------------------------------------------------

    @property
    def has_port(self) -> bool:
        """True when a data connection is up or one was prepared (passive or active)."""
        return not (
            self.data is None
            and self.passive is None
            and self.active_target is None
            and self.accepted is None
        )

    def open_passive(self) -> PassiveListener:
        """Listen for a passive data connection from this client (``PASV``/``EPSV``); with
        ``proxy_protocol`` on, a connection from a trusted proxy must open with a PROXY
        header naming this client. The caller announces the port, then calls the
        listener's :meth:`~medusa.ftp.passive.PassiveListener.start`.

        Raises:
            OSError: when no port could be bound.
        """
        self.close_data()
        session = self.session
        ftp = self.ftp
        trusted = ftp.proxy_trusted
        self.passive = PassiveListener(
            self,
            session.local_host,
            session.state.peer_host,
            ftp.passive_ports,
            trusted=trusted.__contains__ if trusted is not None else None,
            header_timeout=ftp.proxy_timeout,
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
        if self.accepted is not None:
            self.accepted[0].close()
            self.accepted = None
        if self.data is not None and self.transfer is None:
            self.data.cancel()
            self.data = None

    # -- what data connections report (DataOwner) ------------------------------------------

    def data_accepted(self, conn: socket.socket, client: tuple[str, int] | None) -> None:
        """A passive connection came from the client: a listing waiting for it is written
        to it at once; another waiting transfer, or a ``PROT P`` connection, gets its
        :class:`DataChannel`; without a transfer, the socket is kept for the next one."""
        if self.data is not None or self.accepted is not None or self.session.closing:
            conn.close()  # a second connection for one transfer
            return
        transfer = self.transfer
        if transfer is None and self.data_tls() is None:
            self.accepted = (conn, client)
            return
        if (
            transfer is not None
            and not transfer.connected
            and self._send_at_once(transfer, conn, client, None)
        ):
            return
        self._attach(conn, client, DataChannel(self))

    def _attach(
        self, conn: socket.socket, client: tuple[str, int] | None, channel: DataChannel
    ) -> None:
        """Make ``channel`` the protocol of the connected socket ``conn`` (on the loop's
        next iterations; it reports to :meth:`data_connected`)."""
        if client is not None:
            channel.peer = client
        task = asyncio.get_running_loop().create_task(attach_socket(self, channel, conn))
        self._attaching.add(task)
        task.add_done_callback(self._attaching.discard)

    def _send_at_once(
        self,
        transfer: Transfer,
        conn: socket.socket,
        client: tuple[str, int] | None,
        preliminary: tuple[int, str] | None,
    ) -> bool:
        """Write a listing (the whole output of a :class:`ListingProducer`) to the plain
        socket ``conn`` and close it, without making a channel, then reply: ``226``, after
        ``preliminary`` (the ``125`` not yet sent) in the same write, so that the client
        finds the listing, its end and both replies in one wake-up. Only without
        ``PROT P`` and ``max_download_rate``. What the socket cannot take at once goes
        through a :class:`DataChannel` as usual (``226`` at its end). Returns False
        (nothing done) for other transfers.
        """
        producer = transfer.producer
        if (
            type(producer) is not ListingProducer
            or self.ftp.max_download_rate
            or self.data_tls() is not None
        ):
            return False
        session = self.session
        transfer.connected = True
        try:
            if conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b"":
                conn.close()  # the client closed it (as a channel would have seen)
                self._failed_at_once(transfer, preliminary, "closed before the transfer")
                return True
        except (BlockingIOError, InterruptedError):
            pass  # open, and nothing sent by the client: as it should be
        except OSError as exc:
            conn.close()
            self._failed_at_once(transfer, preliminary, lost_reason(exc))
            return True
        data = producer.more()
        try:
            sent = conn.send(data, socket.MSG_DONTWAIT) if data else 0
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError as exc:
            conn.close()
            self._failed_at_once(transfer, preliminary, lost_reason(exc))
            return True
        if sent == len(data):
            conn.close()  # a graceful close: the kernel still delivers what it holds
            transfer.bytes = sent
            self.end_transfer(226, "Transfer complete.", preliminary=preliminary)
            return True
        if preliminary is not None:
            session.reply(*preliminary)
        transfer.connected = False
        transfer.producer = SimpleProducer(data[sent:])
        channel = DataChannel(self)
        channel.bytes_out = sent
        self._attach(conn, client, channel)
        return True

    def _failed_at_once(
        self, transfer: Transfer, preliminary: tuple[int, str] | None, reason: str
    ) -> None:
        """The client's side of a kept data connection was gone (``reason``): 426, as for
        a data channel that lost its connection."""
        if preliminary is not None:
            self.session.reply(*preliminary)
        self.session.log_session(f"{transfer.verb} {transfer.path} failed: {reason}")
        self.end_transfer(426, f"Connection closed; transfer aborted ({reason}).")

    def data_connected(self, channel: DataChannel) -> None:
        """A data connection came up: start the waiting transfer, if any."""
        if self.data is not None or self.session.closing:
            channel.cancel()  # a second connection for one transfer
            return
        self.data = channel
        if self.passive is not None:
            self.passive.close()
        transfer = self.transfer
        if transfer is not None and not transfer.connected:
            self._run_transfer()

    def data_refused(self, peer: str, reason: str = "port theft") -> None:
        """A data connection from ``peer`` was dropped: it came from another address than
        the client's (``reason`` ``"port theft"``), or from a trusted proxy without a
        valid PROXY header."""
        self.session.log_session(f"data connection from {peer} refused ({reason})")
        self.ftp.counters.errors += 1

    def data_tls(self) -> ssl.SSLContext | None:
        """The TLS context of data connections under ``PROT P``, else None."""
        return self.ftp.data_tls_context if self.session.state.protect_data else None

    def data_failed(self, reason: str) -> None:
        """A data connection failed before use: a waiting transfer gets 425."""
        self.session.log_session(f"data connection failed: {reason}")
        transfer = self.transfer
        if transfer is not None and not transfer.connected and self.data is None:
            self.end_transfer(425, f"Cannot open data connection ({reason}).")

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
            self.session.log_session(f"{transfer.verb} {transfer.path} failed: {error}")
            self.end_transfer(426, f"Connection closed; transfer aborted ({error}).")
            return
        if transfer.upload is not None:
            self._store(transfer)
            return
        self.end_transfer(226, "Transfer complete.")

    def _store(self, transfer: Transfer) -> None:
        """Every byte of an upload arrived: sync and rename it in the background (ABOR and
        STAT wait too), then reply. The task runs to its end even when the control
        connection is lost meanwhile: the client sent the whole file."""
        transfer.storing = True
        self.session.hold("store")
        task = asyncio.get_running_loop().create_task(self._sync_and_commit(transfer))
        self._storing.add(task)
        task.add_done_callback(self._storing.discard)

    async def _sync_and_commit(self, transfer: Transfer) -> None:
        upload = transfer.upload
        assert upload is not None
        try:
            upload.finish()
            await asyncio.to_thread(upload.sync)
            with self.session.state.as_user():
                upload.commit()
        except asyncio.CancelledError:
            with self.session.state.as_user():
                upload.discard()
            raise
        except OSError as exc:
            reason = exc.strerror or str(exc)
            self.session.log_session(f"{transfer.verb} {transfer.path} not stored: {reason}")
            self.end_transfer(451, f"Upload not stored: {reason}.")
            return
        self.end_transfer(226, "Transfer complete.")

    # -- transfers -------------------------------------------------------------------------

    def start_transfer(self, transfer: Transfer, preliminary: str | None = None) -> None:
        """Begin a transfer: 125 when the data connection is already up, 150 when it is
        being opened, 425 when there is none (RFC 959 §4.2); ``preliminary`` replaces the
        text of the 125/150 reply (``STOU``'s ``FILE: name``, RFC 1123 §4.1.2.9). The
        session's commands wait until the transfer ends."""
        session = self.session
        passive = self.passive
        if self.data is None and self.accepted is None and passive is not None:
            passive.poll()  # a connection the loop has not reported yet
        if not self.has_port:
            transfer.release()
            session.reply(425, "Use PORT, PASV, EPRT or EPSV first.")
            return
        self.transfer = transfer
        session.hold("transfer")
        mode = "BINARY" if session.state.binary else "ASCII"
        accepted = self.accepted
        if accepted is not None:
            self.accepted = None
            conn, client = accepted
            opened = (125, preliminary or "Data connection already open; transfer starting.")
            if not self._send_at_once(transfer, conn, client, opened):
                session.reply(*opened)
                self._attach(conn, client, DataChannel(self))
            return
        if self.data is not None:
            session.reply(125, preliminary or "Data connection already open; transfer starting.")
            self._run_transfer()
            return
        session.reply(
            150, preliminary or f"Opening {mode} mode data connection for {transfer.verb}."
        )
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
            sock.bind((self.session.local_host, 0))
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
        transfer.window_start = time.monotonic()
        if transfer.upload is not None:
            rate = self.ftp.max_upload_rate
            channel.receive(transfer.upload, Throttle(rate) if rate else None)
        else:
            assert transfer.producer is not None
            rate = self.ftp.max_download_rate
            channel.send(transfer.producer, Throttle(rate) if rate else None)
            transfer.producer = None  # the channel owns it now

    def end_transfer(
        self,
        code: int,
        text: str,
        *,
        resume: bool = True,
        preliminary: tuple[int, str] | None = None,
    ) -> None:
        """Finish the current transfer with a reply and log it; then (``resume``) let the
        session run the commands that waited. ``preliminary``: a ``125``/``150`` reply
        not sent yet, sent first in the same write."""
        transfer, self.transfer = self.transfer, None
        if transfer is None:
            return
        complete = code == 226
        if not complete:
            with self.session.state.as_user():
                transfer.release()
            if self.data is not None:
                self.data.cancel()
                self.data = None
        self.close_data()
        if preliminary is None:
            self.session.reply(code, text)
        else:
            self.session.replies(preliminary, (code, text))
        self._log_transfer(transfer, complete)
        self.session.transfer_ended(resume=resume)

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
        session = self.session
        upload = transfer.upload
        if not complete and upload is not None:
            if upload.replaces:
                what = "the partial temporary file removed, the target left as it was"
            else:
                what = "the file keeps what was written"
            session.log_session(
                f"upload of {transfer.path} aborted after {transfer.bytes} bytes; {what}"
            )
        log = self.ftp.xferlog
        state = session.state
        account = state.account
        if log is None or account is None:
            return
        when = time.time()
        seconds = time.monotonic() - transfer.started
        user = (state.guest_id or "anonymous") if account.anonymous else account.name
        binary = state.binary
        self.ftp.log_with_host(
            log,
            state.peer_host,
            lambda host: xferlog_line(
                when=when,
                seconds=seconds,
                host=host,
                nbytes=transfer.bytes,
                path=transfer.path,
                binary=binary,
                direction="i" if transfer.incoming else "o",
                anonymous=account.anonymous,
                user=user,
                complete=complete,
            ),
        )

    # -- timeouts and the end --------------------------------------------------------------

    def check_timeout(self, now: float) -> bool:
        """Apply the data timeout (``data_timeout``, seconds) to the transfer in progress:
        425 when its connection did not come in time; 426 when it stalled (nothing moved
        for that long) or trickles (fewer than ``data_min_rate`` bytes per second moved
        over the last ``data_timeout`` seconds; vsftpd's and pyftpdlib's
        ``data_connection_timeout`` catch only the stall). An upload's temporary file is
        then removed. Waits imposed by the server's own rate limits do not count. Without
        a transfer, a passive listener nobody connected to for that long is closed (its
        port goes back to the range; the next transfer command gets 425 as without
        ``PASV``), so that idle sessions cannot hold every passive port. Returns True when
        there was a transfer (the session's idle timeout does not apply then)."""
        transfer = self.transfer
        limit = self.ftp.data_timeout
        if transfer is None:
            if limit:
                self._expire_passive(now, limit)
            return False
        if not limit or transfer.storing:
            return True
        data = self.data
        if data is None or not transfer.connected:
            if now - transfer.started > limit:
                self.session.log_session(
                    f"{transfer.verb} {transfer.path}: no data connection within {limit:g} s"
                )
                self.end_transfer(425, "Data connection timed out.")
            return True
        idle = now - max(data.last_activity, transfer.started, data.throttled_until)
        if idle > limit:
            self._timed_out(transfer, f"no data for {limit:g} s")
            return True
        if now - transfer.window_start < limit:
            return True
        moved = data.received if transfer.incoming else data.bytes_out
        if data.throttled_until > transfer.window_start:
            # The server's own rate limit held the transfer back during this window.
            transfer.window_start, transfer.window_bytes = now, moved
            return True
        rate = (moved - transfer.window_bytes) / (now - transfer.window_start)
        minimum = self._min_rate(transfer)
        if rate < minimum:
            self._timed_out(
                transfer, f"{rate:.0f} bytes/s over {limit:g} s, under {minimum:g} bytes/s"
            )
            return True
        transfer.window_start, transfer.window_bytes = now, moved
        return True

    def _expire_passive(self, now: float, limit: float) -> None:
        """Close a passive listener still waiting after ``limit`` seconds without a
        transfer (vsftpd and pyftpdlib likewise stop listening after their data
        connection timeout)."""
        listener = self.passive
        if listener is None or not listener.listening or self.data is not None:
            return
        if now - listener.opened > limit:
            self.session.log_session(
                f"passive port {listener.port} closed: no data connection within {limit:g} s"
            )
            listener.close()
            self.passive = None

    def _min_rate(self, transfer: Transfer) -> float:
        """The least rate (bytes/s) a transfer must keep: ``data_min_rate``, or half the
        server's own rate limit for that direction when that is lower."""
        minimum = float(self.ftp.data_min_rate)
        cap = self.ftp.max_upload_rate if transfer.incoming else self.ftp.max_download_rate
        return min(minimum, cap / 2) if cap else minimum

    def _timed_out(self, transfer: Transfer, why: str) -> None:
        data = self.data
        if data is not None:
            transfer.bytes = data.received if transfer.incoming else data.bytes_out
        self.session.log_session(
            f"{transfer.verb} {transfer.path}: data connection timed out ({why})"
        )
        self.end_transfer(426, "Data connection timed out; transfer aborted.")

    def session_closed(self) -> None:
        """The control connection is gone: cancel connecting, drop the data connection and
        an unfinished upload's temporary file, log the unfinished transfer."""
        for task in list(self._tasks):
            task.cancel()
        if self.transfer is not None and not self.transfer.storing:
            transfer, self.transfer = self.transfer, None
            with self.session.state.as_user():
                transfer.release()
            self._log_transfer(transfer, False)
        if self.data is not None:
            self.data.cancel()
            self.data = None
        self.close_data()
