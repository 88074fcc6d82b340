"""The HTTP/1.x channel: the adapter between the transport and the sans-IO
:class:`~medusa.http.connection.HTTPConnection`, which holds every protocol rule (persistence,
pipelining order, bodies, limits). This class feeds it the bytes received, hands the events
it returns to handlers (:mod:`medusa.http.dispatch`) and request bodies to
:mod:`medusa.http.body`, writes what responses produce, and runs the clock's rules (the
timeouts, in :class:`~medusa.http.lifecycle.HTTPLifecycle`).

Log lines give the client as ``host:port`` and escape what it chose
(:func:`medusa.core.log.printable`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from time import monotonic
from typing import TYPE_CHECKING

from medusa.core.log import error_logger, peer_text, printable
from medusa.core.trusted import TrustedNetworks
from medusa.http import bodyflow
from medusa.http.body import BodyReception
from medusa.http.connection import HTTPConnection
from medusa.http.dispatch import choose_handler, dispatch, handler_failed, run_handler
from medusa.http.events import (
    BODY_END,
    PAUSE_PIPELINE,
    BodyData,
    BodyStarted,
    Completion,
    ParserFailed,
    Rejected,
)
from medusa.http.forwarded import forwarded_client
from medusa.http.handler import Handler
from medusa.http.lifecycle import STOP_IDLE_WINDOW, HTTPLifecycle
from medusa.http.linger import LingeringClose
from medusa.http.request import Request

if TYPE_CHECKING:
    from medusa.http.server import HTTPServer
    from medusa.http.upgrade import UpgradedProtocol

__all__ = ["STOP_IDLE_WINDOW", "HTTPChannel"]


class HTTPChannel(HTTPLifecycle):
    """One HTTP connection.

    Args:
        server: the :class:`~medusa.http.server.HTTPServer` (handlers, limits, counters).

    Attributes:
        connection: the connection's :class:`~medusa.http.connection.HTTPConnection`.
    """

    terminator = None

    forwarded_peer: tuple[str, int] | None = None
    """The client of the connection's latest request as trusted proxy headers gave it
    (``proxy_headers``; set on the instance only then), for the status page."""

    upgraded: UpgradedProtocol | None = None
    """The protocol that took the connection over after a 101 (:meth:`take_over`; set on
    the instance only then)."""

    __slots__ = ("_waiting_bodies", "connection", "http", "log_host")

    def __init__(self, server: HTTPServer) -> None:
        super().__init__(server)
        self.http = server
        # The client's address as the access log writes it, set by the first line logged.
        self.log_host = ""
        self.connection = HTTPConnection(server, self)
        self._upload: BodyReception | None = None
        # Bodies of requests that wait for unsafe ones ahead (RFC 9110 §9.2.1), by request:
        # started when the connection releases them.
        self._waiting_bodies: dict[Request, BodyReception] | None = None

    # -- input -----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """asyncio: the bytes of one read. They are counted as
        :meth:`Channel.data_received <medusa.core.channel.Channel.data_received>` counts
        them, then fed to the connection; the events they complete are acted on (core's
        ``handle_data`` seam is not used: this runs for every read, and a call less
        matters). After a 101, they go to the protocol that took the connection over."""
        self.last_activity = now = monotonic()
        size = len(data)
        self.bytes_in += size
        http = self.http
        http.counters.bytes_in += size
        if self._closing:
            return
        events = self.connection.receive_data(data, now)
        if len(events) == 1 and type(request := events[0]) is Request:
            # The common case, one whole request without a body: _dispatch, inlined.
            http.counters.requests += 1
            if http.forwarded_from is not None:
                self._apply_forwarded(request, http.forwarded_from)
            dispatch(self, http.handlers, request)
        elif events:
            self._handle_events(events)
        else:
            upgraded = self.upgraded
            if upgraded is not None:  # (the connection parses nothing after the upgrade)
                upgraded.data_received(data)

    def _dispatch(self, request: Request) -> None:
        http = self.http
        http.counters.requests += 1
        forwarded = http.forwarded_from
        if forwarded is not None:
            self._apply_forwarded(request, forwarded)
        dispatch(self, http.handlers, request)

    def _handle_events(self, events: Sequence[object]) -> None:
        requests = self.connection.requests
        for event in events:
            if type(event) is Request:
                if event in requests:  # else dropped: a close was decided before its turn
                    self._dispatch(event)
            elif type(event) is BodyData:
                upload = self._upload
                if upload is not None:
                    decision = upload.feed(event.data)
                    if decision is not None:
                        bodyflow.act(self, upload, decision)
            elif type(event) is BodyStarted:
                self._body_started(event)
            elif event is BODY_END:
                upload = self._upload
                if upload is not None:
                    self._upload = None
                    bodyflow.act(self, upload, upload.finish())
            elif event is PAUSE_PIPELINE:
                self.pause_reading("pipeline")
            elif isinstance(event, Rejected):
                self._rejected(event)

    def _body_started(self, event: BodyStarted) -> None:
        request = event.request
        connection = self.connection
        if request not in connection.requests:
            return
        http = self.http
        http.counters.requests += 1
        if http.forwarded_from is not None:
            self._apply_forwarded(request, http.forwarded_from)
        upload = self._upload = BodyReception(
            request,
            None,
            event.length,
            event.expect_continue,
            http.max_body_size,
            self.last_activity,
            self.reading_paused,
        )
        # Chosen once the request's keep-alive is withheld (a failing match answers 500,
        # and the connection must then close: the body is unread).
        upload.handler = choose_handler(self, http.handlers, request)
        if request.answered:
            return
        if request.waiting:
            # Read no more than this read's bytes until the requests before it are done.
            self.pause_reading("order")
            if self._waiting_bodies is None:
                self._waiting_bodies = {}
            self._waiting_bodies[request] = upload
            return
        bodyflow.start(self, upload)

    def _apply_forwarded(self, request: Request, trusted: TrustedNetworks) -> None:
        """``proxy_headers``: from a peer in ``proxy_trusted``, take the client and scheme
        from ``Forwarded``/``X-Forwarded-*`` (:mod:`medusa.http.forwarded`); the status page
        shows the latest client of the connection (:attr:`forwarded_peer`)."""
        peer = self.peer
        if type(peer) is not tuple or peer[0] not in trusted:
            return
        forwarded = forwarded_client(request.headers, trusted)
        if forwarded is None:
            return
        request.forwarded = forwarded
        if forwarded.peer is not None:
            self.forwarded_peer = forwarded.peer

    def _rejected(self, event: Rejected) -> None:
        """Answer a request that cannot be read or breaks a limit, then close."""
        self.http.counters.errors += 1
        request = event.request
        if isinstance(event, ParserFailed):
            error_logger.error(
                "HTTP parser callback failed for %s", peer_text(self.peer), exc_info=event.error
            )
        else:
            error_logger.info(
                "%s: %d %s", peer_text(self.peer), event.status, printable(event.message)
            )
        upload = self._upload
        if upload is not None and upload.request is request:
            # Malformed body framing: the request being read gets the answer.
            self._upload = None
            upload.lost(f"malformed request body: {event.message}")
        if not request.answered:
            request.error(event.status, event.message)

    def _reject(self, status: int, message: str) -> None:
        """Answer with ``status`` because of a rule that needs the clock (408), then close."""
        self._rejected(self.connection.reject(status, message))

    def pause_reading(self, reason: str = "user") -> None:
        """Stop reading (see :meth:`Channel.pause_reading`); a body being received is held
        by the server from now, which does not count against its client."""
        held = self.reading_paused
        super().pause_reading(reason)
        upload = self._upload
        if upload is not None and not held:
            upload.hold(time.monotonic())

    def resume_reading(self, reason: str = "user") -> None:
        """Withdraw a reason to stop reading (see :meth:`Channel.resume_reading`); once
        reading resumes, the time a body being received was held is left out of its rate."""
        held = self.reading_paused
        super().resume_reading(reason)
        upload = self._upload
        if upload is not None and held and not self.reading_paused:
            upload.release(time.monotonic())

    def body_read(self) -> None:
        """Called when a request's whole body was read and its handler is about to run:
        an error answer no longer needs a lingering close."""
        self.connection.body_read()

    @property
    def pending_requests(self) -> list[Request]:
        """The requests read and not yet answered, oldest first (the first one's response
        is the one being written)."""
        return self.connection.requests

    # -- dispatch --------------------------------------------------------------------------

    def run_handler(self, request: Request, handler: Handler) -> None:
        """Let ``handler`` answer ``request`` (:func:`medusa.http.dispatch.run_handler`):
        handlers that wrap others and decide later (after a check in a thread) call this."""
        run_handler(self, request, handler)

    def handler_failed(
        self, request: Request, handler: object, exc: BaseException | None = None
    ) -> None:
        """Log a handler's exception and answer 500
        (:func:`medusa.http.dispatch.handler_failed`)."""
        handler_failed(self, request, handler, exc)

    def response_finished(self, request: Request) -> None:
        """Called by :meth:`Request.done` when the current response is complete: log it,
        then act on what the connection decides (the next response, a close)."""
        completion = self.connection.response_complete(request)
        http = self.http
        if completion is None:
            access = http.access
            if access is not None:
                access.log(request)
            return
        self._completed(completion)

    def _completed(self, completion: Completion) -> None:
        http = self.http
        for done in completion.done:
            http.log_access(done)
        for current in completion.current:
            current.release_output()  # in order, before anything else is written
        if completion.close:
            self._waiting_bodies = None
            for dropped in completion.dropped:
                dropped.close_pending()
            upload = self._upload
            if upload is not None and upload.request in completion.dropped:
                self._upload = None
                upload.lost("the connection closes before this request's turn")
            if completion.close == 2:
                self.push_with_producer(LingeringClose(self, self._read_after_half_close))
            else:
                self.close_when_done()
            return
        upload = self._upload
        if upload is not None and upload.request.current:
            bodyflow.send_continue(self, upload)  # if it was promised and is still awaited
        for request in completion.released:
            if not request.body_expected:
                self._dispatch(request)
                continue
            waiting = self._waiting_bodies
            upload = waiting.pop(request, None) if waiting else None
            if upload is not None:
                self.resume_reading("order")
                bodyflow.start(self, upload)
            # Else its head's event is still to be handled: it starts its body then.
        if completion.resume_pipeline:
            self.resume_reading("pipeline")

    def _read_after_half_close(self) -> None:
        """The lingering close began: read (and discard) even if the pipeline paused it."""
        if self.connection.pipeline_paused:
            self.connection.lingering()
            self.resume_reading("pipeline")

    # -- switching protocols ---------------------------------------------------------------

    def take_over(self, request: Request, head: bytes, protocol: UpgradedProtocol) -> bytes:
        """Switch protocols (RFC 9110 §7.8, §15.2.2): write ``head``, the whole ``101
        Switching Protocols`` response head (status line, fields, blank line; written as
        given), log ``request`` as answered 101, and give the connection to ``protocol``
        (:mod:`medusa.http.upgrade`): from now on it receives what is read, the sweep's
        clock, the client's half-close, the server's stop and the end of the connection.

        Returns:
            the bytes received after the request's head (the new protocol's first ones,
            usually ``b""``).

        Raises:
            RuntimeError: when ``request`` did not ask to switch (its
                :attr:`~medusa.http.request.Request.upgrade` is None), is not the
                connection's only request, or was answered already.
        """
        rest = request.upgrade
        requests = self.connection.requests
        if rest is None or requests != [request] or request.answered or self._closing:
            raise RuntimeError(f"{request!r} cannot switch protocols now")
        request.status = 101
        request.headers_sent = request.finished = True
        self.push(head)
        requests.clear()
        self.connection.parser = None  # no more HTTP: its parser (about 0.9 KB) goes
        self.upgraded = protocol
        self.http.log_access(request)
        return rest

    def resume_writing(self) -> None:
        """The transport's backlog drained (see :meth:`Channel.resume_writing`); a protocol
        that took the connection over is told."""
        super().resume_writing()
        upgraded = self.upgraded
        if upgraded is not None:
            upgraded.writing_resumed()

    def connection_lost(self, exc: Exception | None) -> None:
        """Release the held responses of requests that will never be answered, and abort a
        body being received; a protocol that took the connection over is told."""
        upload = self._upload
        if upload is not None:
            self._upload = None
            upload.lost("connection closed before the whole body was received")
        self._waiting_bodies = None
        requests = self.connection.requests
        for request in requests:
            request.close_pending()
        requests.clear()
        super().connection_lost(exc)
        upgraded = self.upgraded
        if upgraded is not None:
            upgraded.connection_lost()
