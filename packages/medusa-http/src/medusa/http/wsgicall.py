"""One call of a WSGI application (PEP 3333), from its thread to the connection.

:class:`WSGICall` runs in a thread of the handler's pool (:meth:`WSGICall.run`): it builds
the environ, calls the application with ``start_response``, iterates the response and
always calls its ``close()`` (at the normal end, on an error, and when the client left).
What the response produces goes to the event loop as items on the call's queue, delivered
by :meth:`WSGICall.deliver` through the handler's :class:`~medusa.http.wsgipool.LoopOutbox`:

* a response whose body is all known when it ends (a list or tuple up to
  :data:`OUTPUT_WINDOW` bytes, or an iterator that ended before the loop took its first
  piece) goes out whole, with one loop wake-up: head and body in one write, with a
  ``Content-Length`` the server computes when the application gave none;
* otherwise the head goes with the first non-empty piece (PEP 3333 "Buffering and
  Streaming"), each piece as it is produced, framed by the application's
  ``Content-Length`` or else chunked (HTTP/1.1) or ended by a close (HTTP/1.0);
* back-pressure: after every :data:`OUTPUT_WINDOW` bytes, the thread waits until the
  connection has taken them (a marker producer queued behind them is pulled only once
  everything before it was handed to the transport and its buffer is below the high-water
  mark). A slow client holds back its own thread, never the server's memory;
* a ``wsgi.file_wrapper`` around a regular file is sent with ``sendfile``
  (:mod:`medusa.http.wsgifile`), and its ``close()`` waits until the file was sent.

Errors: an exception before the response's head was sent gives a 500 and a logged
traceback (:func:`medusa.http.dispatch.handler_failed`); after it, the connection is cut
(the client sees an incomplete response) and the traceback logged. A response shorter than
its ``Content-Length`` is cut too; bytes beyond it are dropped, with a warning.
"""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

from medusa.core.log import peer_text, printable
from medusa.http.wsgienviron import build_environ, wsgi_logger
from medusa.http.wsgifile import FileWrapper, sendable_file
from medusa.http.wsgiheaders import ResponseHead, response_head
from medusa.http.wsgiinput import ClientDisconnectedError

if TYPE_CHECKING:
    from medusa.http.request import Request
    from medusa.http.wsgi import WSGIHandler
    from medusa.http.wsgiinput import WSGIInput

__all__ = ["OUTPUT_WINDOW", "WSGICall"]

OUTPUT_WINDOW: Final = 65536
"""Bytes a response's thread may hand to the loop before it waits for the connection."""

_END: Final = object()
"""Item: the response is complete."""
_ACK: Final = object()
"""Item: queue a marker producer; the thread waits until it is pulled."""

_NO_LENGTH_CHECK: Final = frozenset({204, 304})

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


class _Whole:
    """Item: a whole response (head and body)."""

    __slots__ = ("body", "head")

    def __init__(self, head: ResponseHead, body: bytes) -> None:
        self.head = head
        self.body = body


class _File:
    """Item: the rest of the body is ``count`` bytes of ``file`` from ``offset``."""

    __slots__ = ("count", "file", "offset")

    def __init__(self, file: Any, offset: int, count: int) -> None:
        self.file = file
        self.offset = offset
        self.count = count


class _Marker:
    """A producer that returns nothing: pulled (or closed) when the connection has taken
    everything queued before it, which lets the call's thread go on."""

    __slots__ = ("call",)

    def __init__(self, call: WSGICall) -> None:
        self.call = call

    def more(self) -> bytes:
        self.call.acknowledged(False)
        return b""

    def close(self) -> None:
        self.call.acknowledged(self.call.request.channel.input_closed())


class WSGICall:
    """One request's run through the application.

    Args:
        handler: the :class:`~medusa.http.wsgi.WSGIHandler` (application, prefix, outbox).
        request: the request.
        wsgi_input: its body stream, or None when it has no body.
    """

    __slots__ = (
        "_ack",
        "_posted",
        "done",
        "gone",
        "handler",
        "head",
        "head_posted",
        "input",
        "items",
        "request",
        "sent",
        "started",
        "unacked",
    )

    def __init__(self, handler: WSGIHandler, request: Request, wsgi_input: WSGIInput | None):
        self.handler = handler
        self.request = request
        self.input = wsgi_input
        self.items: deque[Any] = deque()
        self._posted = False
        self.gone = False
        """True once the client is known to be gone (or another answer was given)."""
        # The thread's side.
        self.head: ResponseHead | None = None
        self.head_posted = False
        self.sent = 0
        self.unacked = 0
        self._ack: threading.Event | None = None
        # The loop's side.
        self.started = False
        self.done = False

    # -- the application's thread ----------------------------------------------------------

    def run(self) -> None:
        """Call the application and hand its response to the loop (in a pool thread)."""
        result: Any = None
        try:
            environ = build_environ(
                self.request, self.handler.prefix, self.input, self.handler.constants
            )
            result = self.handler.app(environ, self.start_response)
            kind = type(result)
            if kind is list or kind is tuple:
                self._send_sequence(result)
            elif kind is FileWrapper and self._send_file(result):
                pass
            else:
                for data in result:
                    if data:
                        self.write(data)
            self._end()
        except BaseException as exc:
            self._fail(exc)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                try:
                    close()
                except Exception:
                    wsgi_logger.exception(
                        "WSGI application's close() failed on %s", self._describe()
                    )

    def start_response(
        self, status: str, headers: list[tuple[str, str]], exc_info: ExcInfo | None = None
    ) -> Any:
        """PEP 3333's ``start_response``: set the response's status and headers, checked
        (:mod:`medusa.http.wsgiheaders`); returns the ``write`` callable.

        Raises:
            AssertionError: when called again without ``exc_info``.
            WSGIHeadError: for a malformed status or header.
            BaseException: ``exc_info``'s exception, when the head was already sent.
        """
        if exc_info is not None:
            try:
                if self.head_posted:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None
        elif self.head is not None:
            raise AssertionError("start_response() called again without exc_info (PEP 3333)")
        self.head = response_head(status, headers)
        return self.write

    def write(self, data: bytes) -> None:
        """PEP 3333's ``write`` callable (and each piece of the response iterable): send
        ``data`` after the head; waits while the client is behind.

        Raises:
            AssertionError: before ``start_response``.
            TypeError: for anything but bytes.
            ClientDisconnectedError: when the client left.
        """
        head = self.head
        if head is None:
            raise AssertionError("response body before start_response() (PEP 3333)")
        if type(data) is not bytes:
            if not isinstance(data, bytes | bytearray | memoryview):
                raise TypeError(f"a WSGI response is bytes, not {type(data).__name__}")
            data = bytes(data)
        if self.gone:
            raise ClientDisconnectedError("the client closed the connection")
        if not data:
            return
        if head.length is not None:
            room = head.length - self.sent
            if len(data) > room:
                if room <= 0:
                    return  # past the length: dropped (logged when it was crossed)
                wsgi_logger.warning(
                    "WSGI application sent more than its Content-Length (%d) on %s: the rest "
                    "was dropped",
                    head.length,
                    self._describe(),
                )
                data = data[:room]
        items = self.items
        if not self.head_posted:
            self.head_posted = True
            items.append(head)
        items.append(data)
        self.sent += len(data)
        self.unacked += len(data)
        self._post()
        if self.unacked >= OUTPUT_WINDOW:
            self._wait_for_connection()

    def _send_sequence(self, parts: list[bytes] | tuple[bytes, ...]) -> None:
        """A list or tuple: sent whole when it is small and nothing went out yet."""
        head = self.head
        size = 0
        for data in parts:
            if type(data) is not bytes:
                break
            size += len(data)
        else:
            if head is not None and not self.head_posted and size <= OUTPUT_WINDOW:
                body = parts[0] if len(parts) == 1 else b"".join(parts)
                length = head.length
                if length is not None and length != size and self._checks_length(head):
                    if size < length:
                        raise ValueError(
                            f"the response has {size} bytes, its Content-Length says {length}"
                        )
                    self.write(body)  # logs and cuts the excess
                    return
                self.head_posted = True
                self.sent = size
                self.items.append(_Whole(head, body))
                self.items.append(_END)
                self._post()
                return
        for data in parts:
            if data:
                self.write(data)

    def _send_file(self, wrapper: FileWrapper) -> bool:
        """A ``wsgi.file_wrapper`` over a regular file: sendfile it and wait until it was
        sent (then the wrapper may close it). False when it is not such a file."""
        head = self.head
        found = sendable_file(wrapper)
        if head is None or found is None or self.head_posted or self.gone:
            return False
        file, offset, count = found
        if head.length is not None:
            count = min(count, head.length)
            if count < head.length and self._checks_length(head):
                return False  # let the length check of the ordinary path report it
        self.head_posted = True
        self.sent = count
        self.items.append(head)
        self.items.append(_File(file, offset, count))
        self._wait_for_connection()
        return True

    def _checks_length(self, head: ResponseHead) -> bool:
        return self.request.method != "HEAD" and head.status not in _NO_LENGTH_CHECK

    def _end(self) -> None:
        head = self.head
        if head is None:
            raise AssertionError("the application returned without calling start_response()")
        if self.gone:
            return
        if head.length is not None and self.sent < head.length and self._checks_length(head):
            raise ValueError(
                f"the response has {self.sent} bytes, its Content-Length says {head.length}"
            )
        items = self.items
        if not self.head_posted:
            self.head_posted = True
            items.append(head)
        items.append(_END)
        self._post()

    def _fail(self, exc: BaseException) -> None:
        if self.gone:
            wsgi_logger.info(
                "WSGI response to %s not completed: the client left (%s: %s)",
                self._describe(),
                type(exc).__name__,
                exc,
            )
            return
        self.items.append(exc)
        self._post()

    def _post(self) -> None:
        if not self._posted:
            self._posted = True
            if not self.handler.outbox.post(self.deliver):
                self.gone = True

    def _wait_for_connection(self) -> None:
        """Queue a marker behind what was sent and wait until the connection pulled it."""
        ack = self._ack
        if ack is None:
            ack = self._ack = threading.Event()
        ack.clear()
        self.items.append(_ACK)
        self._post()
        channel = self.request.channel
        while not ack.wait(1.0):
            if channel.input_closed():
                self.gone = True
                break
        self.unacked = 0
        if self.gone:
            raise ClientDisconnectedError("the client closed the connection")

    def acknowledged(self, gone: bool) -> None:
        """The marker was pulled (or released, ``gone``: the connection closed)."""
        if gone:
            self.gone = True
        ack = self._ack
        if ack is not None:
            ack.set()

    def _describe(self) -> str:
        request = self.request
        return (
            f"{printable(request.method)} {printable(request.target)} from "
            f"{peer_text(request.channel.peer)}"
        )

    # -- the event loop --------------------------------------------------------------------

    def deliver(self) -> None:
        """Carry out what the thread queued (on the loop)."""
        self._posted = False
        items = self.items
        if self.done:
            items.clear()
            return
        request = self.request
        if request.channel.input_closed() or (not self.started and request.answered):
            # The client left, or the request was answered otherwise (a body timeout).
            self.gone = True
            items.clear()
            self._finished()
            self.acknowledged(True)
            return
        if not items:
            return  # a spare wake-up: what it was for was delivered already
        if not self.started and items[-1] is _END and type(items[0]) is ResponseHead:
            # The whole response came at once (an iterator that ended quickly): one write.
            body = [item for item in items if type(item) is bytes]
            if len(body) == len(items) - 2:
                head = items[0]
                items.clear()
                self._start(head)
                data = body[0] if len(body) == 1 else b"".join(body)
                length = head.length
                request.respond_prepared(
                    head.status, head.fields, data, len(data) if length is None else length
                )
                self._finished()
                return
        while items:
            item = items.popleft()
            kind = type(item)
            if kind is bytes:
                request.push(item)
            elif kind is _Whole:
                items.clear()  # only the end follows
                head = item.head
                self._start(head)
                length = head.length
                request.respond_prepared(
                    head.status,
                    head.fields,
                    item.body,
                    len(item.body) if length is None else length,
                )
                self._finished()
                return
            elif item is _END:
                request.done()
                self._finished()
                return
            elif kind is ResponseHead:
                self._start(item)
                request.status = item.status
                for name, value in item.pairs:
                    request.add_header(name, value)
                if item.length is not None:
                    request.set_length(item.length)
            elif item is _ACK:
                request.push_with_producer(_Marker(self))
            elif kind is _File:
                request.send_file(item.file, item.offset, item.count)
                request.push_with_producer(_Marker(self))
                request.done()
                self._finished()
                return
            else:
                items.clear()
                self._finished()
                self.handler.failed(request, item)
                return

    def _start(self, head: ResponseHead) -> None:
        self.started = True
        if head.close:
            self.request.keep_alive = False
        wsgi_input = self.input
        if wsgi_input is not None:
            wsgi_input.finish()  # the rest of the body, if any, is no longer read

    def _finished(self) -> None:
        self.done = True
        wsgi_input = self.input
        if wsgi_input is not None:
            wsgi_input.release()
