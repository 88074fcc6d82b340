"""How an HTTP connection ends: the sweep's timeouts (a slow head, a silent or trickling
body, an idle keep-alive connection), the client's half-close, and the server's graceful
stop (nginx's behaviour: what was read is answered, then the connection closes). These are
the rules that need a clock or the transport; the others are in
:mod:`medusa.http.connection`."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from medusa.core.channel import Channel
from medusa.core.log import error_logger, peer_text, printable

if TYPE_CHECKING:
    from medusa.http.body import BodyReception
    from medusa.http.connection import HTTPConnection
    from medusa.http.server import HTTPServer
    from medusa.http.upgrade import UpgradedProtocol

__all__ = ["STOP_IDLE_WINDOW", "HTTPLifecycle"]

STOP_IDLE_WINDOW = 1.0
"""Seconds a keep-alive connection that was just active may still send one last request
after the server is told to stop (a reload, a worker recycled, SIGTERM)."""


class HTTPLifecycle(Channel):
    """The ending half of :class:`~medusa.http.channel.HTTPChannel` (its base), which
    holds the connection and the body being received."""

    __slots__ = ("_upload",)

    http: HTTPServer
    connection: HTTPConnection
    upgraded: UpgradedProtocol | None
    _upload: BodyReception | None

    def _reject(self, status: int, message: str) -> None:
        """Answer with ``status``, then close (the channel's)."""
        raise NotImplementedError

    def check_timeout(self, now: float) -> None:
        """The sweep: 408 for a head not complete in ``header_timeout`` (slowloris), 408
        for a body that sent nothing for ``body_timeout`` or that averaged fewer than
        ``body_min_rate`` bytes per second over the last ``body_timeout`` seconds (a
        trickle), a close for a keep-alive connection idle for ``keepalive_timeout``, and
        the general ``idle_timeout`` otherwise. Time during which the server holds the
        body back (reading paused, ``100 Continue`` not sent yet) counts for neither. A
        connection taken over after 101 is its new protocol's to time."""
        if self.upgraded is not None:
            self.upgraded.check_timeout(now)
            return
        server = self.http
        upload = self._upload
        connection = self.connection
        if connection.in_head:
            if now - connection.head_started > server.header_timeout:
                self._reject(408, "request header timeout")
        elif upload is not None:
            if self.reading_paused or upload.held:
                upload.paused_at = now  # the server holds the body back, not the client
                return
            why = upload.too_slow(
                now, self.last_activity, server.body_timeout, server.body_min_rate
            )
            if why is not None:
                self._body_timeout(upload, why)
        elif not self._busy():
            if now - self.last_activity > server.keepalive_timeout:
                self.close()
        elif self.idle_timeout and now - self.last_activity > self.idle_timeout:
            self.handle_timeout()

    def _body_timeout(self, upload: BodyReception, why: str) -> None:
        """A request body sent nothing for ``body_timeout`` seconds (nginx's
        ``client_body_timeout``), or trickles under ``body_min_rate`` (Apache's
        ``mod_reqtimeout`` ``MinRate``); ``why`` says which, for the log line. Abort what
        was received (a sink removes its temporary file), log it, answer 408 (RFC 9110
        §15.5.9) and close gracefully."""
        self._upload = None
        request = upload.request
        self.connection.abandon_body()
        self.http.counters.errors += 1
        error_logger.warning(
            "%s: 408 request body timeout: %s %s: %d bytes received, %s",
            peer_text(self.peer),
            printable(request.method),
            printable(request.path),
            upload.size,
            why,
        )
        upload.lost(f"request body timeout ({why})")
        if not request.answered:
            request.error(408)

    def eof_received(self) -> bool | None:
        """The client half-closed: answer what it already sent (RFC 9112 §9.6 lets a
        client close its sending side after its last request), then close. A body cut
        short is aborted and its request answered 400. A connection taken over after 101:
        its new protocol's."""
        if self.upgraded is not None:
            self.upgraded.eof_received()
            return self.keep_half_open()
        self.connection.end_of_input()
        upload = self._upload
        if upload is not None:
            self._upload = None
            upload.lost("the client closed its side before the whole body was sent")
            if not upload.request.answered:
                upload.request.error(400, "The request body is incomplete.")
        if not self._busy():
            self.close()
        elif not self.connection.requests:
            self.close_when_done()
        return self.keep_half_open()

    def _busy(self) -> bool:
        """True while a response is pending or still being written (a finished request's
        file may still be streaming), so the connection is not an idle keep-alive one."""
        if self.connection.requests or self.pending:
            return True
        transport = self.transport
        return transport is not None and transport.get_write_buffer_size() > 0

    def shutdown(self) -> None:
        """Stop gracefully, as nginx does: a request being received (its head partly read,
        or its body arriving, an upload for instance) is received, handled and answered;
        every request read is answered; then the connection closes. The last answer says
        ``Connection: close`` and no later request on the connection is read. An idle
        connection closes once it has been idle :data:`STOP_IDLE_WINDOW` seconds: a
        request it sends before then (a client reusing the connection at that very moment,
        such as a load generator) is answered with ``Connection: close`` instead of meeting
        a reset. (The server's grace period bounds all of it.) A connection taken over
        after 101 is ended by its new protocol."""
        if self.upgraded is not None:
            self.upgraded.shutdown()
            return
        connection = self.connection
        connection.stop()
        if connection.in_message and not connection.input_closed:
            upload = self._upload
            if upload is not None:
                upload.keep_alive = False  # the body is read to its end, then the close
            # Otherwise the head is still arriving: it is made the last one when read.
            return
        if not self._busy():
            idle = time.monotonic() - self.last_activity
            if idle >= STOP_IDLE_WINDOW:
                self.close()
            else:
                asyncio.get_running_loop().call_later(STOP_IDLE_WINDOW - idle, self._close_if_idle)
            return
        connection.end_of_input()
        if not connection.requests:
            self.close_when_done()  # the last response is still being sent

    @property
    def stopping(self) -> bool:
        """True once :meth:`shutdown` was called: the server stops, and the request being
        received (or the next one, within :data:`STOP_IDLE_WINDOW`) is the last."""
        return self.connection.stopping

    def _close_if_idle(self) -> None:
        """The end of the stop's idle window: close unless a request came meanwhile (that
        one is the last, answered with ``Connection: close``)."""
        if not self.connection.in_message and not self._busy():
            self.close()
