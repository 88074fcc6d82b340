"""A raw ASGI 3 application for the benchmark (``bench/app_bench.py``): ``Hello, World!``
(13 bytes, text/plain) on every path but ``/stream100k``, which streams 100 KiB in ten
10 KiB parts. It takes the lifespan scope (nothing to do) so that no server logs its
absence."""

from __future__ import annotations

from typing import Any

HELLO = b"Hello, World!"
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
}
BODY = {"type": "http.response.body", "body": HELLO}
STREAM_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"application/octet-stream")],
}
PART = bytes(range(256)) * 40  # 10 KiB


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The application: ``uvicorn hello_asgi:app``, ``medusa serve --app hello_asgi:app``."""
    kind = scope["type"]
    if kind == "http":
        if scope["path"] == "/stream100k":
            await send(STREAM_START)
            for _ in range(9):
                await send({"type": "http.response.body", "body": PART, "more_body": True})
            await send({"type": "http.response.body", "body": PART})
            return
        await send(START)
        await send(BODY)
    elif kind == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
