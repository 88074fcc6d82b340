"""The channel's side of request bodies (:mod:`medusa.http.body`): asking the handler how it
takes a body (``receive_body``, perhaps an awaitable: reading pauses until it resolves),
and carrying out the :class:`~medusa.http.body.BodyDecision` each step of a
:class:`~medusa.http.body.BodyReception` returns: run the handler, send ``100 Continue``
(RFC 9110 §10.1.1), answer 413, or report a sink that failed."""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import TYPE_CHECKING

from medusa.core.log import error_logger, peer_text, printable
from medusa.http.body import BodyDecision, BodyReception, BodySink
from medusa.http.events import CONTINUE

if TYPE_CHECKING:
    from medusa.http.channel import HTTPChannel

__all__ = ["act", "send_continue", "start"]


def start(channel: HTTPChannel, upload: BodyReception) -> None:
    """Ask the upload's handler how it takes the body, then act on the decision."""
    request = upload.request
    handler = upload.handler
    receive = getattr(handler, "receive_body", None)
    if receive is None:
        act(channel, upload, upload.take(None))
        return
    try:
        result = receive(request)
    except Exception:
        channel.handler_failed(request, handler)
        return
    if request.answered:
        return
    if result is not None and inspect.isawaitable(result):
        channel.pause_reading("body")
        future = asyncio.ensure_future(result)
        future.add_done_callback(lambda f: _accepted(channel, upload, f))
        return
    act(channel, upload, upload.take(result))


def _accepted(
    channel: HTTPChannel, upload: BodyReception, future: asyncio.Future[BodySink | None]
) -> None:
    request = upload.request
    if not channel.closing:
        channel.resume_reading("body")
    if future.cancelled():
        if not request.answered:
            request.error(503)
        return
    exc = future.exception()
    if exc is not None:
        channel.handler_failed(request, upload.handler, exc)
        return
    sink = future.result()
    if upload.lost_reason is not None:
        if sink is not None:
            sink.abort("connection closed before the body was read")
        return
    if request.answered:
        return
    act(channel, upload, upload.take(sink))


def act(channel: HTTPChannel, upload: BodyReception, decision: BodyDecision | None) -> None:
    """Carry out ``decision`` for ``upload`` on ``channel`` (``None``: nothing to do)."""
    if decision is None:
        return
    request = upload.request
    if decision is BodyDecision.DISPATCH:
        if request.answered:
            return
        handler = upload.ready()
        channel.body_read()
        if handler is None:
            request.error(404)
        else:
            channel.run_handler(request, handler)
    elif decision is BodyDecision.CONTINUE:
        send_continue(channel, upload)
    elif decision is BodyDecision.TOO_LARGE:
        message = "request body too large"
        error_logger.info("%s: 413 %s", peer_text(channel.peer), printable(message))
        channel.http.counters.errors += 1
        request.error(413, message)
    else:
        channel.handler_failed(request, upload.handler)


def send_continue(channel: HTTPChannel, upload: BodyReception) -> None:
    """Send the ``100 Continue`` the handler's acceptance promised, if its request is the
    current one (the channel calls this again when it becomes so)."""
    if upload.continue_now(time.monotonic()):
        channel.push(CONTINUE)
