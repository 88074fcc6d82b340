"""The ``websocket`` scope of ASGI 3.0 (asgiref's specification, "WebSocket" section) over
medusa-http's upgraded connections, framed by wsproto (RFC 6455).

:func:`serve_websocket` is what :class:`~medusa.http.asgi.ASGIHandler` calls for a request
that asks for a WebSocket (:func:`wants_websocket`). This first version answers 501.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medusa.http.request import Request

__all__ = ["DEFAULT_MAX_SIZE", "ASGIApp", "serve_websocket", "wants_websocket"]

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
    ping_interval: float = 0.0,
) -> None:
    """Serve the WebSocket handshake ``request`` (RFC 6455 §4.2) to ``app``, then its
    messages until either side closes.

    Args:
        app: the ASGI 3.0 application.
        request: the handshake request (``GET`` with ``Upgrade: websocket``).
        scope: the keys common to ``http`` and ``websocket`` scopes
            (:func:`medusa.http.asgiscope.base_scope`); ``type``, ``scheme`` and
            ``subprotocols`` are set here.
        max_size: bytes of one incoming message at most (larger: close 1009).
        ping_interval: seconds between pings of an idle connection (0: none).

    Returns when the session is over; the request is answered by then.
    """
    request.error(501, "WebSockets are not served yet.")
