"""The ``websocket`` scope of ASGI 3.0 (asgiref's specification, "WebSocket" section) over
medusa-http's upgraded connections, framed by wsproto (RFC 6455).

:func:`serve_websocket` is what :class:`~medusa.http.asgi.ASGIHandler` calls for a request
that asks for a WebSocket (:func:`wants_websocket`):

* **Handshake** (RFC 6455 §4.2): the request is checked
  (:func:`~medusa.http.websockethandshake.check_handshake`: 400, or 426 for a version
  other than 13) before the application sees it; then the application gets
  ``websocket.connect``. ``websocket.accept`` (``subprotocol``, ``headers``) answers 101
  and the connection is taken over (:meth:`HTTPChannel.take_over
  <medusa.http.channel.HTTPChannel.take_over>`); ``websocket.close`` before it answers
  403; the ``websocket.http.response`` extension answers with the application's own
  response. An application that raises (or returns) before answering gets 500, logged.
* **Messages**: text and binary both ways; fragments are joined and pings answered (by
  wsproto). A message over ``max_size`` bytes is refused with close 1009.
* **Close** (RFC 6455 §7): the client's close is answered and the application gets
  ``websocket.disconnect`` with its code (1005 when it gave none, 1006 when the
  connection dropped without one); the application's ``websocket.close`` (code and
  reason) is sent and the connection closes when the client answers it (or after
  :data:`~medusa.http.websocketsession.CLOSE_TIMEOUT` seconds). An application that
  raises after accepting closes with 1011, logged; one that returns closes with 1000.
  The server's graceful stop closes with 1001 ("going away").
* **Back-pressure**: the application's ``send`` waits while the transport's backlog is
  above its high-water mark; reading stops while
  :data:`~medusa.http.websocketsession.MAX_QUEUE` messages wait for the
  application's ``receive``.
* **Liveness**: a connection from which nothing arrived for ``ping_interval`` seconds is
  pinged; without an answer within as long again it closes with 1011. With no pings, the
  server's ``idle_timeout`` (seconds without traffic) closes it with 1001.

``send`` after the connection closed raises
:class:`~medusa.http.websocketsession.ClientDisconnectedError` (an :class:`OSError`, as the
specification asks). The session itself is :class:`~medusa.http.websocketsession.
WebSocketSession`; wsproto is needed only when a WebSocket is served (medusa-http's
``websocket`` extra).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from medusa.core.log import error_logger, peer_text, printable
from medusa.http.websockethandshake import HandshakeError, check_handshake, offered_subprotocols

if TYPE_CHECKING:
    from medusa.http.request import Request

__all__ = [
    "DEFAULT_MAX_SIZE",
    "DEFAULT_PING_INTERVAL",
    "ASGIApp",
    "require_wsproto",
    "serve_websocket",
    "wants_websocket",
]

ASGIApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[MutableMapping[str, Any]]],
        Callable[[MutableMapping[str, Any]], Awaitable[None]],
    ],
    Awaitable[None],
]
"""An ASGI 3.0 application: ``await app(scope, receive, send)``."""

DEFAULT_MAX_SIZE = 16 * 1024 * 1024
"""Bytes of one incoming WebSocket message at most (uvicorn's ``ws_max_size``)."""

DEFAULT_PING_INTERVAL = 20.0
"""Seconds of silence from the client before it is pinged (uvicorn's
``ws_ping_interval``)."""


_EXTENSIONS: dict[str, Any] = {"websocket.http.response": {}}
"""The extensions every WebSocket scope offers (one dict for all: nothing per
connection)."""


def require_wsproto() -> None:
    """Check that wsproto, which frames WebSockets, is importable (for a configuration
    check at startup).

    Raises:
        ImportError: with the install hint (``pip install 'medusa-http[websocket]'``).
    """
    try:
        import wsproto  # noqa: F401
    except ImportError:
        raise ImportError("WebSockets need wsproto: pip install 'medusa-http[websocket]'") from None


def wants_websocket(request: Request) -> bool:
    """True when ``request`` asks to switch to the WebSocket protocol (``Upgrade:
    websocket``, RFC 6455 §4.1): the ASGI handler then serves it with
    :func:`serve_websocket` instead of an ``http`` scope."""
    return "websocket" in request.headers.get("upgrade", "").lower()


async def serve_websocket(
    app: ASGIApp,
    request: Request,
    scope: dict[str, Any],
    *,
    max_size: int = DEFAULT_MAX_SIZE,
    ping_interval: float = DEFAULT_PING_INTERVAL,
) -> None:
    """Serve the WebSocket handshake ``request`` (RFC 6455 §4.2) to ``app``, then its
    messages until the application returns (see the module docstring for the rules).

    Args:
        app: the ASGI 3.0 application.
        request: the handshake request (``GET`` with ``Upgrade: websocket``).
        scope: the keys common to ``http`` and ``websocket`` scopes
            (:func:`medusa.http.asgiscope.base_scope`), a dict of this request's own:
            ``type`` (``"websocket"``), ``scheme`` (``"ws"``/``"wss"``), ``subprotocols``
            (a list of str, the client's order) and the ``websocket.http.response``
            extension are set in it.
        max_size: bytes of one incoming message at most (larger: close 1009).
        ping_interval: seconds of silence before the client is pinged (0: never).

    Returns when the application returned; the request is answered by then (the
    WebSocket itself may still be closing). Never raises for the application's errors
    (they are logged and answered).
    """
    channel = request.channel
    try:
        key = check_handshake(request.method, request.version, request.headers)
        if request.upgrade is None or channel.pending_requests != [request]:
            raise HandshakeError(400, "the connection cannot switch protocols here", [])
    except HandshakeError as exc:
        error_logger.info(
            "%s: %d WebSocket handshake refused: %s",
            peer_text(request.peer),
            exc.status,
            printable(str(exc)),
        )
        message = f"{exc}\n".encode()
        request.respond(exc.status, message, content_type="text/plain", headers=exc.headers)
        return
    try:
        from medusa.http.websocketsession import ClientDisconnectedError, WebSocketSession
    except ImportError:
        error_logger.error("WebSockets need wsproto: pip install 'medusa-http[websocket]'")
        request.error(501, "WebSockets are not available on this server.")
        return
    scope["type"] = "websocket"
    scope["scheme"] = "wss" if scope.get("scheme") in ("https", "wss") else "ws"
    scope["subprotocols"] = offered_subprotocols(request.headers)
    extensions = scope.get("extensions")
    scope["extensions"] = {**extensions, **_EXTENSIONS} if extensions else _EXTENSIONS
    session = WebSocketSession(request, key, max_size, ping_interval)
    try:
        await app(scope, session.receive, session.send)
    except ClientDisconnectedError:
        pass  # its send after the client left, let through: not the application's failure
    except Exception:
        channel.http.counters.errors += 1
        error_logger.error(
            "ASGI application %r failed on the WebSocket %s from %s",
            app,
            printable(request.target),
            peer_text(request.peer),
            exc_info=True,
        )
        session.end(1011)
        return
    if not request.answered:
        channel.http.counters.errors += 1
        error_logger.error(
            "ASGI application %r returned without accepting or closing the WebSocket %s from %s",
            app,
            printable(request.target),
            peer_text(request.peer),
        )
    session.end(1000)
