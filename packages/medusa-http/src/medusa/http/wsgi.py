"""WSGI applications (PEP 3333) served by medusa-http: :class:`WSGIHandler`.

The application runs in a bounded pool of threads (:mod:`medusa.http.wsgipool`), never on
the event loop: the loop reads requests and writes responses for every connection while
the threads run application code. Per request:

* the environ is built in the thread (:mod:`medusa.http.wsgienviron`);
* a request body is streamed into ``wsgi.input`` as it arrives, with back-pressure
  (:mod:`medusa.http.wsgiinput`): the application starts as soon as the head is read, and
  the connection stops reading while the application is more than 64 KiB behind;
* the response goes back to the loop (:mod:`medusa.http.wsgicall`): a small one whole,
  with one loop wake-up; a streamed one piece by piece, a slow client holding back its
  own thread; ``wsgi.file_wrapper`` files with ``sendfile`` (:mod:`medusa.http.wsgifile`);
* an application error before the response started gives a 500 and a logged traceback;
  after it, the connection is closed. The pool stays usable and the server keeps serving.

Requests beyond the threads wait in arrival order. At the server's stop, the requests in
flight finish within the grace period (their connections are waited for like any other),
then :meth:`WSGIHandler.shutdown`, the server's stop hook, ends the threads.
"""

from __future__ import annotations

import asyncio
from typing import Any

from medusa.core.workers import current_worker
from medusa.http.handler import NOT_DONE_YET, NotDoneYet
from medusa.http.request import Request
from medusa.http.wsgicall import WSGICall
from medusa.http.wsgienviron import ErrorStream, constant_keys, wsgi_logger
from medusa.http.wsgiinput import INPUT_LIMIT, WSGIInput
from medusa.http.wsgipool import LoopOutbox, ThreadPool

__all__ = ["WSGIHandler"]


class WSGIHandler:
    """Serve a WSGI application (PEP 3333) mounted at ``prefix``.

    Args:
        app: the WSGI callable ``app(environ, start_response) -> iterable of bytes``.
        prefix: the path it is mounted at (``""`` for ``/``, else ``"/api"``; a trailing
            slash is dropped): requests for the prefix or under it are the application's,
            and the prefix is their ``SCRIPT_NAME``.
        threads: how many threads run the application at once (>= 1).
        input_limit: bytes of request body buffered for the application before the
            connection stops reading (> 0; 64 KiB by default).

    Attributes:
        pool: the :class:`~medusa.http.wsgipool.ThreadPool`.
        errors: the ``wsgi.errors`` stream shared by the requests.
        requests: requests handed to the application.
        failures: requests the application failed (an exception, a bad response: a 500,
            or a response cut).

    Raises:
        ValueError: for ``threads`` or ``input_limit`` below 1, or a prefix not starting
            with ``/``.
    """

    def __init__(
        self, app: Any, *, prefix: str = "", threads: int = 8, input_limit: int = INPUT_LIMIT
    ) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        if input_limit < 1:
            raise ValueError(f"input_limit must be at least 1, not {input_limit}")
        prefix = prefix.rstrip("/")
        if prefix and not prefix.startswith("/"):
            raise ValueError(f"prefix must start with '/': {prefix!r}")
        self.app = app
        self.prefix = prefix
        self.threads = threads
        self.input_limit = input_limit
        self.pool = ThreadPool(threads)
        self.errors = ErrorStream()
        self.requests = 0
        self.failures = 0
        self.constants: dict[str, Any] = constant_keys(False, self.errors)
        self.outbox: LoopOutbox = None  # type: ignore[assignment]  # set at the first request

    def __repr__(self) -> str:
        name = getattr(self.app, "__qualname__", None) or type(self.app).__qualname__
        return f"<WSGIHandler {name} at {self.prefix or '/'}>"

    def match(self, request: Request) -> bool:
        """Take requests whose path is the prefix or under it."""
        prefix = self.prefix
        if not prefix:
            return True
        path = request.path
        return path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/")

    def _outbox(self) -> LoopOutbox:
        loop = asyncio.get_running_loop()
        outbox = self.outbox
        if outbox is None or outbox.loop is not loop:
            outbox = self.outbox = LoopOutbox(loop)
            self.constants = constant_keys(current_worker() is not None, self.errors)
        return outbox

    def receive_body(self, request: Request) -> WSGIInput:
        """Start the application on a request with a body, which it reads from
        ``wsgi.input`` as it arrives (:class:`~medusa.http.body.BodyReceiver`)."""
        outbox = self._outbox()
        self.requests += 1
        wsgi_input = WSGIInput(request.channel, outbox.loop, self.input_limit)
        self.pool.submit(WSGICall(self, request, wsgi_input).run)
        return wsgi_input

    def handle_request(self, request: Request) -> NotDoneYet:
        """Run the application for ``request`` in a thread (for a request with a body it
        runs already: its body is complete now); it answers later."""
        sink = request.body_sink
        if type(sink) is WSGIInput:
            sink.finish()
            return NOT_DONE_YET
        outbox = self.outbox
        if outbox is None or outbox.loop is not asyncio.get_running_loop():
            self._outbox()
        self.requests += 1
        self.pool.submit(WSGICall(self, request, None).run)
        return NOT_DONE_YET

    def failed(self, request: Request, exc: BaseException) -> None:
        """The application raised ``exc`` (on the loop): log it with its traceback and
        answer 500, or cut a response already begun."""
        self.failures += 1
        request.channel.handler_failed(request, self, exc)

    def status_counters(self) -> dict[str, int]:
        """The status page's row for this application (counts; ``running`` and
        ``waiting`` are requests in the threads and queued for them now)."""
        pool = self.pool
        return {
            "requests": self.requests,
            "errors": self.failures,
            "running": pool.busy,
            "waiting": pool.waiting,
            "threads": pool.size,
        }

    async def startup(self) -> None:
        """Start the threads (the server's start hook)."""
        self._outbox()
        self.pool.submit(lambda: None)

    async def shutdown(self, grace: float = 1.0) -> None:
        """End the threads (the server's stop hook, awaited once the connections finished
        or the grace period ran out): each finishes what it runs, for at most ``grace``
        seconds more; a thread still running then is left to the process's exit (the
        threads are daemons) and logged."""
        if not await asyncio.to_thread(self.pool.stop, grace):
            wsgi_logger.warning(
                "%r: application threads still running %g s after the stop", self, grace
            )
