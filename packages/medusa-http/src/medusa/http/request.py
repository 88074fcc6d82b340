"""The HTTP request and its response, in the original Medusa's style.

A handler reads the request's attributes, then either calls :meth:`Request.respond` once,
or builds the response piece by piece (``request.status = 200``, :meth:`Request.set_header`,
:meth:`Request.push`, :meth:`Request.push_with_producer`) and calls :meth:`Request.done`.
It may do so later, from a callback or a coroutine: responses still leave the connection in
request order (pipelining, RFC 9112 §9.3.2).

Framing (RFC 9112 §6): a response whose length is known gets ``Content-Length``; otherwise an
HTTP/1.1 response is sent with ``Transfer-Encoding: chunked`` and an HTTP/1.0 one is ended by
closing the connection. HEAD responses carry the headers only (RFC 9110 §9.3.2).
"""

from __future__ import annotations

import html
import os
from collections.abc import Callable
from time import time
from typing import TYPE_CHECKING, Any, BinaryIO

from medusa.core.producers import ChunkedProducer, FileProducer, Producer
from medusa.http.framing import (
    LAST_CHUNK,
    LENGTH_FIELDS,
    NO_BODY_STATUSES,
    chunk,
    frame_head,
    length_field,
)
from medusa.http.handler import NOT_DONE_YET, NotDoneYet
from medusa.http.status import reason

if TYPE_CHECKING:
    from medusa.http.body import BodySink
    from medusa.http.channel import HTTPChannel
    from medusa.http.forwarded import ForwardedClient
    from medusa.http.handler import Handler

__all__ = ["Request"]


class Request:
    """One HTTP request and the response being built for it.

    Attributes:
        channel: the :class:`~medusa.http.channel.HTTPChannel` it arrived on.
        method: the method, upper case (``"GET"``).
        target: the request-target exactly as sent (``"/a%20b?x=1"``).
        path: the target's path, percent-decoded (``"/a b"``).
        query: the raw query string without ``?`` (``"x=1"``), ``""`` when none.
        version: ``"1.0"`` or ``"1.1"``.
        headers: request header fields, names lower-cased, repeated fields joined by
            ``", "`` (RFC 9110 §5.3).
        body: the request body (bytes; decoded from chunked framing if it was chunked),
            ``b""`` when it was streamed to a sink instead.
        body_sink: the :class:`~medusa.http.body.BodySink` the body was streamed to, when
            the handler asked for that (:mod:`medusa.http.body`), else ``None``.
        keep_alive: whether the connection stays open after this response.
        status: the response status code (default 200).
        user: the authenticated user name for the access log, or ``None``.
        handler: the handler that took the request, or ``None``.
        forwarded: what trusted proxies said about the client in ``Forwarded`` or
            ``X-Forwarded-For``/``X-Forwarded-Proto`` (a
            :class:`~medusa.http.forwarded.ForwardedClient`; only with the server's
            ``proxy_headers``, from a peer in ``proxy_trusted``), else ``None``.
    """

    # The attributes every request sets are slots; those most requests never change are
    # class-level defaults, stored on the instance (its __dict__) only when set: a request
    # is made for every one received, and each attribute set in __init__ costs.
    __slots__ = (
        "__dict__",
        "_out_headers",
        "bytes_out",
        "channel",
        "current",
        "finished",
        "handler",
        "headers",
        "headers_sent",
        "keep_alive",
        "method",
        "path",
        "query",
        "started",
        "status",
        "target",
        "user",
        "version",
    )

    body: bytes = b""
    body_sink: BodySink | None = None
    forwarded: ForwardedClient | None = None
    _chunked: bool = False
    _length: int | None = None
    _held: list[bytes | Producer] | None = None
    body_expected: bool = False
    """Set by the connection when the head announced a body (it arrives after the head)."""
    upgrade: bytes | None = None
    """Set by the connection when this request asks to switch protocols (``Upgrade`` with
    ``Connection: upgrade``, RFC 9110 §7.8) and nothing after its head was parsed: the
    bytes received after the head (usually ``b""``). A handler may answer 101 and take the
    connection over (:meth:`HTTPChannel.take_over <medusa.http.channel.HTTPChannel.
    take_over>`); any other answer closes the connection after it."""
    waiting: bool = False
    """Set by the connection (:mod:`medusa.http.connection`) while this request must wait
    for an unsafe one before it to be answered (RFC 9110 §9.2.1): not dispatched yet."""
    on_lost: Callable[[], object] | None = None
    """Called once if the connection closes before this response is finished (set by a
    handler that runs on, such as an ASGI application, to learn that its client left)."""

    def __init__(
        self,
        channel: HTTPChannel,
        method: str,
        target: str,
        path: str,
        query: str,
        version: str,
        headers: dict[str, str],
        keep_alive: bool,
        started: float,
    ) -> None:
        self.channel = channel
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.keep_alive = keep_alive
        self.started = started
        self.status = 200
        self.handler: Any = None
        self.bytes_out = 0
        self.headers_sent = False
        """True once the status line and headers were handed to the connection; read-only."""
        self.finished = False
        """True once the response is complete (:meth:`done`, :meth:`respond`); read-only."""
        self.current = False
        """Set by the connection when this request's response is the next on the wire
        (pipelining, RFC 9112 §9.3.2): its output goes out; until then it is held."""
        # Read for every response and every access line: slots, because a class-level
        # default not set on the instance is a slow attribute read (about 200 instructions).
        self.user: str | None = None
        self._out_headers: list[tuple[str, str]] | None = None

    # -- request side ----------------------------------------------------------------------

    def get_header(self, name: str, default: str | None = None) -> str | None:
        """Return a request header's value by case-insensitive ``name``, or ``default``."""
        return self.headers.get(name.lower(), default)

    @property
    def peer(self) -> Any:
        """The client's address: ``(host, port)`` for TCP, as the transport reports it, or
        as a trusted proxy gave it (a PROXY protocol header, or :attr:`forwarded` headers;
        port 0 when the headers gave none)."""
        forwarded = self.forwarded
        if forwarded is not None and forwarded.peer is not None:
            return forwarded.peer
        return self.channel.peer

    @property
    def scheme(self) -> str:
        """``"https"`` or ``"http"``: as the client used it according to trusted proxy
        headers (``X-Forwarded-Proto``, ``Forwarded: proto=``), else ``https`` on a TLS
        connection."""
        forwarded = self.forwarded
        if forwarded is not None and forwarded.scheme is not None:
            return forwarded.scheme
        return "https" if self.channel.http.ssl is not None else "http"

    @property
    def answered(self) -> bool:
        """True once the response was started or finished (nothing more may be decided)."""
        return self.headers_sent or self.finished

    @property
    def output_waits(self) -> bool:
        """True when this response cannot go to the socket now: a response before it on
        the connection is still unanswered or still being sent (pipelining). A handler
        then opens the files it sends only when their turn comes
        (:class:`~medusa.http.lazyfile.LazyFile`), so that waiting responses hold no
        descriptors."""
        return not self.current or self.channel.pending > 0

    def hand_to(self, handler: Handler) -> NotDoneYet:
        """Let ``handler`` answer this request now (its ``match`` is not asked), with the
        rules the server applies to the chain's handlers (a coroutine is awaited, an
        exception answers 500, returning without answering is an error: see
        :mod:`medusa.http.handler`). For handlers that wrap others (``auth``, ``vhost``, a
        user's own): ``return request.hand_to(inner)`` from ``handle_request``, or call it
        from a callback later.

        Returns:
            :data:`~medusa.http.handler.NOT_DONE_YET`, for the wrapper to return.
        """
        self.channel.run_handler(self, handler)
        return NOT_DONE_YET

    # -- response headers ------------------------------------------------------------------

    def set_header(self, name: str, value: str) -> None:
        """Set a response header field, replacing any of the same name.

        Raises:
            RuntimeError: when the headers were already sent.
            ValueError: when the name or value contains CR or LF (header injection).
        """
        self._check_header(name, value)
        lower = name.lower()
        fields = [(n, v) for n, v in self._out_headers or () if n.lower() != lower]
        fields.append((name, value))
        self._out_headers = fields

    def add_header(self, name: str, value: str) -> None:
        """Add a response header field (``Set-Cookie`` may repeat), keeping others.

        Raises:
            RuntimeError, ValueError: as :meth:`set_header`.
        """
        self._check_header(name, value)
        self._own_fields().append((name, value))

    def __setitem__(self, name: str, value: str) -> None:
        """``request["Content-Type"] = "text/html"``: the original's spelling of
        :meth:`set_header`."""
        self.set_header(name, value)

    def get_response_header(self, name: str) -> str | None:
        """Return a response header already set, by case-insensitive name, or None."""
        lower = name.lower()
        for n, v in self._out_headers or ():
            if n.lower() == lower:
                return v
        return None

    def _own_fields(self) -> list[tuple[str, str]]:
        """The response header fields set so far, a list of this request's own."""
        fields = self._out_headers
        if fields is None:
            fields = self._out_headers = []
        return fields

    def _check_header(self, name: str, value: str) -> None:
        if self.headers_sent:
            raise RuntimeError("response headers already sent")
        if "\r" in name or "\n" in name or ":" in name or "\r" in value or "\n" in value:
            raise ValueError(f"invalid header field {name!r}: {value!r}")

    # -- response body ---------------------------------------------------------------------

    def respond(
        self,
        status: int = 200,
        body: bytes = b"",
        *,
        content_type: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """Send a whole response at once and finish the request.

        Args:
            status: the status code.
            body: the whole body (omitted on the wire for HEAD, 204 and 304).
            content_type: the ``Content-Type`` value, if any.
            headers: further ``(name, value)`` fields.

        Raises:
            RuntimeError: when the response was already started.
        """
        if self.headers_sent or self.finished:
            raise RuntimeError("response already started")
        fields = b""
        if content_type is not None:
            fields = _TYPE_FIELDS.get(content_type) or _type_field(content_type)
        if headers:
            for name, value in headers:
                self._check_header(name, value)
                self._own_fields().append((name, value))
        self.respond_prepared(status, fields, body, len(body))

    def respond_prepared(self, status: int, fields: bytes, body: bytes, length: int) -> None:
        """Send a whole response whose header fields are already encoded, and finish.

        The fast path of handlers that cache responses (the file handler's small files).

        Args:
            status: the status code.
            fields: header lines, each ending in CRLF, of trusted origin (not checked for
                injection), without ``Content-Length`` or ``Connection``.
            body: the body bytes (dropped on the wire for HEAD, 204 and 304).
            length: the ``Content-Length`` to announce (``len(body)``, or for HEAD the
                length a GET would send).

        Raises:
            RuntimeError: when the response was already started.
        """
        if self.headers_sent or self.finished:
            raise RuntimeError("response already started")
        self.status = status
        if (
            self.current
            and self.keep_alive
            and self._out_headers is None
            and self.version == "1.1"
            and status >= 200
            and status != 204
            and status != 304
            and self.method != "HEAD"
        ):
            # The common case, in one write and with fewer calls: a persistent HTTP/1.1
            # response with a body, first in line, no header fields set one by one (framed
            # as medusa.http.framing.frame_head frames it).
            self.headers_sent = True
            channel = self.channel
            http = channel.http
            now = time()
            if http.head_prefixes_since <= now < http.head_prefixes_until:
                prefix = http.head_prefixes.get(status)
            else:
                prefix = None  # the second changed: head_prefix makes them anew
            channel.push(
                b"".join(
                    (
                        prefix or http.head_prefix(status),
                        fields,
                        LENGTH_FIELDS.get(length) or length_field(length),
                        body,
                    )
                )
            )
            self.bytes_out += len(body)
            self.finished = True
            channel.response_finished(self)
            return
        head = self._build_head(length, fields)
        if self.method == "HEAD" or status in NO_BODY_STATUSES or not body:
            self._write(head)
        else:
            self._write(head + body)
            self.bytes_out += len(body)
        self._finish()

    def error(self, status: int, message: str | None = None) -> None:
        """Send a small HTML error page for ``status`` and finish the request.

        Args:
            status: an error status code (4xx, 5xx).
            message: an optional sentence for the page (HTML-escaped here).
        """
        phrase = reason(status)
        text = f"<p>{html.escape(message)}</p>" if message else ""
        body = (
            f"<!DOCTYPE html>\n<html><head><title>{status} {phrase}</title></head>"
            f"<body><h1>{status} {phrase}</h1>{text}</body></html>\n"
        ).encode()
        if self.headers_sent:
            self.channel.abort()
            return
        self._out_headers = [
            (n, v) for n, v in self._out_headers or () if n.lower() in _KEEP_ON_ERROR
        ]
        self.respond(status, body, content_type="text/html; charset=utf-8")

    def redirect(self, target: str, status: int = 301) -> None:
        """Answer ``status`` with ``Location`` pointing at ``target`` on this same server
        (scheme from the connection or trusted proxy headers, :attr:`scheme`; host and port
        from the ``Host`` field, RFC 9110 §10.2.2; a relative reference when there is no
        usable ``Host``), and finish.

        Args:
            target: an absolute path, already percent-encoded, query included if any.
            status: a redirection status (301, 302, 307, 308).
        """
        host = self.headers.get("host")
        if host and "/" not in host and "\\" not in host:
            target = f"{self.scheme}://{host}{target}"
        self.set_header("Location", target)
        self.error(status)

    def set_length(self, length: int) -> None:
        """Declare the body's length in bytes before pushing it piecewise (sent as
        ``Content-Length``; otherwise chunked coding or a close ends the body)."""
        self._length = length

    def push(self, data: bytes) -> None:
        """Send part of the body (the headers go first, on the first call)."""
        if not self.headers_sent:
            self._write(self._build_head(self._length))
        if not data or self.method == "HEAD" or self.status in NO_BODY_STATUSES:
            return
        self.bytes_out += len(data)
        self._write(chunk(data) if self._chunked else data)

    def push_with_producer(self, producer: Producer) -> None:
        """Send part of the body from a producer, pulled as the client reads."""
        if not self.headers_sent:
            self._write(self._build_head(self._length))
        if self.method == "HEAD" or self.status in NO_BODY_STATUSES:
            close = getattr(producer, "close", None)
            if close is not None:
                close()
            return
        if self._chunked:
            producer = ChunkedProducer(producer, last_chunk=False)
        self._write(producer)

    def send_file(self, file: BinaryIO, offset: int = 0, count: int | None = None) -> None:
        """Send ``count`` bytes of an open file from ``offset`` (zero-copy where possible)
        as the rest of the body; the length is declared when no header was sent yet.

        Raises:
            OSError: when the file cannot be sized.
        """
        if count is None:
            count = max(os.fstat(file.fileno()).st_size - offset, 0)
        if not self.headers_sent:
            if self._length is None:
                self._length = count
            if self.current and count > 65536 and self.method != "HEAD":
                self.channel.cork()  # headers and file data share segments
        self.bytes_out += count
        self.push_with_producer(FileProducer(file, offset, count))

    def done(self) -> None:
        """Finish the response (idempotent). Sends the headers if nothing was pushed, the
        last chunk if chunked, and lets the next pipelined response go out."""
        if self.finished:
            return
        if not self.headers_sent:
            self._write(self._build_head(self._length if self._length is not None else 0))
        elif self._chunked:
            self._write(LAST_CHUNK)
        self._finish()

    def _finish(self) -> None:
        self.finished = True
        if self.current:
            self.channel.response_finished(self)

    # -- machinery -------------------------------------------------------------------------

    def _build_head(self, length: int | None, fields: bytes = b"") -> bytes:
        """Return the status line and header block (:func:`~medusa.http.framing.frame_head`
        chooses the framing: it may make the body chunked, or the connection close)."""
        self.headers_sent = True
        # Status line, Server and Date: preformatted once per second per status.
        prefix = self.channel.http.head_prefix(self.status)
        if self._out_headers:
            fields += "".join(f"{n}: {v}\r\n" for n, v in self._out_headers).encode("latin-1")
        head, self._chunked, self.keep_alive = frame_head(
            prefix, fields, self.status, self.method, self.version, self.keep_alive, length
        )
        return head

    def _write(self, data: bytes | Producer) -> None:
        if self.current:
            if type(data) is bytes:
                self.channel.push(data)
            else:
                self.channel.push_with_producer(data)  # type: ignore[arg-type]
        else:
            if self._held is None:
                self._held = []
            self._held.append(data)

    def release_output(self) -> None:
        """The connection made this request :attr:`current`: send what its response held
        while it waited for its turn."""
        held = self._held
        if held:
            self._held = None
            channel = self.channel
            for item in held:
                if isinstance(item, bytes):
                    channel.push(item)
                else:
                    channel.push_with_producer(item)

    def close_pending(self) -> None:
        """Release held producers (open files) of a response that will never be sent, and
        call :attr:`on_lost`."""
        for item in self._held or ():
            close = getattr(item, "close", None)
            if close is not None:
                close()
        self._held = None
        lost = self.on_lost
        if lost is not None:
            self.on_lost = None
            lost()

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.target} HTTP/{self.version}>"


_TYPE_FIELDS: dict[str, bytes] = {}
"""``Content-Type`` header lines by media type, for :meth:`Request.respond`."""

_FIELD_CACHE_MAX = 1024
"""Entries :data:`_TYPE_FIELDS` holds at most (past it, lines are made anew)."""


def _type_field(content_type: str) -> bytes:
    """The ``Content-Type`` header line of ``content_type``, cached.

    Raises:
        ValueError: for a value with CR or LF (header injection).
    """
    if "\r" in content_type or "\n" in content_type:
        raise ValueError(f"invalid Content-Type {content_type!r}")
    line = b"Content-Type: " + content_type.encode("latin-1") + b"\r\n"
    if len(_TYPE_FIELDS) < _FIELD_CACHE_MAX:
        _TYPE_FIELDS[content_type] = line
    return line


_KEEP_ON_ERROR = frozenset(
    {"www-authenticate", "allow", "retry-after", "content-range", "location", "vary"}
)
