"""Request bodies: buffered for ordinary handlers, streamed to a sink for handlers that ask.

When a request's head announces a body (``Content-Length`` above zero or
``Transfer-Encoding: chunked``, RFC 9112 §6.3), the connection announces the
:class:`~medusa.http.request.Request` at once (:class:`~medusa.http.connection.BodyStarted`);
the channel picks its handler and starts a :class:`BodyReception`, which talks to the
channel only through :class:`BodyOwner`:

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

import asyncio
import inspect
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from medusa.core.log import error_logger, peer_text, printable
from medusa.http.connection import CONTINUE

if TYPE_CHECKING:
    from medusa.http.request import Request

__all__ = ["BodyOwner", "BodyReceiver", "BodyReception", "BodySink"]


class BodyOwner(Protocol):
    """What a :class:`BodyReception` needs from the connection it belongs to (the channel):
    the peer for log lines, flow control, the interim response, and running the handler."""

    @property
    def peer(self) -> Any:
        """The client's address, for log lines."""
        ...

    @property
    def closing(self) -> bool:
        """True once the connection is closed or closing."""
        ...

    def pause_reading(self, reason: str = "user") -> None:
        """Stop reading for ``reason`` (the body is held back)."""
        ...

    def resume_reading(self, reason: str = "user") -> None:
        """Withdraw ``reason`` to stop reading."""
        ...

    def push(self, data: bytes) -> None:
        """Write ``data`` (the ``100 Continue`` interim response)."""
        ...

    def body_read(self) -> None:
        """The whole body was read: its handler is about to run."""
        ...

    def run_handler(self, request: Request, handler: Any) -> None:
        """Let ``handler`` answer ``request``."""
        ...

    def handler_failed(
        self, request: Request, handler: Any, exc: BaseException | None = None
    ) -> None:
        """Log a handler's exception and answer 500."""
        ...

    def count_error(self) -> None:
        """Count a refused request in the server's counters."""
        ...


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
    """The body of one request, from its head to its last byte.

    Args:
        channel: the connection (a :class:`BodyOwner`).
        request: the request, already queued for its response.
        length: the announced ``Content-Length`` in bytes, or ``None`` when chunked.
        expect_continue: the client sent ``Expect: 100-continue`` over HTTP/1.1.
        max_body_size: the most bytes buffered for a handler that does not stream.
        now: when the head was read (:func:`time.monotonic`, seconds).
        held: reading is paused now (the server holds the body back).
    """

    __slots__ = (
        "_continue_due",
        "_holds",
        "_lost",
        "_pending",
        "channel",
        "chunks",
        "complete",
        "expect_continue",
        "handler",
        "held_since",
        "keep_alive",
        "length",
        "max_body_size",
        "paused_at",
        "request",
        "sink",
        "size",
        "window_bytes",
        "window_start",
    )

    def __init__(
        self,
        channel: BodyOwner,
        request: Request,
        length: int | None,
        expect_continue: bool,
        max_body_size: int,
        now: float,
        held: bool,
    ) -> None:
        self.channel = channel
        self.max_body_size = max_body_size
        self.request = request
        self.handler: Any = None
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
        self._pending = True  # until start(): pieces of the body are kept in chunks
        self._lost = False
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

    def start(self) -> None:
        """Ask :attr:`handler` (the handler chosen for the request, or ``None``: the answer
        is 404 once the body has been read) how it takes the body (see the module
        docstring). Until this is called, the pieces of the body that arrive are kept."""
        self._pending = False
        request = self.request
        handler = self.handler
        receive = getattr(handler, "receive_body", None)
        if receive is None:
            self._buffer()
        else:
            try:
                result = receive(request)
            except Exception:
                self.channel.handler_failed(request, handler)
                return
            if request.answered:
                return
            if result is not None and inspect.isawaitable(result):
                self._pending = True
                self.channel.pause_reading("body")
                future = asyncio.ensure_future(result)
                future.add_done_callback(self._accepted)
                return
            self._take(result)
        if self.complete and not request.answered:
            self._dispatch()

    def _take(self, sink: BodySink | None) -> None:
        if sink is None:
            self._buffer()
            return
        self.sink = sink
        chunks, self.chunks = self.chunks, []
        for data in chunks:
            self._write(sink, data)
        if not self.request.answered:
            self._send_continue()

    def _buffer(self) -> None:
        limit = self.max_body_size
        if (self.length is not None and self.length > limit) or self.size > limit:
            self.refuse(413, "request body too large")
            return
        self._send_continue()

    def _send_continue(self) -> None:
        if self.expect_continue:
            self._continue_due = True
            self.send_continue()

    def send_continue(self) -> None:
        """Send the ``100 Continue`` that the handler's acceptance promised, once the
        request's response is the next one on the connection (the channel calls this when
        it becomes so); then the client's time to send the body starts."""
        if not self._continue_due:
            return
        request = self.request
        if request.answered or not request.current:
            return
        self._continue_due = False
        self.channel.push(CONTINUE)
        self.release(time.monotonic())

    def _accepted(self, future: asyncio.Future[BodySink | None]) -> None:
        self._pending = False
        channel = self.channel
        request = self.request
        if not channel.closing:
            channel.resume_reading("body")
        if future.cancelled():
            if not request.answered:
                request.error(503)
            return
        exc = future.exception()
        if exc is not None:
            channel.handler_failed(request, self.handler, exc)
            return
        sink = future.result()
        if self._lost:
            if sink is not None:
                sink.abort("connection closed before the body was read")
            return
        if request.answered:
            return
        self._take(sink)
        if self.complete and not request.answered:
            self._dispatch()

    def feed(self, data: bytes) -> None:
        """Take a piece of the body from the parser."""
        request = self.request
        if request.answered:
            return  # refused: the rest is discarded
        self.size += len(data)
        sink = self.sink
        if sink is not None:
            self._write(sink, data)
        elif self._pending:
            self.chunks.append(data)  # at most what was read before reading paused
        elif self.size > self.max_body_size:
            self.chunks = []
            self.refuse(413, "request body too large")
        else:
            self.chunks.append(data)

    def _write(self, sink: BodySink, data: bytes) -> None:
        try:
            sink.write(data)
        except Exception:
            sink.abort("the handler failed while receiving the body")
            self.channel.handler_failed(self.request, self.handler)

    def finish(self) -> None:
        """The parser read the last byte of the body: run the handler (once it accepted)."""
        self.complete = True
        if not self._pending and not self.request.answered:
            self._dispatch()

    def _dispatch(self) -> None:
        request = self.request
        channel = self.channel
        request.keep_alive = self.keep_alive
        channel.body_read()
        if self.handler is None:
            request.error(404)
            return
        if self.sink is None:
            request.body = b"".join(self.chunks)
            self.chunks = []
        else:
            request.body_sink = self.sink
        channel.run_handler(request, self.handler)

    def refuse(self, status: int, message: str) -> None:
        """Answer the request with ``status`` before its body was read (the connection
        closes after the answer)."""
        error_logger.info("%s: %d %s", peer_text(self.channel.peer), status, printable(message))
        self.channel.count_error()
        self.request.error(status, message)

    def lost(self, reason: str) -> None:
        """The body will never be complete: abort the sink (the handler undoes its work)."""
        if self.complete and not self._pending:
            return
        self._lost = True
        sink, self.sink = self.sink, None
        if sink is not None:
            sink.abort(reason)
