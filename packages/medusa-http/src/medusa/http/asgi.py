"""ASGI 3.0 applications (asgiref's specification, "HTTP" section) served by medusa-http:
:class:`ASGIHandler`, a handler of the chain (:mod:`medusa.http.handler`) that runs one
application call per request and turns its messages into the request's response.

* The request body (RFC 9112 §6) is streamed through ``receive()`` as it arrives, with
  back-pressure: reading from the client pauses while the application has pieces it did
  not ask for yet, and the body timeouts do not run meanwhile (the server holds it back).
* ``send()`` of a body part with ``more_body`` waits while the connection's output is
  above its high-water mark (or the response waits for its turn behind pipelined ones), so
  a slow client never makes the server hold a whole streamed response.
* A response whose first body message is its last (``more_body`` false) leaves in one
  write, head and body together, with ``Content-Length``; a streamed one has the
  application's ``Content-Length`` or is chunked (HTTP/1.1; HTTP/1.0: ended by a close).
* ``http.response.pathsend`` (the extension offered in ``scope["extensions"]``) sends the
  named file with the channel's zero-copy ``sendfile``.
* ``http.disconnect``: ``receive()`` returns it once the client left (or once the response
  is finished); ``send()`` after the client left raises :class:`ClientDisconnectedError` (an
  :class:`OSError`, spec 2.4).
* Errors: an exception before the response started gives a 500 and a logged traceback;
  after it started, the connection is closed (the client sees the response cut short). A
  message out of order (a body before ``http.response.start``, anything after the last
  body) raises :class:`ProtocolError` in the application, with the same outcome. An
  application that returns without finishing its response is logged and answered 500 (or
  cut). An application that blocks the event loop (``time.sleep``, blocking I/O) stops the
  whole server while it does: that is the application's fault, as under any ASGI server.

A request with ``Upgrade: websocket`` (RFC 6455 §4.1) goes to
:func:`medusa.http.asgiwebsocket.serve_websocket`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from medusa.http.asgicycle import (
    READY_UNMADE,
    TASK_NAME,
    ClientDisconnectedError,
    HTTPCycle,
    ProtocolError,
)
from medusa.http.asgiscope import base_scope
from medusa.http.asgiwebsocket import DEFAULT_MAX_SIZE, DEFAULT_PING_INTERVAL
from medusa.http.handler import NOT_DONE_YET, NotDoneYet
from medusa.http.lifespan import Lifespan

if TYPE_CHECKING:
    from medusa.http.request import Request

# What an application may meet (its task's name, the exceptions its send() raises) is
# here too, beside the handler.
__all__ = ["TASK_NAME", "ASGIHandler", "ClientDisconnectedError", "ProtocolError"]


class ASGIHandler:
    """Serve an ASGI 3.0 application mounted at ``prefix``.

    Args:
        app: the application, ``async app(scope, receive, send)``.
        prefix: the URL path it is mounted at (``""`` for ``/``, else ``"/api"``, no
            trailing slash): it takes that path and those below it, and the scope's
            ``root_path`` is the prefix.
        state: the lifespan state the application fills at startup (a new dict when
            ``None``); each request's scope has a shallow copy of it.
        name: how log lines and the status page name the application (its spec,
            ``main:app``); ``repr(app)`` by default.
        lifespan: run the ``lifespan`` scope at the server's start and stop
            (:mod:`medusa.http.lifespan`).
        ws_max_size: bytes of one incoming WebSocket message at most (larger: close 1009;
            :mod:`medusa.http.asgiwebsocket`).
        ws_ping_interval: seconds of silence from a WebSocket client before it is pinged
            (0: never).

    Attributes:
        requests: requests handed to the application.
        errors: requests the application failed (an exception, no response).

    Raises:
        ValueError: for a prefix not starting with ``/``.
    """

    def __init__(
        self,
        app: Callable[..., Any],
        *,
        prefix: str = "",
        state: dict[str, Any] | None = None,
        name: str | None = None,
        lifespan: bool = True,
        ws_max_size: int = DEFAULT_MAX_SIZE,
        ws_ping_interval: float = DEFAULT_PING_INTERVAL,
    ) -> None:
        prefix = prefix.rstrip("/")
        if prefix and not prefix.startswith("/"):
            raise ValueError(f"prefix must start with '/': {prefix!r}")
        self.app = app
        self.prefix = prefix
        self.state: dict[str, Any] = {} if state is None else state
        self.name = name or repr(app)
        self.lifespan = Lifespan(app, self.state, self.name) if lifespan else None
        self.requests = 0
        self.errors = 0
        self.ready: asyncio.Future[None] = READY_UNMADE
        """A finished future: what ``send`` returns when it took a message at once."""
        self.ws_max_size = ws_max_size
        self.ws_ping_interval = ws_ping_interval

    def __repr__(self) -> str:
        return (
            f"<ASGI application {self.name} at {self.prefix or '/'} ({self.requests} requests,"
            f" {self.errors} errors)>"
        )

    def status_counters(self) -> dict[str, int]:
        """The status page's row for this application: requests handed to it (WebSocket
        sessions included) and those it failed."""
        return {"requests": self.requests, "errors": self.errors}

    def match(self, request: Request) -> bool:
        """Take requests whose path is the prefix or below it (all of them at ``/``)."""
        prefix = self.prefix
        if not prefix:
            return True
        path = request.path
        return path == prefix or path.startswith(prefix + "/")

    def receive_body(self, request: Request) -> HTTPCycle:
        """A request with a body: start the application now and stream the body to it as
        it arrives (:mod:`medusa.http.body`); the cycle is the body's sink."""
        cycle = HTTPCycle(self, request, False)
        cycle.run()
        return cycle

    def handle_request(self, request: Request) -> NotDoneYet | Any:
        """Run the application for ``request`` (a request with a body: its body is now
        complete, the application already runs); it answers later."""
        sink = request.body_sink
        if sink is not None and type(sink) is HTTPCycle:
            sink.body_complete()
            return NOT_DONE_YET
        if "upgrade" in request.headers and "websocket" in request.headers["upgrade"].lower():
            return self._websocket(request)
        HTTPCycle(self, request, True).run()
        return NOT_DONE_YET

    async def _websocket(self, request: Request) -> None:
        from medusa.http.asgiwebsocket import serve_websocket

        self.requests += 1
        scope = base_scope(request, root_path=self.prefix, state=self.state)
        del scope["method"]  # not a key of websocket scopes
        await serve_websocket(
            self.app,
            request,
            scope,
            max_size=self.ws_max_size,
            ping_interval=self.ws_ping_interval,
        )

    async def startup(self) -> None:
        """The server's start hook: run the application's lifespan startup.

        Raises:
            medusa.http.lifespan.LifespanStartupError: when the application's startup failed.
        """
        if self.lifespan is not None:
            await self.lifespan.startup()

    async def shutdown(self) -> None:
        """The server's stop hook: run the application's lifespan shutdown."""
        if self.lifespan is not None:
            await self.lifespan.shutdown()
