"""Request bodies: buffered for ordinary handlers, streamed to a sink for handlers that ask.

When a request's head announces a body (``Content-Length`` above zero or
``Transfer-Encoding: chunked``, RFC 9112 §6.3), the connection announces the
:class:`~medusa.http.request.Request` at once (:class:`~medusa.http.connection.BodyStarted`);
the channel picks its handler and asks it how it takes the body
(:mod:`medusa.http.bodyflow`), and a :class:`BodyReception` follows the body. The
reception does no I/O and calls nobody but the sink: each of its steps returns a
:class:`BodyDecision` for the channel to carry out.

* A handler without ``receive_body`` gets the body buffered in ``request.body``, up to the
  server's ``max_body_size`` (413 above it).
* A handler with ``receive_body(request)`` (the :class:`BodyReceiver` protocol) decides
  before any byte of the body is read: it answers the request itself (411, 413, 401...),
  returns a :class:`BodySink` that receives the body piece by piece as it arrives (the
  server's ``max_body_size`` does not apply: the handler enforces its own), or returns
  ``None`` to have it buffered. It may return an awaitable of the same (a password check in
  a thread); reading pauses until it resolves.

``Expect: 100-continue`` (RFC 9110 §10.1.1) is answered only once the handler accepted the
body, so a refusal reaches the client before it sends the body (and, for a pipelined
request, once the responses before it are sent). A request answered before
its body was read closes the connection afterwards, gracefully (RFC 9112 §9.6), the rest of
the body unread. When the whole body has arrived the handler's ``handle_request`` runs, with
the sink in ``request.body_sink``; if the connection is lost first, the sink's ``abort`` is
called.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from medusa.http.request import Request

__all__ = ["BodyDecision", "BodyReceiver", "BodyReception", "BodySink"]


class BodyDecision(enum.Enum):
    """What the channel does after a step of a :class:`BodyReception`."""

    DISPATCH = "dispatch"
    """The whole body is here and accepted: run the handler (:meth:`BodyReception.ready`)."""
    CONTINUE = "continue"
    """Send ``100 Continue`` when the request is current (:meth:`BodyReception.continue_now`)."""
    TOO_LARGE = "too large"
    """Answer 413: the buffered body is over ``max_body_size`` (logged, counted)."""
    SINK_FAILED = "sink failed"
    """The sink raised (it was aborted): log the handler's failure, answer 500."""


@runtime_checkable
class BodySink(Protocol):
    """Where a streamed request body goes (for example a temporary file)."""

    def write(self, data: bytes) -> None:
        """Take the next piece of the body (de-chunked bytes, in order). It may answer the
        request itself (413 when too large, 507 on a full disk): the rest of the body is
        then discarded."""
        ...

    def abort(self, reason: str) -> None:
        """The body will never be complete (connection lost, malformed framing): undo what
        was written and log ``reason``."""
        ...


@runtime_checkable
class BodyReceiver(Protocol):
    """A handler that wants its requests' bodies streamed rather than buffered."""

    def receive_body(self, request: Request) -> BodySink | Awaitable[BodySink | None] | None:
        """Decide on ``request``'s body before any of it is read: answer the request to
        refuse it, return a sink for it, or ``None`` to have it buffered."""
        ...


class BodyReception:
    """The body of one request, from its head to its last byte, sans-IO.

    Args:
        request: the request, already queued for its response.
        handler: the handler chosen for it (``None``: 404 once the body is read).
        length: the announced ``Content-Length`` in bytes, or ``None`` when chunked.
        expect_continue: the client sent ``Expect: 100-continue`` over HTTP/1.1.
        max_body_size: the most bytes buffered for a handler that does not stream.
        now: when the head was read (:func:`time.monotonic`, seconds).
        held: reading is paused now (the server holds the body back).
    """

    __slots__ = (
        "_continue_due",
        "_holds",
        "chunks",
        "complete",
        "expect_continue",
        "handler",
        "held_since",
        "keep_alive",
        "length",
        "lost_reason",
        "max_body_size",
        "paused_at",
        "pending",
        "request",
        "sink",
        "size",
        "window_bytes",
        "window_start",
    )

    def __init__(
        self,
        request: Request,
        handler: Any,
        length: int | None,
        expect_continue: bool,
        max_body_size: int,
        now: float,
        held: bool,
    ) -> None:
        self.request = request
        self.handler = handler
        self.max_body_size = max_body_size
        self.length = length
        self.expect_continue = expect_continue
        self.keep_alive = request.keep_alive
        # Until the whole body has been read, an answer must close the connection: the
        # rest of the body would otherwise be taken for the next request.
        request.keep_alive = False
        self.sink: BodySink | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.complete = False
        self.pending = True
        """True until the handler's decision is taken (:meth:`take`): pieces are kept."""
        self.lost_reason: str | None = None
        # The body timeouts (see HTTPChannel.check_timeout). paused_at: the last time the
        # server was seen holding the body back (reading paused, 100 Continue not sent);
        # the client cannot send meanwhile, so that time does not count against it.
        # window_start, window_bytes: when the current body_min_rate window began (moved
        # forward by the time held since) and the bytes received by then.
        self.paused_at = self.window_start = self.held_since = now
        self.window_bytes = 0
        self._holds = 0
        self._continue_due = False
        if held:
            self.hold(now)
        if expect_continue:
            self.hold(now)  # the client waits for 100 Continue before sending the body

    @property
    def held(self) -> bool:
        """True while the server holds the body back: reading is paused, or the client
        waits for ``100 Continue`` (the body timeouts do not run then)."""
        return self._holds > 0

    def too_slow(
        self, now: float, last_activity: float, timeout: float, min_rate: float
    ) -> str | None:
        """Judge the body at ``now`` (:func:`time.monotonic`) while the server does not hold
        it back: the reason it timed out (no data for ``timeout`` seconds since
        ``last_activity``, or fewer than ``min_rate`` bytes per second over the last
        ``timeout``-second window, a trickle; ``min_rate`` 0: silence only), else None, and
        then a full window that kept the rate starts the next one."""
        if now - max(self.paused_at, last_activity) > timeout:
            return f"none for {timeout:g} s"
        if not min_rate or now - self.window_start < timeout or self.request.answered:
            return None
        rate = (self.size - self.window_bytes) / (now - self.window_start)
        if rate < min_rate:
            return f"{rate:.0f} bytes/s over {timeout:g} s, under {min_rate:g} bytes/s"
        self.window_start, self.window_bytes = now, self.size
        return None

    def hold(self, now: float) -> None:
        """The server starts holding the body back at ``now`` (:func:`time.monotonic`);
        each call is undone by one :meth:`release`."""
        if not self._holds:
            self.held_since = now
        self._holds += 1

    def release(self, now: float) -> None:
        """Undo one :meth:`hold`; when none is left, the time held is taken out of the
        current rate window, and the silence is counted from ``now``."""
        if not self._holds:
            return
        self._holds -= 1
        if not self._holds:
            self.window_start += now - self.held_since
            self.paused_at = now

    def take(self, sink: BodySink | None) -> BodyDecision | None:
        """The handler's decision: stream the body into ``sink``, or buffer it (``None``).
        The pieces kept so far go to the sink now."""
        self.pending = False
        if sink is None:
            limit = self.max_body_size
            if (self.length is not None and self.length > limit) or self.size > limit:
                self.chunks = []
                return BodyDecision.TOO_LARGE
        else:
            self.sink = sink
            chunks, self.chunks = self.chunks, []
            for data in chunks:
                if not self._write(sink, data):
                    return BodyDecision.SINK_FAILED
        if self.complete:
            return BodyDecision.DISPATCH  # (a body sent without waiting needs no 100)
        if self.expect_continue:
            self._continue_due = True
            return BodyDecision.CONTINUE
        return None

    def continue_now(self, now: float) -> bool:
        """True when the promised ``100 Continue`` is to be sent now: the request is the
        current one and not answered (the channel asks again when it becomes current); the
        client's time to send the body starts at ``now``."""
        request = self.request
        if not self._continue_due or request.answered or not request.current:
            return False
        self._continue_due = False
        self.release(now)
        return True

    def feed(self, data: bytes) -> BodyDecision | None:
        """Take a piece of the body from the parser."""
        if self.request.answered:
            return None  # refused: the rest is discarded
        self.size += len(data)
        sink = self.sink
        if sink is not None:
            return None if self._write(sink, data) else BodyDecision.SINK_FAILED
        if not self.pending and self.size > self.max_body_size:
            self.chunks = []
            return BodyDecision.TOO_LARGE
        self.chunks.append(data)  # pending: at most what was read before reading paused
        return None

    def _write(self, sink: BodySink, data: bytes) -> bool:
        try:
            sink.write(data)
        except Exception:
            sink.abort("the handler failed while receiving the body")
            return False
        return True

    def finish(self) -> BodyDecision | None:
        """The parser read the last byte of the body."""
        self.complete = True
        if not self.pending and not self.request.answered:
            return BodyDecision.DISPATCH
        return None

    def ready(self) -> Any:
        """The body is complete and accepted: put it on the request (``body``, or
        ``body_sink``), give the request its keep-alive back, and return the handler to
        run (``None``: answer 404)."""
        request = self.request
        request.keep_alive = self.keep_alive
        if self.sink is None:
            request.body = b"".join(self.chunks)
            self.chunks = []
        else:
            request.body_sink = self.sink
        return self.handler

    def lost(self, reason: str) -> None:
        """The body will never be complete: abort the sink (the handler undoes its work)."""
        if self.complete and not self.pending:
            return
        self.lost_reason = reason
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.abort(reason)
