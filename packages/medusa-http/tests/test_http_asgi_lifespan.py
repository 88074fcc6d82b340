"""The ASGI lifespan scope (``medusa.http.lifespan``) through HTTPServer's handler hooks:
startup before the server listens, state into every request, a failed startup stops the
server with the application's message, shutdown after the connections within the grace."""

from __future__ import annotations

import asyncio
import http.client
import logging
import time
from typing import Any

import pytest

from medusa.core.testing import ServerThread, loop_backends
from medusa.http import HTTPServer
from medusa.http.asgi import ASGIHandler
from medusa.http.lifespan import LifespanStartupError


class LifespanApp:
    """Records what happened, in order; ``startup`` says how its startup ends."""

    def __init__(self, startup: str = "complete", shutdown_hangs: bool = False) -> None:
        self.startup = startup
        self.shutdown_hangs = shutdown_hangs
        self.events: list[str] = []
        self.server: HTTPServer | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(scope, receive, send)
            return
        self.events.append("request")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["state"]["greeting"].encode()})

    async def lifespan(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        await asyncio.sleep(0.01)  # startup work: the server waits for it
        assert self.server is not None
        self.events.append(f"startup, listening on {len(self.server.listening)}")
        if self.startup == "failed":
            await send({"type": "lifespan.startup.failed", "message": "no database"})
            return
        if self.startup == "raises":
            raise ConnectionRefusedError("database at 10.0.0.9 refused")
        scope["state"]["greeting"] = "hello from the state"
        await send({"type": "lifespan.startup.complete"})
        message = await receive()
        assert message["type"] == "lifespan.shutdown"
        if self.shutdown_hangs:
            await asyncio.Event().wait()
        self.events.append("shutdown")
        await send({"type": "lifespan.shutdown.complete"})


def serve(app: LifespanApp, backend: str, grace: float = 5.0) -> tuple[HTTPServer, ServerThread]:
    server = HTTPServer(("127.0.0.1", 0), handlers=[ASGIHandler(app)], access_log=None)
    app.server = server
    return server, ServerThread([server], backend=backend, grace=grace)


@pytest.mark.parametrize("backend", loop_backends())
def test_startup_before_listening_state_and_shutdown(backend: str) -> None:
    app = LifespanApp()
    server, thread = serve(app, backend)
    with thread:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"hello from the state"
        conn.close()
    assert app.events == ["startup, listening on 0", "request", "shutdown"]


@pytest.mark.parametrize("how", ["failed", "raises"])
def test_a_failed_startup_stops_the_server(how: str) -> None:
    app = LifespanApp(startup=how)
    server, thread = serve(app, "asyncio")
    with pytest.raises(LifespanStartupError) as info:
        thread.start()
    thread.stop()
    reason = "no database" if how == "failed" else "database at 10.0.0.9 refused"
    assert reason in str(info.value)
    assert server.listening == []


def test_an_application_without_lifespan_is_served(caplog: pytest.LogCaptureFixture) -> None:
    async def plain(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError("Django can only handle ASGI/HTTP connections, not lifespan.")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body"})

    server = HTTPServer(("127.0.0.1", 0), handlers=[ASGIHandler(plain, name="m:app")])
    with caplog.at_level(logging.INFO, logger="medusa"), ServerThread([server]):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/")
        assert conn.getresponse().status == 204
        conn.close()
    assert any("m:app: no ASGI lifespan support" in r.getMessage() for r in caplog.records)


def test_a_hanging_shutdown_is_cut_at_the_grace_period(caplog: pytest.LogCaptureFixture) -> None:
    app = LifespanApp(shutdown_hangs=True)
    _, thread = serve(app, "asyncio", grace=0.5)
    thread.start()
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="medusa"):
        thread.stop(timeout=10)
    assert time.monotonic() - began < 5
    assert any("shutdown did not finish in time" in r.getMessage() for r in caplog.records)
