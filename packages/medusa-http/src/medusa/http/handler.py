"""The handler protocol: what a server's handler chain is made of.

A handler has ``match(request) -> bool`` and ``handle_request(request)``. The chain is tried
in order and the first handler whose ``match`` returns True takes the request; when none
does, the answer is 404. What ``handle_request`` returns says when the request is answered:

* ``None`` (a plain ``def``): it answered the request before returning
  (:meth:`~medusa.http.request.Request.respond`, or ``push``... then ``done``). A request
  left unanswered is a defect of the handler: it is logged as an error and answered 500
  (the connection is cut if the response had begun), so that no client hangs.
* :data:`NOT_DONE_YET` (Twisted's name for the same rule): it answers later, from a
  callback, a thread's result or a timer, and calls ``done`` (or ``respond``) then. So
  does a wrapper that handed the request to another handler
  (``return request.hand_to(inner)``).
* An awaitable (an ``async def`` handler): the request is finished when it completes, if
  the handler has not finished it itself.

An exception, raised or from the awaitable, gives a 500, logged with its traceback.

Optional hooks a handler may have: ``async startup()`` and ``async shutdown()`` (awaited when
the server starts and stops), and ``status_counters() -> dict[str, int]``: its own counts,
shown as a row of the status page's applications table (:mod:`medusa.http.status_page`;
the ASGI and WSGI handlers report requests and errors there).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

if TYPE_CHECKING:
    from medusa.http.request import Request

__all__ = ["NOT_DONE_YET", "Handler", "NotDoneYet"]


class NotDoneYet:
    """The type of :data:`NOT_DONE_YET`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_DONE_YET"


NOT_DONE_YET: Final = NotDoneYet()
"""Returned by ``handle_request`` when the handler answers the request later."""


@runtime_checkable
class Handler(Protocol):
    """One link of an HTTP server's handler chain."""

    def match(self, request: Request) -> bool:
        """Return True to take ``request``; must be quick and must not answer."""
        ...

    def handle_request(self, request: Request) -> Awaitable[None] | NotDoneYet | None:
        """Answer ``request``: before returning ``None``, later after returning
        :data:`NOT_DONE_YET`, or as a coroutine."""
        ...
