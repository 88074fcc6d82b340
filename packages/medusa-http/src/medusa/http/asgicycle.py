"""One HTTP request's run of an ASGI 3.0 application (asgiref's specification, "HTTP"
section) for :class:`~medusa.http.asgi.ASGIHandler`: :class:`HTTPCycle` builds the scope,
starts the application in a task of its own, streams the request body to ``receive()``
and turns what ``send()`` is given into the request's response (:mod:`medusa.http.asgi`
describes the behaviour: back-pressure, one write for a one-part response, ``pathsend``,
``http.disconnect``, errors); :func:`encode_fields` turns a response's header list into
header lines, remembering the lists it saw.
"""

from __future__ import annotations

import asyncio
import os
from asyncio import Task, get_running_loop
from collections.abc import Awaitable, Iterable
from typing import TYPE_CHECKING, Any

from medusa.core.log import error_logger, peer_text, printable
from medusa.http.asgiscope import base_scope

if TYPE_CHECKING:
    from medusa.http.asgi import ASGIHandler
    from medusa.http.request import Request

__all__ = [
    "READY_UNMADE",
    "TASK_NAME",
    "ClientDisconnectedError",
    "HTTPCycle",
    "ProtocolError",
    "channel_loop",
    "encode_fields",
]

TASK_NAME = "medusa.http.asgi request"
"""The name of every request's task (``Task.get_name()``)."""

_EXTENSIONS: dict[str, Any] = {"http.response.pathsend": {}}

# Response states of a cycle.
_START = 0  # waiting for http.response.start
_STARTED = 1  # start received, no body yet: the head is not written
_STREAMING = 2  # the head was written, more body parts are coming
_DONE = 3  # the last body part was sent (or a file)

_DISCONNECT = {"type": "http.disconnect"}


class _Finished:
    """Stands for a finished future until the handler's first request, on the running
    loop, makes one (a future needs a loop)."""

    def __await__(self) -> Any:
        return iter(())


READY_UNMADE: Any = _Finished()
""":attr:`ASGIHandler.ready <medusa.http.asgi.ASGIHandler.ready>` until the handler's
first request makes it (:meth:`HTTPCycle.run`)."""


class ClientDisconnectedError(OSError):
    """``send()`` was called after the client closed the connection (ASGI HTTP spec 2.4:
    an :class:`OSError`); an application that lets it propagate is not logged as
    failing."""


class ProtocolError(RuntimeError):
    """The application sent a message the ASGI HTTP protocol does not allow now (its type
    unknown, a body before ``http.response.start``, anything after the last body, a
    malformed header, more bytes than its ``Content-Length``)."""


class _Wakeup:
    """A producer that produces nothing: queued behind a response's output, it tells the
    waiting ``send()`` (a future) that the output before it went to the transport and the
    transport accepts more; closed unsent (the connection went away, a HEAD), it tells it
    too."""

    __slots__ = ("future",)

    def __init__(self, future: asyncio.Future[None]) -> None:
        self.future = future

    def more(self) -> bytes:
        if not self.future.done():
            self.future.set_result(None)
        return b""

    def close(self) -> None:
        self.more()


class HTTPCycle:
    """One request's run of the application: its ``receive`` and ``send``, and the sink
    of its body (``write``/``abort``, :class:`~medusa.http.body.BodySink`).

    Args:
        handler: the :class:`ASGIHandler`.
        request: the request.
        body_done: True when the request has no body to stream (the first ``receive``
            gives an empty last ``http.request``).
    """

    # Set for every request: slots (``status`` and ``headers`` by http.response.start, read
    # only after it). The rest are class defaults, stored in the instance's dict only when
    # set (most requests never change them, and never make the dict).
    __slots__ = ("__dict__", "body_done", "handler", "headers", "request", "state", "status")

    body_given = False
    chunks: list[bytes] | None = None
    disconnected = False
    paused = False
    waiter: asyncio.Future[None] | None = None
    length: int | None = None
    sent = 0
    status: int
    headers: Iterable[Any]

    def __init__(self, handler: ASGIHandler, request: Request, body_done: bool) -> None:
        self.handler = handler
        self.request = request
        self.body_done = body_done
        self.state = _START

    def run(self) -> None:
        """Build the scope and start the application: a task of its own (so that
        ``asyncio.current_task()`` in the application is the request's, as anyio needs),
        which finishes the request when the application returns or fails (:meth:`_main`).

        The task is made as the loop's ``create_task`` makes it, but named
        :data:`TASK_NAME` (Python 3.11 formats a ``Task-N`` name for every unnamed task);
        a loop with a task factory gets its task from the factory."""
        handler = self.handler
        handler.requests += 1
        request = self.request
        loop = channel_loop(request.channel)
        if handler.ready is READY_UNMADE:
            ready = handler.ready = loop.create_future()
            ready.set_result(None)
        scope = base_scope(request, root_path=handler.prefix, state=handler.state)
        scope["extensions"] = _EXTENSIONS
        main = self._main(handler.app(scope, self.receive, self.send))
        # No reference is kept (it would make a cycle through the coroutine): the loop
        # holds the task while it is ready to run, and a future it awaits holds it meanwhile.
        if loop.get_task_factory() is None:
            Task(main, loop=loop, name=TASK_NAME)
        else:
            loop.create_task(main, name=TASK_NAME)

    # -- the request body (the sink) -------------------------------------------------------

    def write(self, data: bytes) -> None:
        """A piece of the body arrived: hand it to a waiting ``receive()``, else keep it
        and pause reading until the application asks."""
        chunks = self.chunks
        if chunks is None:
            self.chunks = [data]
        else:
            chunks.append(data)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)
        elif not self.paused:
            self.paused = True
            self.request.channel.pause_reading("asgi")

    def abort(self, reason: str) -> None:
        """The body will never be complete (the connection closed, a timeout, malformed
        framing): the application's ``receive()`` gives ``http.disconnect``."""
        self.lost()

    def body_complete(self) -> None:
        """The last byte of the body arrived."""
        self.body_done = True
        self._wake()
        self._resume()

    def lost(self) -> None:
        """The client left before the response was finished."""
        self.disconnected = True
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _resume(self) -> None:
        if self.paused:
            self.paused = False
            channel = self.request.channel
            if not channel.closing:
                channel.resume_reading("asgi")

    async def receive(self) -> dict[str, Any]:
        """The application's ``receive``: the next ``http.request`` (the body pieces
        received since, joined), or ``http.disconnect`` once the client left or the
        response is finished."""
        while True:
            chunks = self.chunks
            if chunks:
                self.chunks = None
                data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
                if self.body_done:
                    self.body_given = True
                else:
                    self._resume()
                return {"type": "http.request", "body": data, "more_body": not self.body_done}
            if self.body_done and not self.body_given:
                self.body_given = True
                return {"type": "http.request", "body": b"", "more_body": False}
            request = self.request
            if (
                self.disconnected
                or self.state == _DONE
                or request.channel.closing
                or (request.headers_sent and not self.body_done)
            ):
                # (Once the response has begun, the rest of a body still arriving is not
                # read: the connection closes after the response.)
                return _DISCONNECT.copy()
            if request.on_lost is None:
                request.on_lost = self.lost  # to wake this waiter if the client leaves
            self._resume()
            waiter = self.waiter = channel_loop(request.channel).create_future()
            try:
                await waiter
            finally:
                if self.waiter is waiter:
                    self.waiter = None

    # -- the response ----------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> Awaitable[None]:
        """The application's ``send``: ``http.response.start``, ``http.response.body``,
        ``http.response.pathsend``. A plain function returning what the application awaits:
        a finished future when the message was taken at once (no coroutine to make), a
        coroutine when it must wait for the client (flow control).

        Raises:
            ClientDisconnectedError: after the client left.
            ProtocolError: for a message not allowed now, or malformed.
        """
        kind = message["type"]
        state = self.state
        if kind == "http.response.body":
            if self.disconnected:
                raise ClientDisconnectedError("the client closed the connection")
            if state == _STARTED:
                body = message.get("body", b"")
                if not message.get("more_body", False):
                    self._respond(body)
                    return self.handler.ready
                self._start_stream()
            elif state != _STREAMING:
                raise ProtocolError(_order_error(kind, state))
            else:
                body = message.get("body", b"")
            return self._push(body, message.get("more_body", False))
        if kind == "http.response.start":
            if state != _START:
                raise ProtocolError(_order_error(kind, state))
            if self.disconnected:
                raise ClientDisconnectedError("the client closed the connection")
            self.status = message["status"]
            self.headers = message.get("headers", ())
            self.state = _STARTED
            return self.handler.ready
        if kind == "http.response.pathsend":
            if state != _STARTED:
                raise ProtocolError(_order_error(kind, state))
            if self.disconnected:
                raise ClientDisconnectedError("the client closed the connection")
            self._send_path(message["path"])
            return self.handler.ready
        raise ProtocolError(f"unknown message type {kind!r} for an http scope")

    def _respond(self, body: bytes) -> None:
        """The whole response at once: head and body in one write."""
        fields, length, close = encode_fields(self.headers)
        request = self.request
        if length is None:
            length = len(body)
        elif length != len(body) and request.method != "HEAD":
            raise ProtocolError(f"Content-Length {length} but a body of {len(body)} bytes")
        if close:
            request.keep_alive = False
        self.state = _DONE
        request.respond_prepared(self.status, fields, body, length)
        self._resume()

    def _start_stream(self) -> None:
        """The head of a response whose body comes in parts."""
        length = self._head()
        if length is not None:
            self.request.set_length(length)
            self.length = length
        self.state = _STREAMING

    def _head(self) -> int | None:
        """Put the application's status and header fields on the request (for a response
        sent in parts); return its ``Content-Length``, if any."""
        request = self.request
        request.status = self.status
        fields, length, close = encode_fields(self.headers)
        if close:
            request.keep_alive = False
        for line in fields.split(b"\r\n")[:-1]:
            name, _, value = line.partition(b": ")
            request.add_header(name.decode("latin-1"), value.decode("latin-1"))
        return length

    def _push(self, body: bytes, more: bool) -> Awaitable[None]:
        request = self.request
        if body:
            self.sent += len(body)
            if self.length is not None and self.sent > self.length:
                raise ProtocolError(f"more body than its Content-Length {self.length}")
            request.push(body)
        transport = request.channel.transport
        if transport is None or transport.is_closing():
            # The write failed (the client left): its connection_lost comes from the loop,
            # which an application sending in a loop would never let run.
            self.disconnected = True
            raise ClientDisconnectedError("the client closed the connection")
        if not more:
            self.state = _DONE
            if self.length is not None and self.sent < self.length and request.method != "HEAD":
                raise ProtocolError(
                    f"the body ended after {self.sent} of its Content-Length {self.length} bytes"
                )
            request.done()
            self._resume()
            return self.handler.ready
        if request.output_waits or not request.channel.writable:
            future: asyncio.Future[None] = channel_loop(request.channel).create_future()
            request.push_with_producer(_Wakeup(future))
            return self._drain(future)
        return self.handler.ready

    async def _drain(self, future: asyncio.Future[None]) -> None:
        """Wait until the output queued before ``future``'s wake-up went out."""
        await future
        if self.disconnected or self.request.channel.closing:
            self.disconnected = True
            raise ClientDisconnectedError("the client closed the connection")

    def _send_path(self, path: str) -> None:
        """``http.response.pathsend``: the file at ``path`` as the body, with
        ``sendfile``."""
        file = open(path, "rb")  # noqa: SIM115 (the channel's producer closes it)
        try:
            size = os.fstat(file.fileno()).st_size
            request = self.request
            self._head()
            request.set_length(size)
        except BaseException:
            file.close()
            raise
        self.state = _DONE
        request.send_file(file, 0, size)
        request.done()
        self._resume()

    async def _main(self, call: Awaitable[None]) -> None:
        """Await the application's call, then finish the request: a logged 500 (or a cut
        connection) for an exception or a response left unfinished."""
        try:
            await call
        except Exception as exc:
            self._finished(exc)
        except asyncio.CancelledError:
            self._cancelled()
        else:
            if self.state != _DONE:
                self._finished(None)

    def _cancelled(self) -> None:
        request = self.request
        if request.on_lost is not None:
            request.on_lost = None
        self._resume()
        if not request.finished:
            if request.headers_sent:
                request.channel.abort()
            else:
                request.error(503)

    def _finished(self, exc: Exception | None) -> None:
        request = self.request
        if request.on_lost is not None:
            request.on_lost = None
        self._resume()
        handler = self.handler
        channel = request.channel
        if exc is not None:
            if isinstance(exc, ClientDisconnectedError) and self.disconnected:
                return
            handler.errors += 1
            channel.handler_failed(request, handler, exc)
            return
        if self.disconnected or channel.closing:
            return
        handler.errors += 1
        channel.http.counters.errors += 1
        error_logger.error(
            "ASGI application %s returned without %s response to %s %s from %s",
            handler.name,
            "finishing its" if self.state == _STREAMING else "sending a",
            printable(request.method),
            printable(request.target),
            peer_text(channel.peer),
        )
        if request.headers_sent:
            channel.abort()
        elif not request.finished:
            request.error(500)


def channel_loop(channel: Any) -> asyncio.AbstractEventLoop:
    """The event loop ``channel`` (a connection) runs on: asked once per connection, and
    kept in the channel's dict (Python 3.11's ``asyncio.get_running_loop()`` makes a
    ``getpid`` system call each time, to notice a fork).

    Raises:
        RuntimeError: when called outside a running loop (the first time).
    """
    loop: asyncio.AbstractEventLoop | None = channel.__dict__.get(_LOOP)
    if loop is None:
        loop = channel.__dict__[_LOOP] = get_running_loop()
    return loop


_LOOP = "asgi_loop"


def encode_fields(headers: Iterable[Any]) -> tuple[bytes, int | None, bool]:
    """Encode an ASGI response's ``headers`` (``(name, value)`` byte pairs) as header lines
    for :meth:`~medusa.http.request.Request.respond_prepared`.

    ``Content-Length`` is taken out and returned (the server frames the body, RFC 9112
    §6), as are ``Transfer-Encoding`` (dropped: the server chooses the coding) and
    ``Connection`` (``close`` is returned as True; other options are dropped, RFC 9110
    §7.6.1: they concern this hop).

    The result for a list of hashable pairs is remembered (up to :data:`FIELDS_CACHE_SIZE`
    lists of at most :data:`FIELDS_CACHE_BYTES` bytes each, the cache emptied when full):
    most applications send the same few header lists again and again, and looking one up
    costs a fraction of encoding and checking it.

    Returns:
        ``(lines, content_length, close)``: the lines, each ending in CRLF; the declared
        length or None; whether the application asked to close the connection.

    Raises:
        ProtocolError: for a name or value with CR, LF or NUL (which would split the
            response), an empty name, a malformed ``Content-Length``, or a non-bytes item.
    """
    try:
        key = tuple(headers)
        found = _FIELDS.get(key)
    except TypeError:  # not iterable, or an unhashable pair (a list): not remembered
        return _encode(headers)[:3]
    if found is None:
        lines, length, close, size = _encode(key)
        found = (lines, length, close)
        if size <= FIELDS_CACHE_BYTES:
            if len(_FIELDS) >= FIELDS_CACHE_SIZE:
                _FIELDS.clear()
            _FIELDS[key] = found
    return found


FIELDS_CACHE_SIZE = 256
"""Header lists whose encoding :func:`encode_fields` remembers, at most."""

FIELDS_CACHE_BYTES = 4096
"""The bytes of names and values of a header list that :func:`encode_fields` remembers,
at most."""

_FIELDS: dict[tuple[Any, ...], tuple[bytes, int | None, bool]] = {}


def _encode(headers: Iterable[Any]) -> tuple[bytes, int | None, bool, int]:
    """:func:`encode_fields`'s work, and the bytes of the names and values it read."""
    parts: list[bytes] = []
    length: int | None = None
    close = False
    count = 0
    dropped = 0
    try:
        for name, value in headers:
            lower = name.lower()
            if lower == b"content-length":
                if not value.isdigit() or not value.isascii() or len(value) > 18:
                    raise ProtocolError(f"malformed Content-Length {value!r}")
                length = int(value)
                dropped += 32
            elif lower == b"connection":
                close = close or b"close" in value.lower()
                dropped += len(name) + len(value)
            elif lower == b"transfer-encoding":
                dropped += len(name) + len(value)
            elif not name:
                raise ProtocolError("an empty header name")
            else:
                parts += (name, b": ", value, b"\r\n")
                count += 1
        lines = b"".join(parts)
    except (TypeError, ValueError, AttributeError) as exc:
        if isinstance(exc, ProtocolError):
            raise
        raise ProtocolError(f"headers must be (bytes, bytes) pairs: {exc}") from None
    if lines.count(b"\n") != count or lines.count(b"\r") != count or b"\0" in lines:
        raise ProtocolError("a header name or value contains CR, LF or NUL")
    return lines, length, close, len(lines) + dropped


def _order_error(kind: str, state: int) -> str:
    if state == _START:
        return f"{kind} before http.response.start"
    if state == _DONE:
        return f"{kind} after the response was finished"
    return f"{kind} after http.response.start"
