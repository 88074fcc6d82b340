"""The HTTP/1.x channel: httptools (llhttp) parses, this class glues the parser's callbacks
to requests, handlers and the response queue.

* Persistence (RFC 9112 §9.3): HTTP/1.1 stays open unless ``Connection: close``; HTTP/1.0
  only with ``Connection: keep-alive``.
* Pipelining (RFC 9112 §9.3.2): requests are dispatched as they arrive, responses leave in
  request order; a response finished early waits in its request until its turn.
* Limits, each answered with its status and a close: malformed 400, request-target over
  ``max_request_line`` 414, head over ``max_header_size``/``max_header_fields`` 431,
  buffered body over ``max_body_size`` 413 (streamed bodies: :mod:`medusa.http.body`); 408
  for a head slower than ``header_timeout`` or a body silent for ``body_timeout`` or under
  ``body_min_rate``. The request line (:mod:`medusa.http.requestline`) and the head's
  framing, ``Host`` and ``Expect`` (:mod:`medusa.http.headcheck`) are checked first.
* Log lines give the client as ``host:port`` and escape what it chose
  (:func:`medusa.core.log.printable`).
"""

from __future__ import annotations

import time
from time import monotonic
from typing import TYPE_CHECKING, Any

import httptools

from medusa.core.log import error_logger, peer_text, printable
from medusa.core.trusted import TrustedNetworks
from medusa.http.body import BodyReception
from medusa.http.dispatch import choose_handler, dispatch, handler_failed, run_handler
from medusa.http.forwarded import forwarded_client
from medusa.http.handler import Handler
from medusa.http.headcheck import RequestRejectedError, body_length, check_fields
from medusa.http.lifecycle import STOP_IDLE_WINDOW, HTTPLifecycle
from medusa.http.linger import LingeringClose
from medusa.http.request import Request
from medusa.http.requestline import METHOD_NAMES, split_request_line
from medusa.http.target import KNOWN_HOSTS

if TYPE_CHECKING:
    from medusa.http.server import HTTPServer

__all__ = ["STOP_IDLE_WINDOW", "HTTPChannel"]

_NO_HEADERS: dict[str, str] = {}

_FIELD_NAMES: dict[bytes, str] = {
    spelling: name.lower()
    for name in (
        "Host", "User-Agent", "Accept", "Accept-Encoding", "Accept-Language", "Connection",
        "Content-Length", "Content-Type", "Cookie", "Referer", "Cache-Control", "Pragma",
        "If-Modified-Since", "If-None-Match", "Range", "Authorization", "Origin",
        "Upgrade-Insecure-Requests", "Sec-Fetch-Dest", "Sec-Fetch-Mode", "Sec-Fetch-Site",
        "Sec-Fetch-User", "DNT", "TE", "Transfer-Encoding", "X-Forwarded-For",
        "X-Forwarded-Proto", "X-Real-IP", "Forwarded", "Priority", "Keep-Alive",
    )
    for spelling in (name.encode(), name.lower().encode())
}  # fmt: skip
"""Common field names as clients spell them, lower-cased once (every request has a few)."""

_SAFE = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
"""Methods that change nothing (RFC 9110 §9.2.1): a pipelined request after any other one
waits until it is answered, so that it sees its effect."""


class _StopParsingError(Exception):
    """Raised inside a parser callback when no further request on the connection is to be
    read (bytes after the last one answered before a close)."""


class HTTPChannel(HTTPLifecycle):
    """One HTTP connection.

    Args:
        server: the :class:`~medusa.http.server.HTTPServer` (handlers, limits, counters).
    """

    terminator = None

    forwarded_peer: tuple[str, int] | None = None
    """The client of the connection's latest request as trusted proxy headers gave it
    (``proxy_headers``; set on the instance only then), for the status page."""

    __slots__ = (
        "_field_count",
        "_head_size",
        "_head_started",
        "_headers",
        "_in_head",
        "_in_message",
        "_parser",
        "_pending_head",
        "_pipeline_paused",
        "_requests",
        "_url",
        "http",
        "log_host",
    )

    def __init__(self, server: HTTPServer) -> None:
        super().__init__(server)
        self.http = server
        # The client's address as the access log writes it, set by the first line logged.
        self.log_host = ""
        # Idle connections hold as little as possible (see docs/architecture.md): the
        # parser is made when bytes arrive and dropped when the connection is idle again;
        # per-request state is released as soon as the request is built.
        self._parser: httptools.HttpRequestParser | None = None
        self._requests: list[Request] = []
        self._url = b""
        self._headers: dict[str, str] = _NO_HEADERS
        self._upload: BodyReception | None = None
        self._head_size = 0
        self._pending_head = 0
        self._field_count = 0
        self._in_head = False
        self._in_message = False
        self._linger = False
        self._head_started = 0.0
        self._discard = False
        self._stopping = False
        self._pipeline_paused = False

    # -- input -----------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Feed bytes to the parser; turn parse errors into 400 (or the limit's status)."""
        self.last_activity = monotonic()
        size = len(data)
        self.bytes_in += size
        http = self.http
        http.counters.bytes_in += size
        if self._discard:
            return
        if self._in_head:
            # Bytes of a line that the parser is still accumulating (a request line or a
            # header field not complete yet) are counted here; complete ones exactly in
            # on_url/on_header. This bounds what a client can make the parser hold.
            self._pending_head += size
            if self._head_size + self._pending_head > http.max_head_bytes:
                if self._field_count:
                    self._reject(431, "request header block too large")
                else:
                    self._reject(414, "request line too long")
                return
        parser = self._parser
        if parser is None:
            parser = self._parser = httptools.HttpRequestParser(self)
        try:
            parser.feed_data(data)
            if not self._in_message and http.counters.active > http.parser_keep_limit:
                # Many connections: an idle one keeps no parser (about 0.9 KB each), at
                # the price of making one (about 0.7 us) for its next request.
                self._parser = None
        except httptools.HttpParserUpgrade:
            # Upgrade (WebSocket, h2c) and CONNECT are not supported: the request was
            # answered as a plain request; the connection closes after it.
            self._discard = True
            if self._requests:
                self._requests[-1].keep_alive = False
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__ or exc.__cause__
            if isinstance(cause, RequestRejectedError):
                self._reject(cause.status, str(cause))
            elif isinstance(cause, _StopParsingError):
                pass  # the rest of this read is discarded, as every later read is
            else:
                error_logger.error(
                    "HTTP parser callback failed for %s", peer_text(self.peer), exc_info=cause
                )
                self._reject(500, "internal error while reading the request")
        except httptools.HttpParserError as exc:
            if self._discard:
                # Bytes after the connection's last request, in the same read (llhttp's
                # "Data after Connection: close"): discarded, as every later read is; its
                # answer may have ended the output already.
                return
            self._reject(400, f"malformed request: {exc}")

    def on_message_begin(self) -> None:
        """llhttp: the first byte of a request arrived (a request after the connection's
        last one, in the same read, is not parsed)."""
        if self._discard:
            raise _StopParsingError
        # _url is empty and _upload None here: the previous request's end reset them.
        self._in_head = True
        self._in_message = True
        self._head_started = self.last_activity  # set by data_received, which calls us
        self._head_size = 0
        self._pending_head = 0
        self._field_count = 0
        self._headers = {}

    def on_url(self, url: bytes) -> None:
        """llhttp: (part of) the request-target."""
        self._url += url
        self._pending_head = 0
        if len(self._url) > self.http.max_request_line:
            raise RequestRejectedError(414, "request-target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        """llhttp: one complete header field."""
        self._pending_head = 0
        count = self._field_count = self._field_count + 1
        size = self._head_size = self._head_size + len(name) + len(value) + 4
        http = self.http
        if count > http.max_header_fields:
            raise RequestRejectedError(431, "too many header fields")
        if size > http.max_header_size:
            raise RequestRejectedError(431, "request header block too large")
        key = _FIELD_NAMES.get(name) or name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers = self._headers
        if key in headers:
            if key == "host":
                raise RequestRejectedError(400, "more than one Host field")  # RFC 9112 §3.2
            headers[key] = f"{headers[key]}, {text}"
        else:
            headers[key] = text

    def on_headers_complete(self) -> None:
        """llhttp: the head is complete. A request with a body is built now and its
        handler chosen, so that the handler can refuse the body, or take it as a stream,
        before it is read (:mod:`medusa.http.body`); ``Expect: 100-continue`` (RFC 9110
        §10.1.1) is answered then."""
        self._in_head = False
        headers = self._headers
        if (
            "content-length" not in headers
            and "transfer-encoding" not in headers
            and "expect" not in headers
            and headers.get("host") in KNOWN_HOSTS
        ):
            return  # no body, a Host seen valid before: both checks below would pass it
        parser = self._parser
        assert parser is not None
        size = body_length(headers)
        expect = check_fields(headers, parser.get_http_version)
        if size == 0:
            return
        request = self._make_request(parser)
        if size is None and request.version == "1.0":
            # Transfer-Encoding in an HTTP/1.0 message: its framing is treated as faulty,
            # and the connection closes after it (RFC 9112 §6.1).
            request.keep_alive = False
        self._enqueue(request)
        self.http.counters.requests += 1
        self._linger = True  # an answer before the whole body was read closes gracefully
        upload = self._upload = BodyReception(
            self, request, size, expect and request.version == "1.1"
        )
        upload.handler = choose_handler(self, self.http.handlers, request)
        if request.answered:
            return
        if len(self._requests) > 1 and self._unsafe_ahead():
            # Read no more than this read's bytes until the requests before it are done.
            self.pause_reading("order")
            request._deferred = upload.start
            return
        upload.start()

    def on_body(self, body: bytes) -> None:
        """llhttp: a piece of the (de-chunked) body."""
        upload = self._upload
        if upload is not None:
            upload.feed(body)

    def _make_request(self, parser: httptools.HttpRequestParser) -> Request:
        version = parser.get_http_version()
        url = self._url.decode("latin-1")
        self._url = b""
        name = METHOD_NAMES.get(parser.get_method())
        if (
            name is not None
            and version == "1.1"
            and url[:1] == "/"
            and "?" not in url
            and "%" not in url
        ):
            # The usual origin-form target: split_request_line would return it as it is.
            path = url
            query = ""
        else:
            name, path, query, authority = split_request_line(parser.get_method(), url, version)
            if authority is not None:
                self._headers["host"] = authority  # RFC 9112 §3.2.2
        request = Request(
            self,
            name,
            url,
            path,
            query,
            version,
            self._headers,
            parser.should_keep_alive() and not self._stopping,
            self._head_started,
        )
        self._headers = _NO_HEADERS
        trusted = self.http.forwarded_from
        if trusted is not None:
            self._apply_forwarded(request, trusted)
        return request

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

    def on_message_complete(self) -> None:
        """llhttp: the whole request arrived: build the :class:`Request` and dispatch it
        (a request with a body was built with its head: its handler runs now)."""
        self._in_message = False
        upload = self._upload
        if upload is not None:
            self._upload = None
            if not upload.keep_alive or upload.request.answered:
                self._discard = True  # closes after this answer (answered before its body)
            upload.finish()
        else:
            parser = self._parser
            assert parser is not None
            request = self._make_request(parser)
            if not request.keep_alive:
                self._discard = True  # no request after "Connection: close" is read
            requests = self._requests
            requests.append(request)
            if len(requests) == 1:
                request._is_head = True  # nothing buffered yet: no flush needed
            elif self._unsafe_ahead():
                request._deferred = lambda: self._dispatch(request)
                return
            http = self.http
            http.counters.requests += 1
            dispatch(self, http.handlers, request)
        if len(self._requests) >= self.http.max_pipeline and not self._pipeline_paused:
            self._pipeline_paused = True
            self.pause_reading("pipeline")

    def _unsafe_ahead(self) -> bool:
        """True when a request before the newest one has an unsafe method and is not
        answered yet (RFC 9110 §9.2.1), or waits itself: the newest must wait (in order)."""
        return any(
            r._deferred is not None or (r.method not in _SAFE and not r.finished)
            for r in self._requests[:-1]
        )

    def _release_deferred(self) -> None:
        """Dispatch the requests that waited for unsafe ones now answered, in order (the
        queue is scanned again after each: a dispatch can answer and pop requests)."""
        while True:
            for request in self._requests:
                deferred = request._deferred
                if deferred is not None:
                    break
                if request.method not in _SAFE and not request.finished:
                    return
            else:
                return
            request._deferred = None
            self.resume_reading("order")
            deferred()

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
        self._linger = False

    @property
    def pending_requests(self) -> list[Request]:
        """The requests read and not yet answered, oldest first (the first one's response
        is the one being written)."""
        return self._requests

    # -- dispatch --------------------------------------------------------------------------

    def _enqueue(self, request: Request) -> None:
        self._requests.append(request)
        if len(self._requests) == 1:
            request._become_head()

    def _dispatch(self, request: Request) -> None:
        http = self.http
        http.counters.requests += 1
        dispatch(self, http.handlers, request)

    def run_handler(self, request: Request, handler: Handler) -> None:
        """Let ``handler`` answer ``request`` (:func:`medusa.http.dispatch.run_handler`):
        handlers that wrap others and decide later (after a check in a thread) call this."""
        run_handler(self, request, handler)

    def handler_failed(
        self, request: Request, handler: Any, exc: BaseException | None = None
    ) -> None:
        """Log a handler's exception and answer 500
        (:func:`medusa.http.dispatch.handler_failed`)."""
        handler_failed(self, request, handler, exc)

    def response_finished(self, request: Request) -> None:
        """Called by :meth:`Request.done` when the head-of-line response is complete:
        log it, then let the next pipelined responses out."""
        requests = self._requests
        if (
            len(requests) == 1
            and request.keep_alive
            and not self._pipeline_paused
            and not self._discard
        ):
            # The common case: one request at a time on a persistent connection.
            requests.pop()
            if self.http._log_enabled:
                self.http.log_access(request)
            return
        while requests and requests[0].finished:
            done = requests.pop(0)
            self.http.log_access(done)
            if not done.keep_alive:
                for dropped in requests:
                    dropped.close_pending()
                requests.clear()
                self._discard = True
                if self._linger:
                    self.push_with_producer(LingeringClose(self, self._read_after_half_close))
                else:
                    self.close_when_done()
                return
            if requests:
                requests[0]._become_head()
                upload = self._upload
                if upload is not None and upload.request is requests[0]:
                    upload.send_continue()  # if it was promised and is still awaited
        if not requests and self._discard and self._upload is None:
            # Every request read is answered and no other will be read (the client ended
            # its side, or the server stops), even if the last one's keep-alive was
            # restored after that was decided (a body dispatched late): close.
            self.close_when_done()
            return
        if requests:
            self._release_deferred()
        if self._pipeline_paused and len(requests) < self.http.max_pipeline // 2:
            self._pipeline_paused = False
            self.resume_reading("pipeline")

    def _reject(self, status: int, message: str) -> None:
        """Answer a request that cannot be parsed or exceeds a limit, then close."""
        self._discard = True
        self._in_head = False
        self.http.counters.errors += 1
        self._linger = True
        error_logger.info("%s: %d %s", peer_text(self.peer), status, printable(message))
        upload = self._upload
        if upload is not None:
            # Malformed body framing: the request being read gets the answer.
            self._upload = None
            upload.lost(f"malformed request body: {message}")
            if not upload.request.answered:
                upload.request.error(status, message)
            return
        # No usable request line: the access log shows "-" for it (method left empty).
        request = Request(
            self, "", "", "", "", "1.1", {}, False, self._head_started or time.monotonic()
        )
        self._enqueue(request)
        request.error(status, message)

    def _read_after_half_close(self) -> None:
        """The lingering close began: read (and discard) even if the pipeline paused it."""
        if self._pipeline_paused:
            self._pipeline_paused = False
            self.resume_reading("pipeline")

    def connection_lost(self, exc: Exception | None) -> None:
        """Release the buffered responses of requests that will never be answered, and
        abort a body being received."""
        upload = self._upload
        if upload is not None:
            self._upload = None
            upload.lost("connection closed before the whole body was received")
        for request in self._requests:
            request.close_pending()
        self._requests.clear()
        super().connection_lost(exc)
