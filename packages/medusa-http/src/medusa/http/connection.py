"""The HTTP/1.x connection as a state machine with no I/O: bytes in, events out; responses
in, bytes out. :class:`~medusa.http.channel.HTTPChannel` is the thin adapter between it
and the transport. httptools (llhttp) parses.

The events it returns are in :mod:`medusa.http.events`. The rules, all of them here:

* **Persistence** (RFC 9112 §9.3): HTTP/1.1 stays open unless ``Connection: close``;
  HTTP/1.0 only with ``Connection: keep-alive``. After a request that ends the connection,
  nothing more is read (:attr:`HTTPConnection.reading_done`); its response says
  ``Connection: close``.
* **Pipelining** (RFC 9112 §9.3.2): requests are handed out as they arrive; responses
  leave in request order. Only the oldest unanswered request is :attr:`current
  <medusa.http.request.Request.current>`: its output goes to the wire, later ones hold
  theirs until their turn. At ``max_pipeline`` requests queued, reading pauses
  (:data:`PAUSE_PIPELINE`); it resumes below half of it.
* **Order of effects** (RFC 9110 §9.2.1): a request after one with an unsafe method (not
  GET, HEAD, OPTIONS, TRACE) that is not answered yet waits (:attr:`~medusa.http.request.
  Request.waiting`) until it is; :meth:`HTTPConnection.response_complete` releases it.
* **Bodies** (RFC 9112 §6.3): ``Content-Length`` or ``Transfer-Encoding: chunked``; a
  request with a body is announced at its head (:class:`BodyStarted`), its bytes follow
  (:class:`BodyData`), then :data:`BODY_END`. Until its last byte is read its answer
  closes the connection (the rest would be taken for a request), gracefully
  (:attr:`HTTPConnection.linger`, RFC 9112 §9.6). Transfer-Encoding in HTTP/1.0 closes
  after the request (RFC 9112 §6.1).
* **Expect: 100-continue** (RFC 9110 §10.1.1): :data:`~medusa.http.events.CONTINUE` goes
  out only once the handler accepted the body and the request is current.
* **Response framing** (RFC 9112 §6): a known length gives ``Content-Length``; otherwise
  HTTP/1.1 uses ``Transfer-Encoding: chunked`` and HTTP/1.0 ends the body by closing.
  HEAD, 1xx, 204 and 304 responses carry no body (RFC 9110 §6.4.1).
* **Limits**, each answered with its status, then the connection closes: malformed 400,
  request-target over ``max_request_line`` 414, head over ``max_header_size`` or
  ``max_header_fields`` 431; the request line and the head's framing, ``Host`` and
  ``Expect`` are checked first (:mod:`medusa.http.requestline`,
  :mod:`medusa.http.headcheck`). Timeouts (408) are the adapter's: they need a clock.
* **Upgrade** (RFC 9110 §7.8): nothing is parsed after a request with ``Upgrade`` and
  ``Connection: upgrade`` (nor after CONNECT); the bytes that followed its head are its
  :attr:`~medusa.http.request.Request.upgrade`. Answered as a plain request, the
  connection closes after it; a handler may answer 101 and take the connection over
  (:mod:`medusa.http.upgrade`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Protocol

import httptools

from medusa.http.events import (
    BODY_END,
    PAUSE_PIPELINE,
    BodyData,
    BodyStarted,
    Completion,
    Event,
    ParserFailed,
    Rejected,
)
from medusa.http.headcheck import RequestRejectedError, body_length, check_fields
from medusa.http.request import Request
from medusa.http.requestline import METHOD_NAMES, split_request_line
from medusa.http.target import KNOWN_HOSTS

if TYPE_CHECKING:
    from medusa.core.stats import Counters

__all__ = ["ConnectionSettings", "HTTPConnection"]

_NO_HEADERS: Final[dict[str, str]] = {}

_NO_EVENTS: Final[list[Event]] = []
"""The connection's event list between reads, never appended to: events are appended only
while :meth:`HTTPConnection.receive_data` or :meth:`HTTPConnection.reject` runs, each with
a list of its own. An idle connection then keeps neither a list nor, through it, its last
request (its fields, headers and response state: about 0.9 KB)."""

_FIELD_NAMES: Final[dict[bytes, str]] = {
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

_SAFE: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
"""Methods that change nothing (RFC 9110 §9.2.1): a request after any other one waits."""


class ConnectionSettings(Protocol):
    """What the machine reads of its server: limits (bytes, counts) and counters."""

    max_request_line: int
    max_header_size: int
    max_header_fields: int
    max_head_bytes: int
    max_pipeline: int
    parser_keep_limit: int
    counters: Counters


class _StopParsingError(Exception):
    """Raised inside a parser callback when no further request is to be read."""


class HTTPConnection:
    """One HTTP/1.x connection's state, without I/O (see the module docstring's rules).

    Args:
        settings: the server's limits and counters (:class:`ConnectionSettings`).
        owner: what the adapter wants as each request's ``channel`` (opaque here).

    Attributes:
        requests: the requests read and not yet answered, oldest first; the first is the
            current one.
        reading_done: no request after the one being read is read (a close was decided).
        input_closed: nothing more is parsed at all (bytes received are discarded).
        linger: an answer now would leave unread bytes of a body: close gracefully.
        stopping: :meth:`stop` was called; the request being read is the last.
        in_head: a request head is partly read (the header timeout runs).
        in_message: a request is partly read.
        head_started: when the current head began (the ``now`` of that read, seconds).
        body_request: the request whose body is being read, or None.
    """

    __slots__ = (
        "big_read",
        "body_request",
        "events",
        "head_bytes",
        "head_started",
        "headers",
        "in_head",
        "in_message",
        "input_closed",
        "linger",
        "merged",
        "now",
        "owner",
        "parser",
        "pipeline_paused",
        "reading_done",
        "requests",
        "settings",
        "stopping",
        "url",
    )

    def __init__(self, settings: ConnectionSettings, owner: Any) -> None:
        self.settings = settings
        self.owner = owner
        # An idle connection holds little (see docs/architecture.md): the parser is made
        # when bytes arrive and dropped when the connection is idle again under load.
        self.parser: httptools.HttpRequestParser | None = None
        self.requests: list[Request] = []
        self.events: list[Event] = _NO_EVENTS
        self.url = b""
        self.headers: dict[str, str] = _NO_HEADERS
        self.head_bytes = 0
        self.big_read = False
        self.merged = 0
        self.in_head = False
        self.in_message = False
        self.head_started = 0.0
        self.now = 0.0
        self.reading_done = False
        self.input_closed = False
        self.linger = False
        self.stopping = False
        self.pipeline_paused = False
        self.body_request: Request | None = None

    # -- input -----------------------------------------------------------------------------

    def receive_data(self, data: bytes, now: float) -> list[Event]:
        """Parse ``data`` received at ``now`` (:func:`time.monotonic`, seconds) and return
        the events it completes, in order (an empty list when it completes none, or when
        :attr:`reading_done`). Never raises for bad input: that is a :class:`Rejected`."""
        if self.input_closed:
            return []
        self.now = now
        events = self.events = []
        self._feed(data)
        self.events = _NO_EVENTS
        return events

    def _feed(self, data: bytes) -> None:
        """Parse ``data``: the parser's callbacks and the limits append to :attr:`events`."""
        settings = self.settings
        if self.in_head:
            # A head that began in an earlier read: everything received since counts
            # against it (what it had then was counted exactly: _hold_partial_head). This
            # bounds what a client can make the parser hold; a head within one read is
            # bounded by the read, and its exact limits are checked when it is complete.
            self.head_bytes += len(data)
            if self.head_bytes > settings.max_head_bytes:
                if self.headers:
                    self._reject(431, "request header block too large")
                else:
                    self._reject(414, "request line too long")
                return
            self.big_read = self.head_bytes > settings.max_header_size
        else:
            self.big_read = len(data) > settings.max_header_size
        parser = self.parser
        if parser is None:
            parser = self.parser = httptools.HttpRequestParser(self)
        try:
            parser.feed_data(data)
            if self.in_message:
                if self.in_head:
                    self._hold_partial_head()
            elif settings.counters.active > settings.parser_keep_limit:
                # Many connections: an idle one keeps no parser (about 0.9 KB each), at
                # the price of making one (about 0.7 us) for its next request.
                self.parser = None
        except httptools.HttpParserUpgrade as exc:
            # A request asking to switch protocols (RFC 9110 §7.8): nothing after its head
            # is HTTP. Answered as a plain request it closes the connection; a handler may
            # instead answer 101 and take the connection over (medusa.http.upgrade).
            self._end_input()
            if self.requests:
                request = self.requests[-1]
                request.keep_alive = False
                request.upgrade = data[exc.args[0] :] if exc.args else b""
        except httptools.HttpParserCallbackError as exc:
            cause = exc.__context__ or exc.__cause__
            if isinstance(cause, RequestRejectedError):
                self._reject(cause.status, str(cause))
            elif not isinstance(cause, _StopParsingError):
                self._reject(500, "", cause)
        except httptools.HttpParserError as exc:
            if not self.reading_done:
                self._reject(400, f"malformed request: {exc}")
            # Else bytes after the connection's last request, in the same read (llhttp's
            # "Data after Connection: close"): discarded, as every later read is.

    def on_url(self, url: bytes) -> None:
        """llhttp: (part of) the request-target. Its first part begins the request (llhttp's
        ``on_message_begin`` is not asked for: a callback less per request; the method's
        bytes before it are a few at most, and a partial method holds nothing)."""
        if self.in_message:
            url = self.url = self.url + url
        else:
            if self.reading_done:
                raise _StopParsingError  # the rest of this read is discarded, as later ones
            self.in_head = True
            self.in_message = True
            self.head_started = self.now
            self.head_bytes = 0
            self.merged = 0
            self.headers = {}
            self.url = url
        if len(url) > self.settings.max_request_line:
            raise RequestRejectedError(414, "request-target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        """llhttp: one complete header field (its limits are checked when the head is
        complete, or at the end of a read that leaves it partial)."""
        key = _FIELD_NAMES.get(name) or name.decode("latin-1").lower()
        headers = self.headers
        if key in headers:
            self._merge_field(key, value.decode("latin-1"))
        else:
            headers[key] = value.decode("latin-1")

    def _merge_field(self, key: str, text: str) -> None:
        """A field repeated: joined to the first (RFC 9110 §5.3), but never ``Host``."""
        if key == "host":
            raise RequestRejectedError(400, "more than one Host field")  # RFC 9112 §3.2
        headers = self.headers
        headers[key] = f"{headers[key]}, {text}"
        self.merged += 1
        if len(headers) + self.merged > self.settings.max_header_fields:
            raise RequestRejectedError(431, "too many header fields")

    def _head_size(self) -> int:
        """The bytes of the head's fields so far (names, values, ``: `` and CRLF)."""
        return sum(len(k) + len(v) + 4 for k, v in self.headers.items())

    def _check_head(self) -> None:
        """The head's field count and size limits (431)."""
        settings = self.settings
        if len(self.headers) + self.merged > settings.max_header_fields:
            raise RequestRejectedError(431, "too many header fields")
        if self._head_size() > settings.max_header_size:
            raise RequestRejectedError(431, "request header block too large")

    def _hold_partial_head(self) -> None:
        """A read ended inside a head: check its limits now (a client must not make the
        parser hold more across reads), and count what it holds for the next read."""
        try:
            self._check_head()
        except RequestRejectedError as exc:
            self._reject(exc.status, str(exc))
            return
        self.head_bytes = len(self.url) + self._head_size()

    def on_headers_complete(self) -> None:
        """llhttp: the head is complete; a request with a body is announced now, so that its
        handler can refuse the body, or take it as a stream, before it is read."""
        self.in_head = False
        headers = self.headers
        if self.big_read or len(headers) + self.merged > self.settings.max_header_fields:
            self._check_head()  # (a head within reads smaller than the limit is within it)
        if (
            "content-length" not in headers
            and "transfer-encoding" not in headers
            and "expect" not in headers
            and headers.get("host") in KNOWN_HOSTS
        ):
            return  # no body, a Host seen valid before: both checks below would pass it
        parser = self.parser
        assert parser is not None
        size = body_length(headers)
        expect = check_fields(headers, parser.get_http_version)
        if size == 0:
            return
        request = self._make_request(parser)
        if size is None and request.version == "1.0":
            request.keep_alive = False  # Transfer-Encoding in HTTP/1.0 (RFC 9112 §6.1)
        self._enqueue(request)
        self._check_pipeline()
        self.linger = True  # an answer before the whole body was read closes gracefully
        self.body_request = request
        request.body_expected = True
        if not request.keep_alive:
            self.reading_done = True  # read this body, but no request after it
        request.waiting = len(self.requests) > 1 and self._unsafe_ahead()
        self.events.append(BodyStarted(request, size, expect and request.version == "1.1"))

    def on_body(self, body: bytes) -> None:
        """llhttp: a piece of the (de-chunked) body."""
        self.events.append(BodyData(body))

    def on_message_complete(self) -> None:
        """llhttp: the whole request arrived."""
        self.in_message = False
        if self.body_request is not None:
            self.body_request = None
            self.events.append(BODY_END)
            return
        parser = self.parser
        assert parser is not None
        request = self._make_request(parser)
        if not request.keep_alive:
            self.reading_done = True  # no request after "Connection: close" is read
        requests = self.requests
        requests.append(request)
        if len(requests) == 1:
            request.current = True
            self.events.append(request)
            return
        if self._unsafe_ahead():
            request.waiting = True  # no event: response_complete releases it
        else:
            self.events.append(request)
        self._check_pipeline()

    def _check_pipeline(self) -> None:
        """At :attr:`ConnectionSettings.max_pipeline` requests queued, announce
        :data:`PAUSE_PIPELINE` (once: reading resumes below half of it)."""
        if not self.pipeline_paused and len(self.requests) >= self.settings.max_pipeline:
            self.pipeline_paused = True
            self.events.append(PAUSE_PIPELINE)

    def _make_request(self, parser: httptools.HttpRequestParser) -> Request:
        headers = self.headers
        keep_alive = parser.should_keep_alive()
        # Persistent without a Connection field (RFC 9112 §9.3) is HTTP/1.1 alone of the
        # versions llhttp accepts (0.9, 1.0, 1.1, 2.0): get_http_version() formats a new
        # string, about 2,300 instructions, 5% of a small request's.
        version = "1.1" if keep_alive and "connection" not in headers else parser.get_http_version()
        url = self.url.decode("latin-1")
        self.url = b""
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
                headers["host"] = authority  # RFC 9112 §3.2.2
        request = Request(
            self.owner,
            name,
            url,
            path,
            query,
            version,
            headers,
            keep_alive and not self.stopping,
            self.head_started,
        )
        self.headers = _NO_HEADERS
        return request

    def _enqueue(self, request: Request) -> None:
        self.requests.append(request)
        if len(self.requests) == 1:
            request.current = True

    def _unsafe_ahead(self) -> bool:
        """True when a request before the newest one has an unsafe method and is not
        answered yet, or waits itself (RFC 9110 §9.2.1)."""
        return any(
            r.waiting or (r.method not in _SAFE and not r.finished) for r in self.requests[:-1]
        )

    def _reject(self, status: int, message: str, error: BaseException | None = None) -> None:
        """Announce the answer to a request that cannot be read; nothing more is read."""
        self._end_input()
        self.linger = True
        request = self.body_request
        if request is not None:
            self.body_request = None  # malformed body framing: its request gets the answer
        else:
            # No usable request line: the access log shows "-" for it (no method).
            request = Request(
                self.owner, "", "", "", "", "1.1", {}, False, self.head_started or self.now
            )
            self._enqueue(request)
        if status == 500:
            self.events.append(ParserFailed(request, error))
        else:
            self.events.append(Rejected(request, status, message))

    def reject(self, status: int, message: str) -> Rejected:
        """Stop reading because of a limit the adapter checks (a timeout: 408); return the
        event to answer, as :meth:`receive_data` would."""
        events = self.events = []
        self._reject(status, message)
        self.events = _NO_EVENTS
        event = events.pop()
        assert isinstance(event, Rejected)
        return event

    def body_read(self) -> None:
        """The current body was read whole and accepted: an answer needs no lingering close
        any more."""
        self.linger = False

    def abandon_body(self) -> None:
        """The body being read will not be read to its end (a timeout): nothing more is
        read, and the answer closes gracefully."""
        self._end_input()
        self.linger = True
        self.body_request = None

    def _end_input(self) -> None:
        """Nothing more is parsed: no request, no rest of one."""
        self.reading_done = self.input_closed = True
        self.in_head = self.in_message = False

    def stop(self) -> None:
        """The server stops: the request being read (if any) is the last one."""
        self.stopping = True

    def end_of_input(self) -> None:
        """The client half-closed (RFC 9112 §9.6): answer what was read, then close."""
        self.reading_done = True
        if self.requests:
            self.requests[-1].keep_alive = False

    # -- output ----------------------------------------------------------------------------

    def response_complete(self, request: Request) -> Completion | None:
        """``request``'s response is complete (:meth:`Request.done`): take it and the
        finished ones after it off the queue. Returns ``None`` in the common case (it was
        the only request, the connection stays, nothing else changes: the adapter logs
        it), else a :class:`Completion` saying what to do."""
        requests = self.requests
        if (
            len(requests) == 1
            and request.keep_alive
            and not self.pipeline_paused
            and not self.reading_done
        ):
            requests.pop()
            return None
        result = Completion()
        while requests and requests[0].finished:
            done = requests.pop(0)
            result.done.append(done)
            if not done.keep_alive:
                result.dropped = requests[:]
                requests.clear()
                self._end_input()
                self.body_request = None
                result.close = 2 if self.linger else 1
                return result
            if requests:
                head = requests[0]
                head.current = True
                result.current.append(head)
        if not requests and self.reading_done and self.body_request is None:
            # Every request read is answered and no other will be read (the client ended
            # its side, or the server stops), even if the last one's keep-alive was
            # restored after that was decided (a body dispatched late): close.
            result.close = 1
            return result
        if requests:
            self._release(result.released)
        if self.pipeline_paused and len(requests) < self.settings.max_pipeline // 2:
            self.pipeline_paused = False
            result.resume_pipeline = True
        return result

    def _release(self, released: list[Request]) -> None:
        """Requests waiting only for answered unsafe ones go, in order."""
        for request in self.requests:
            if request.waiting:
                request.waiting = False
                released.append(request)
            if request.method not in _SAFE and not request.finished:
                return  # it must be answered before anything after it runs

    def lingering(self) -> None:
        """The lingering close began: the pipeline's pause no longer applies."""
        self.pipeline_paused = False
