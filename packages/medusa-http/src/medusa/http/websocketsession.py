"""One ASGI WebSocket (:mod:`medusa.http.asgiwebsocket` has the rules): the application's
``receive`` and ``send``, and the protocol that takes the connection over after 101
(:class:`~medusa.http.upgrade.UpgradedProtocol`), framing by wsproto (RFC 6455).

Imported only when a WebSocket is served: wsproto is medusa-http's ``websocket`` extra.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, TextMessage

from medusa.core.log import error_logger, peer_text, printable
from medusa.http.websockethandshake import accept_head

if TYPE_CHECKING:
    from medusa.http.request import Request

__all__ = ["CLOSE_TIMEOUT", "MAX_QUEUE", "ClientDisconnectedError", "WebSocketSession"]

MAX_QUEUE = 16
"""Messages received and not yet taken by the application's ``receive``: reading stops at
this many and resumes below half of it."""

CLOSE_TIMEOUT = 5.0
"""Seconds to wait for the client's answer to a close frame before closing anyway."""

_PAUSE = "websocket"
"""The reason given to :meth:`Channel.pause_reading` while messages wait."""

OPEN = ConnectionState.OPEN
CLOSED = ConnectionState.CLOSED
REMOTE_CLOSING = ConnectionState.REMOTE_CLOSING
_CLOSABLE = frozenset({OPEN, REMOTE_CLOSING})
"""States in which a close frame may still be sent."""
_READABLE = frozenset({OPEN, ConnectionState.LOCAL_CLOSING})
"""States in which frames from the client are still read."""


class ClientDisconnectedError(OSError):
    """Raised by the ``send`` of a WebSocket that is closed (the client left, or a close
    was sent): the specification asks for an :class:`OSError`."""


class WebSocketSession:
    """One WebSocket: the ASGI ``receive`` and ``send`` of its application, and the
    :class:`~medusa.http.upgrade.UpgradedProtocol` of its connection once accepted.

    Args:
        request: the handshake request.
        key: its ``Sec-WebSocket-Key``, checked.
        max_size: bytes of one incoming message at most.
        ping_interval: seconds of silence before a ping (0: never).

    Attributes:
        disconnect_code: the close code the application's ``receive`` reports once the
            WebSocket is closed (None while open).
    """

    __slots__ = (
        "channel",
        "close_sent_at",
        "connect_sent",
        "disconnect_code",
        "disconnect_reason",
        "drain",
        "inbox",
        "key",
        "max_size",
        "part_size",
        "parts",
        "ping_interval",
        "ping_sent_at",
        "received_at",
        "request",
        "stopping",
        "waiter",
        "ws",
    )

    def __init__(self, request: Request, key: str, max_size: int, ping_interval: float) -> None:
        self.request = request
        self.channel = request.channel
        self.key = key
        self.max_size = max_size
        self.ping_interval = ping_interval
        self.ws: Connection | None = None
        self.connect_sent = False
        # A list (at most MAX_QUEUE short): an empty deque costs about 600 bytes more.
        self.inbox: list[dict[str, Any]] = []
        self.waiter: asyncio.Future[None] | None = None
        self.drain: asyncio.Future[None] | None = None
        self.parts: list[Any] = []
        self.part_size = 0
        self.disconnect_code: int | None = None
        self.disconnect_reason = ""
        self.received_at = 0.0
        self.ping_sent_at = 0.0
        self.close_sent_at = 0.0
        self.stopping = False

    # -- the application's side ------------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        """ASGI ``receive``: ``websocket.connect`` first, then ``websocket.receive``
        messages (``text`` or ``bytes``), then ``websocket.disconnect`` (``code``,
        ``reason``) for every call once closed."""
        if not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        inbox = self.inbox
        while not inbox:
            if self.disconnect_code is not None:
                return {
                    "type": "websocket.disconnect",
                    "code": self.disconnect_code,
                    "reason": self.disconnect_reason,
                }
            waiter = self.waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self.waiter = None
        message = inbox.pop(0)
        if len(inbox) == MAX_QUEUE // 2:
            self.channel.resume_reading(_PAUSE)
        return message

    async def send(self, message: MutableMapping[str, Any]) -> None:
        """ASGI ``send``: ``websocket.accept``, ``websocket.close`` or the
        ``websocket.http.response.*`` messages before the handshake is answered;
        ``websocket.send`` and ``websocket.close`` after it.

        Raises:
            ClientDisconnectedError: the WebSocket is closed.
            RuntimeError: a message that is not allowed now (a wrong order).
            ValueError: a malformed accept (a header with CR or LF).
        """
        kind = message["type"]
        request = self.request
        ws = self.ws
        if ws is None:
            if kind == "websocket.accept" and not request.answered:
                self._accept(message)
            elif kind == "websocket.close" and not request.answered:
                request.error(403)  # asgiref: a close before accepting is an HTTP 403
                self._disconnect(message.get("code") or 1000, "")
            elif kind == "websocket.http.response.start" and not request.answered:
                request.status = int(message["status"])
                for name, value in message.get("headers") or ():
                    request.add_header(name.decode("latin-1"), value.decode("latin-1"))
                request.push(b"")  # the head goes out now
            elif kind == "websocket.http.response.body" and request.headers_sent:
                if request.finished:
                    raise RuntimeError("the WebSocket's HTTP response is already complete")
                request.push(message.get("body", b""))
                if not message.get("more_body", False):
                    request.done()
            elif self.disconnect_code is not None:
                raise ClientDisconnectedError("the WebSocket is closed")
            else:
                raise RuntimeError(f"unexpected ASGI message {kind!r} before the handshake")
            return
        channel = self.channel
        if self.disconnect_code is not None or channel.input_closed():
            # (a closing transport takes no more output: a send must not return at once
            # and let an application's loop of sends spin)
            raise ClientDisconnectedError("the WebSocket is closed")
        if kind == "websocket.send":
            data = message.get("bytes")
            text = message.get("text")
            if data is not None:
                event: Any = BytesMessage(data=data)
            elif text is not None:
                event = TextMessage(data=text)
            else:
                raise RuntimeError("websocket.send without bytes or text")
            while not channel.writable and self.disconnect_code is None:
                drain = self.drain
                if drain is None:
                    drain = self.drain = asyncio.get_running_loop().create_future()
                await drain
            if self.disconnect_code is not None or channel.input_closed():
                raise ClientDisconnectedError("the WebSocket is closed")
            channel.push(ws.send(event))
        elif kind == "websocket.close":
            self.close(message.get("code") or 1000, message.get("reason") or "")
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} on an open WebSocket")

    def _accept(self, message: MutableMapping[str, Any]) -> None:
        """Answer 101 and take the connection over."""
        channel = self.channel
        if channel.closing:
            self._disconnect(1006, "")
            raise ClientDisconnectedError("the client left before the WebSocket was accepted")
        head = accept_head(
            channel.http.head_prefix(101),
            self.key,
            message.get("subprotocol"),
            message.get("headers") or (),
        )
        ws = self.ws = Connection(ConnectionType.SERVER)
        rest = channel.take_over(self.request, head, self)
        self.received_at = time.monotonic()
        if rest:
            self.data_received(rest)
        if (self.stopping or channel.stopping) and ws.state is OPEN:
            self.close(1001, "server shutting down")

    def end(self, code: int) -> None:
        """The application is done (``code`` 1000) or failed (1011): answer a handshake
        left unanswered with 500, or close an open WebSocket with ``code``."""
        request = self.request
        if self.ws is None:
            if not request.answered:
                request.error(500)
            elif request.headers_sent and not request.finished:
                self.channel.abort()  # the extension's response was cut short
            return
        self.close(code, "")

    # -- closing ---------------------------------------------------------------------------

    def close(self, code: int, reason: str) -> None:
        """Send a close frame with ``code`` and ``reason`` (RFC 6455 §5.5.1) if the
        WebSocket is open, and report ``code`` to the application; the connection closes
        when the client answers, or after :data:`CLOSE_TIMEOUT` seconds."""
        ws = self.ws
        if ws is not None and ws.state in _CLOSABLE:
            remote_closing = ws.state is REMOTE_CLOSING
            self.channel.push(ws.send(CloseConnection(code=code, reason=reason)))
            self.close_sent_at = time.monotonic()
            if remote_closing:
                self.channel.close_when_done()
        self._disconnect(code, reason)

    def _disconnect(self, code: int, reason: str) -> None:
        """The WebSocket is closed: the application's ``receive`` reports ``code`` once
        the messages before it are taken, and its ``send`` raises."""
        if self.disconnect_code is None:
            self.disconnect_code = code
            self.disconnect_reason = reason
        for future in (self.waiter, self.drain):
            if future is not None and not future.done():
                future.set_result(None)
        self.drain = None

    # -- the connection's side (medusa.http.upgrade.UpgradedProtocol) ----------------------

    def data_received(self, data: bytes) -> None:
        """Frames from the client: messages go to the application's inbox, pings are
        answered, a close is answered and closes the connection."""
        ws = self.ws
        assert ws is not None
        self.received_at = time.monotonic()
        self.ping_sent_at = 0.0
        if ws.state not in _READABLE:
            return  # after the closing handshake: nothing more is read
        ws.receive_data(data)
        for event in ws.events():
            if isinstance(event, TextMessage | BytesMessage):
                if self.close_sent_at:
                    continue  # closing: the rest of what the client sends is dropped
                self._message_part(event.data, event.message_finished)
            elif isinstance(event, Ping):
                if ws.state is OPEN:
                    self.channel.push(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self._closed_by_client(event.code, event.reason or "")
                return

    def _message_part(self, data: str | bytes | bytearray, finished: bool) -> None:
        size = len(data) if not isinstance(data, str) or data.isascii() else len(data.encode())
        self.part_size += size
        if self.part_size > self.max_size:
            self.parts = []
            self.part_size = 0
            error_logger.info(
                "%s: WebSocket message over %d bytes refused (close 1009)",
                peer_text(self.request.peer),
                self.max_size,
            )
            self.close(1009, "message too big")
            return
        parts = self.parts
        parts.append(data)
        if not finished:
            return
        self.parts = []
        self.part_size = 0
        message: dict[str, Any]
        if isinstance(data, str):
            message = {"type": "websocket.receive", "text": "".join(parts)}
        else:
            message = {"type": "websocket.receive", "bytes": b"".join(parts)}
        inbox = self.inbox
        inbox.append(message)
        if len(inbox) == MAX_QUEUE:
            self.channel.pause_reading(_PAUSE)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _closed_by_client(self, code: int, reason: str) -> None:
        """A close frame from the client: the answer to ours (close the connection), its
        own (answer it, then close), or a protocol error wsproto found (``code`` 1002,
        1007...: send it, then close)."""
        ws = self.ws
        assert ws is not None
        state = ws.state
        channel = self.channel
        if state is CLOSED:  # it answered our close
            channel.close_when_done()
            return
        if state is OPEN:  # a protocol error: wsproto reports it as a close
            error_logger.info(
                "%s: WebSocket protocol error: %s (close %d)",
                peer_text(self.request.peer),
                printable(reason),
                code,
            )
        channel.push(ws.send(CloseConnection(code=code, reason=reason)))
        channel.close_when_done()
        self._disconnect(code, reason)

    def eof_received(self) -> None:
        """The client shut its side without a closing handshake: 1006."""
        self._disconnect(1006, "")
        self.channel.close()

    def connection_lost(self) -> None:
        """The connection is gone: 1006 for the application unless it was closed."""
        self._disconnect(1006, "")

    def writing_resumed(self) -> None:
        """The transport accepts more: a ``send`` waiting for it goes on."""
        drain = self.drain
        if drain is not None:
            self.drain = None
            if not drain.done():
                drain.set_result(None)

    def check_timeout(self, now: float) -> None:
        """The server's sweep: a close not answered within :data:`CLOSE_TIMEOUT`, the
        pings of ``ping_interval``, the server's ``idle_timeout``."""
        ws = self.ws
        if ws is None:
            return
        channel = self.channel
        if self.close_sent_at:
            if now - self.close_sent_at > CLOSE_TIMEOUT:
                channel.close()
            return
        if ws.state is not OPEN:
            return
        interval = self.ping_interval
        if interval:
            if self.ping_sent_at:
                if now - self.ping_sent_at > interval:
                    self.close(1011, "keepalive ping timeout")
                    channel.close()  # the client does not answer: no closing handshake
                return
            if now - self.received_at > interval:
                self.ping_sent_at = now
                channel.push(ws.send(Ping(payload=b"")))
                return
        idle = channel.idle_timeout
        if idle and now - channel.last_activity > idle:
            self.close(1001, "idle timeout")

    def shutdown(self) -> None:
        """The server stops: close with 1001 ("going away", RFC 6455 §7.4.1)."""
        self.stopping = True
        self.close(1001, "server shutting down")
