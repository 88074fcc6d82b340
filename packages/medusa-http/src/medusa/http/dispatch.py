"""Running a request's handler: choosing it from the chain, calling it (a coroutine result
becomes a task that finishes the request), and turning a handler's exception into a 500
while the connection's other requests and the server carry on.

:class:`~medusa.http.channel.HTTPChannel` keeps ``run_handler`` and ``handler_failed`` as
its methods (handlers that wrap others call them); the work is here.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from medusa.core.log import error_logger, peer_text, printable
from medusa.http.handler import NOT_DONE_YET, Handler

if TYPE_CHECKING:
    from medusa.http.channel import HTTPChannel
    from medusa.http.request import Request

__all__ = ["choose_handler", "dispatch", "handler_failed", "handler_result", "run_handler"]


def dispatch(
    channel: HTTPChannel,
    handlers: Sequence[Handler],
    request: Request,
    handler: Handler | None = None,
) -> None:
    """Answer ``request`` with the first of ``handlers`` whose ``match`` takes it, or 404
    when none does (:func:`choose_handler`, inlined: this runs for every request), by the
    rules of :mod:`medusa.http.handler`: call it, run a coroutine result as a task
    (finishing the request when it returns), turn an exception into a 500, and a request
    left unanswered by a plain ``def`` into an error. With ``handler`` given, that one
    answers and ``handlers`` is not looked at (:func:`run_handler`)."""
    if handler is None:
        for handler in handlers:
            try:
                if handler.match(request):
                    break
            except Exception:
                handler_failed(channel, request, handler)
                return
        else:
            if not request.answered:
                request.error(404)
            return
    request.handler = handler
    try:
        result = handler.handle_request(request)
    except Exception:
        handler_failed(channel, request, handler)
        return
    if result is not None:
        if result is not NOT_DONE_YET:  # (an application answers later: nothing to do)
            handler_result(channel, request, handler, result)
    elif not request.finished:
        _left_unanswered(channel, request, handler)


def choose_handler(
    channel: HTTPChannel, handlers: Sequence[Handler], request: Request
) -> Handler | None:
    """Return the first of ``handlers`` whose ``match`` takes ``request``, or ``None``; a
    ``match`` that raises answers 500 (then ``request.answered`` is true)."""
    for handler in handlers:
        try:
            if handler.match(request):
                return handler
        except Exception:
            handler_failed(channel, request, handler)
            return None
    return None


def run_handler(channel: HTTPChannel, request: Request, handler: Handler) -> None:
    """Let ``handler`` answer ``request`` (its ``match`` is not asked) by the rules of
    :func:`dispatch`."""
    dispatch(channel, (), request, handler)


def handler_result(
    channel: HTTPChannel, request: Request, handler: Handler, result: object
) -> None:
    """Act on what ``handler.handle_request(request)`` returned when it is neither ``None``
    nor :data:`NOT_DONE_YET` (:func:`dispatch` handles those): an awaitable runs as a task
    that finishes the request."""
    if inspect.isawaitable(result):
        task = asyncio.ensure_future(result)
        task.add_done_callback(lambda t: _handler_done(channel, request, handler, t))


def _left_unanswered(channel: HTTPChannel, request: Request, handler: Handler) -> None:
    """A plain ``def`` handler returned ``None`` without finishing ``request``: log it and
    answer 500 (or cut a response that had begun)."""
    channel.http.counters.errors += 1
    error_logger.error(
        "handler %r returned without answering %s %s from %s (a handler that answers"
        " later returns NOT_DONE_YET)",
        handler,
        printable(request.method),
        printable(request.target),
        peer_text(channel.peer),
    )
    _answer_failure(channel, request)


def _handler_done(
    channel: HTTPChannel, request: Request, handler: Any, task: asyncio.Future[Any]
) -> None:
    if task.cancelled():
        if not request.finished:
            request.error(503)
        return
    exc = task.exception()
    if exc is not None:
        handler_failed(channel, request, handler, exc)
    elif not request.finished:
        request.done()


def handler_failed(
    channel: HTTPChannel, request: Request, handler: Any, exc: BaseException | None = None
) -> None:
    """Log a handler's exception (``exc``, else the one being handled) with its traceback
    and answer 500; a response whose head is already sent is cut (the connection aborted),
    so that the client sees it incomplete."""
    channel.http.counters.errors += 1
    error_logger.error(
        "handler %r failed on %s %s from %s",
        handler,
        printable(request.method),
        printable(request.target),
        peer_text(channel.peer),
        exc_info=exc if exc is not None else True,
    )
    _answer_failure(channel, request)


def _answer_failure(channel: HTTPChannel, request: Request) -> None:
    if request.finished:
        return
    if request.headers_sent:
        channel.abort()
        return
    request.error(500)
