"""The handler protocol: what a server's handler chain is made of.

A handler has ``match(request) -> bool`` and ``handle_request(request)``. The chain is tried
in order and the first handler whose ``match`` returns True takes the request; when none
does, the answer is 404. ``handle_request`` may answer at once, later (from a callback), or be
a coroutine function (``async def``): the request is finished when the coroutine returns if
it has not called :meth:`~medusa.http.request.Request.done` itself. An exception gives a 500,
logged with its traceback.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Protocol, runtime_checkable

from medusa.http.request import Request

__all__ = ["Handler"]


@runtime_checkable
class Handler(Protocol):
    """One link of an HTTP server's handler chain."""

    def match(self, request: Request) -> bool:
        """Return True to take ``request``; must be quick and must not answer."""
        ...

    def handle_request(self, request: Request) -> Awaitable[None] | None:
        """Answer ``request`` (now, later, or as a coroutine)."""
        ...
