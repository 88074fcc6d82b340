"""Idle WebSocket connections' memory: the server's RSS per open, idle ASGI WebSocket, for
medusa (medusa.http.asgiwebsocket, wsproto), uvicorn (uvloop, httptools; ``--ws wsproto``
and ``--ws websockets``) and granian (1 worker, asgi interface).

Usage (in the bench environment)::

    hatch run bench:python bench/websocket_rss.py [--connections 2000] [--runs 3]

Each server serves :func:`app` (accept, then echo until the client leaves), pinned to CPU 0;
this process is the client, pinned to CPU 1. For each run: start the server, open 20
WebSockets (warm-up: imports, first allocations) and measure the RSS of the server's whole
process tree, open ``--connections`` more (each handshakes and gets one echo, so that its
application is waiting in ``receive()``), wait until the RSS settles, measure again, stop the
server. The figure is the RSS growth divided by the connections (KiB per connection), the
median of the runs; the last column is the ratio to medusa's (lower is better for medusa
when above 1.0).

``python bench/websocket_rss.py serve-medusa PORT`` is the medusa server it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script (``python bench/websocket_rss.py``): make the ``bench`` package importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.peers import free_port, process_tree, rss_kb

BENCH = Path(__file__).resolve().parent
SERVER_CPU = 0
CLIENT_CPU = 1
WARM_UP = 20
KEY = base64.b64encode(b"medusa-bench-key").decode()
HEAD = (
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
).encode()
PING_FRAME = bytes([0x81, 0x84, 1, 2, 3, 4]) + bytes(
    b ^ m for b, m in zip(b"ping", b"\x01\x02\x03\x04", strict=True)
)
"""A masked text frame "ping" (RFC 6455 §5.3): echoed as an unmasked 6-byte frame."""

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """The application every server runs: a WebSocket echo (the lifespan scope is
    acknowledged; HTTP answers 404)."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text, data = message.get("text"), message.get("bytes")
        await send({"type": "websocket.send", "text": text, "bytes": data})


def serve_medusa(port: int) -> None:
    """Serve :func:`app` on medusa (uvloop), through the ASGI handler when it is there."""
    from medusa.core import run
    from medusa.http import HTTPServer

    try:
        from medusa.http.asgi import ASGIHandler

        handler: Any = ASGIHandler(app, lifespan=False)
    except ImportError:  # before the ASGI handler: what it does for a WebSocket
        from medusa.http.asgiscope import base_scope
        from medusa.http.asgiwebsocket import serve_websocket

        class WebSocketHandler:
            def match(self, request: Any) -> bool:
                return True

            def handle_request(self, request: Any) -> Any:
                scope = base_scope(request, root_path="", state={})
                return serve_websocket(app, request, scope)

        handler = WebSocketHandler()
    server = HTTPServer(("127.0.0.1", port), handlers=[handler], access_log=None)
    run([server], backend="uvloop")


def commands(port: int) -> dict[str, list[str]]:
    """The servers, by name: each command serves :func:`app` on ``port``."""
    python = sys.executable
    uvicorn = [python, "-m", "uvicorn", "websocket_rss:app", "--app-dir", str(BENCH)]
    uvicorn += ["--port", str(port), "--loop", "uvloop", "--http", "httptools"]
    uvicorn += ["--no-access-log", "--log-level", "warning", "--lifespan", "off"]
    return {
        "medusa": [python, str(BENCH / "websocket_rss.py"), "serve-medusa", str(port)],
        "uvicorn (wsproto)": [*uvicorn, "--ws", "wsproto"],
        "uvicorn (websockets)": [*uvicorn, "--ws", "websockets"],
        "granian": [
            python, "-m", "granian", "--interface", "asgi", "--workers", "1",
            "--loop", "uvloop", "--host", "127.0.0.1", "--port", str(port),
            "--ws", "--log-level", "warning",
            "--working-dir", str(BENCH), "websocket_rss:app",
        ],
    }  # fmt: skip


def tree_rss_kb(pid: int) -> int:
    """RSS of ``pid`` and its descendants (granian's worker), KiB."""
    return sum(rss_kb(p) for p in process_tree(pid))


async def open_websocket(port: int) -> asyncio.StreamWriter:
    """Handshake, then one echo; return the open connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEAD)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"handshake answered {head[:40]!r}")
    writer.write(PING_FRAME)
    echo = await reader.readexactly(6)
    if echo != b"\x81\x04ping":
        raise RuntimeError(f"echo {echo!r}")
    return writer


async def open_many(port: int, count: int, in_flight: int = 64) -> list[asyncio.StreamWriter]:
    """Open ``count`` WebSockets, ``in_flight`` at a time."""
    opened: list[asyncio.StreamWriter] = []
    for start in range(0, count, in_flight):
        batch = min(in_flight, count - start)
        opened += await asyncio.gather(*(open_websocket(port) for _ in range(batch)))
    return opened


def settled_rss(pid: int, timeout: float = 10.0) -> int:
    """The tree's RSS once two readings 0.5 s apart differ by under 0.5 %."""
    deadline = time.monotonic() + timeout
    last = tree_rss_kb(pid)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = tree_rss_kb(pid)
        if abs(now - last) <= last * 0.005:
            return now
        last = now
    return last


async def probe(port: int) -> None:
    """One WebSocket opened, echoed and closed."""
    writer = await open_websocket(port)
    writer.close()
    await writer.wait_closed()


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            asyncio.run(probe(port))
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server not ready")


def measure(name: str, connections: int) -> float:
    """One run: KiB of server RSS per idle WebSocket."""
    port = free_port()
    argv = ["taskset", "-c", str(SERVER_CPU), *commands(port)[name]]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            try:
                wait_listening(port, proc)
            except RuntimeError as exc:
                log.seek(0)
                raise RuntimeError(f"{name}: {exc}: {log.read()[-2000:].decode()}") from None

            async def scenario() -> float:
                warm = await open_many(port, WARM_UP)
                before = settled_rss(proc.pid)
                idle = await open_many(port, connections)
                after = settled_rss(proc.pid)
                for writer in warm + idle:
                    writer.close()
                return (after - before) / connections

            return asyncio.run(scenario())
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                for pid in process_tree(proc.pid):
                    os.kill(pid, 9)
                proc.wait()


def main(argv: list[str]) -> None:
    if argv[:1] == ["serve-medusa"]:
        serve_medusa(int(argv[1]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--servers", default="", help="comma-separated names (default: all)")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 2 * args.connections + 256
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    os.sched_setaffinity(0, {CLIENT_CPU})
    names = [n for n in commands(0) if not args.servers or n in args.servers.split(",")]
    results: dict[str, float] = {}
    for name in names:
        runs = [measure(name, args.connections) for _ in range(args.runs)]
        results[name] = statistics.median(runs)
        shown = ", ".join(f"{r:.2f}" for r in runs)
        print(f"{name:22} {results[name]:7.2f} KiB per idle WebSocket (runs: {shown})", flush=True)
    reference = results.get("medusa")
    if reference:
        print()
        for name, value in results.items():
            print(f"{name:22} {value:7.2f} KiB  {value / reference:5.2f}x medusa's")


if __name__ == "__main__":
    main(sys.argv[1:])
