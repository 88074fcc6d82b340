"""The ``lifespan`` scope of ASGI 3.0 (asgiref's "Lifespan Protocol"): an application's
startup before the server accepts connections, its shutdown after the server stopped.

:class:`Lifespan` runs the application once with a ``lifespan`` scope for the whole life
of the server. :class:`~medusa.http.asgi.ASGIHandler` has ``startup()`` and ``shutdown()``
that :class:`~medusa.http.server.HTTPServer` awaits (its handler hook): startup before it
listens, shutdown after its connections are finished, within what is left of the grace
period.

* Startup succeeds on ``lifespan.startup.complete``. It fails on
  ``lifespan.startup.failed`` (its ``message`` is reported) or on an exception raised after
  the application took the ``lifespan.startup`` event: :class:`LifespanStartupError` is raised and
  ``medusa serve`` exits with status 1 and the message.
* An application that does not support lifespan (it raises before asking for the first
  event, as Django does, or returns without answering) is served without it; one INFO line
  says so.
* ``state``: the dict given as the scope's ``state``, filled by the application at
  startup; each request's scope gets a shallow copy (:mod:`medusa.http.asgiscope`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from medusa.core.listener import ListenError
from medusa.core.log import error_logger

__all__ = ["Lifespan", "LifespanStartupError"]


class LifespanStartupError(ListenError):
    """The application's lifespan startup failed: the server does not start. A
    :class:`~medusa.core.listener.ListenError`, so that ``medusa serve`` (exit status 1) and
    the workers of ``--workers`` report it as a server that could not start; the message
    (:attr:`strerror`) names the application and gives its reason."""

    def __init__(self, message: str) -> None:
        super().__init__(0, message)


_UNSUPPORTED = "unsupported"


class Lifespan:
    """The lifespan of one ASGI application.

    Args:
        app: the ASGI 3 application.
        state: the dict passed as the scope's ``state`` (the application fills it).
        name: how log lines and errors name the application (its spec).
    """

    def __init__(self, app: Callable[..., Any], state: dict[str, Any], name: str) -> None:
        self.app = app
        self.state = state
        self.name = name
        self.supported = True
        """False once the application showed that it does not take lifespan scopes."""
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._answers: asyncio.Queue[dict[str, Any] | str] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._asked = False
        self._started = False

    async def startup(self) -> None:
        """Run the application's startup; return once it completed (or is unsupported).

        Raises:
            LifespanStartupError: on ``lifespan.startup.failed`` or an exception after the
                application took the startup event.
        """
        scope = {
            "type": "lifespan",
            "asgi": {"version": "3.0", "spec_version": "2.0"},
            "state": self.state,
        }
        self._task = asyncio.ensure_future(self._main(scope))
        await self._events.put({"type": "lifespan.startup"})
        answer = await self._answers.get()
        if answer == _UNSUPPORTED:
            self.supported = False
            error_logger.info("%s: no ASGI lifespan support: served without it", self.name)
            return
        assert isinstance(answer, dict)
        if answer["type"] == "lifespan.startup.complete":
            self._started = True
            return
        message = answer.get("message") or "no reason given"
        raise LifespanStartupError(f"{self.name}: lifespan startup failed: {message}")

    async def shutdown(self) -> None:
        """Run the application's shutdown (only after a completed startup); errors are
        logged. The caller bounds the time it takes (the grace period)."""
        task = self._task
        if task is None or not self._started or task.done():
            return
        await self._events.put({"type": "lifespan.shutdown"})
        try:
            answer = await self._answers.get()
        except asyncio.CancelledError:
            task.cancel()
            raise
        if isinstance(answer, dict) and answer["type"] == "lifespan.shutdown.failed":
            error_logger.error(
                "%s: lifespan shutdown failed: %s", self.name, answer.get("message") or "-"
            )
        await asyncio.wait([task], timeout=1.0)

    async def _main(self, scope: dict[str, Any]) -> None:
        try:
            await self.app(scope, self._receive, self._send)
        except BaseException as exc:
            if not self._asked:
                self._answers.put_nowait(_UNSUPPORTED)
                if isinstance(exc, Exception):
                    return
                raise
            if self._started:
                error_logger.error("%s: lifespan failed", self.name, exc_info=exc)
                self._answers.put_nowait({"type": "lifespan.shutdown.failed", "message": repr(exc)})
            else:
                error_logger.error("%s: lifespan startup raised", self.name, exc_info=exc)
                self._answers.put_nowait(
                    {"type": "lifespan.startup.failed", "message": f"{type(exc).__name__}: {exc}"}
                )
            if not isinstance(exc, Exception):
                raise
            return
        # Returned: without answering startup, it does not support lifespan; after, it is
        # done (a shutdown waiting for its answer gets one).
        self._answers.put_nowait(_UNSUPPORTED if not self._started else {"type": "returned"})

    async def _receive(self) -> dict[str, Any]:
        self._asked = True
        return await self._events.get()

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind not in (
            "lifespan.startup.complete",
            "lifespan.startup.failed",
            "lifespan.shutdown.complete",
            "lifespan.shutdown.failed",
        ):
            raise RuntimeError(f"unexpected lifespan message {kind!r}")
        if kind == "lifespan.startup.complete":
            self._started = True
        self._answers.put_nowait(message)
