"""Processes of the logging benchmark (started by ``bench/logging_bench.py``).

``python bench/logging_server.py serve PORT KIND TMP [UDP_PORT TCP_PORT COLLECTOR_PORT]``
    medusa-http answering ``GET /hello`` on uvloop, its access log through the logger KIND
    (``none``, ``null`` (lines made, then discarded), ``file``, ``socket``, ``syslog-udp``,
    ``syslog-tcp``, ``multi``, ``bridge``).
    On SIGTERM it stops, closes the logger (writing what is queued, up to 60 s) and prints
    one JSON line: requests served, the logger's counters.

``python bench/logging_server.py collect PORT``
    a log collector: counts the lines received on TCP PORT; when the logger's connection
    closes (the server has finished) or on SIGTERM, prints the count and exits.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from medusa.core import run
from medusa.core.console import install_console
from medusa.core.log import Logger
from medusa.http import HTTPServer, Request
from medusa.logging import FileLogger, MultiLogger, SocketLogger, SyslogLogger

HELLO = b"Hello, World!"


class HelloHandler:
    """Answers ``GET /hello`` with a fixed 13-byte body."""

    def match(self, request: Request) -> bool:
        return request.path == "/hello"

    def handle_request(self, request: Request) -> None:
        request.respond(200, HELLO, content_type="text/plain")


class NullLogger:
    """Takes every line and does nothing: the cost of producing the access-log line."""

    def log(self, message: str) -> None:
        pass


def make_logger(kind: str, tmp: Path, ports: list[int]) -> Logger | bool | None:
    """The access log of one benchmark row."""
    udp, tcp, collector = [*ports, 0, 0, 0][:3]
    if kind == "none":
        return None
    if kind == "null":
        return NullLogger()
    if kind == "file":
        return FileLogger(tmp / "access-file.log")
    if kind == "socket":
        return SocketLogger(collector)
    if kind == "syslog-udp":
        return SyslogLogger(transport="udp", port=udp, app_name="bench-syslog-udp")
    if kind == "syslog-tcp":
        return SyslogLogger(transport="tcp", port=tcp, app_name="bench-syslog-tcp")
    if kind == "multi":
        return MultiLogger(
            [
                FileLogger(tmp / "access-multi.log"),
                SyslogLogger(transport="tcp", port=tcp, app_name="bench-multi"),
            ]
        )
    if kind == "console":
        # What `medusa serve` does: the default access log on core's console queue, here to
        # a file in place of standard error.
        fd = os.open(tmp / "access-console.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        install_console(logging.INFO, fd=fd)
        return True
    if kind == "bridge":
        # Core's default access log (logging logger medusa.http.access) captured into a file.
        logging.getLogger("medusa.http.access").setLevel(logging.INFO)
        FileLogger(tmp / "access-bridge.log", capture=["medusa.http.access"], propagate=False)
        return True
    raise SystemExit(f"unknown logger kind {kind!r}")


def serve(argv: list[str]) -> None:
    port, kind, tmp = int(argv[0]), argv[1], Path(argv[2])
    logger = make_logger(kind, tmp, [int(p) for p in argv[3:]])
    server = HTTPServer(("127.0.0.1", port), handlers=[HelloHandler()], access_log=logger)
    run([server], backend="uvloop", on_start=lambda _: print("ready", flush=True))
    from medusa.core.logqueue import open_log_queues

    stats: dict[str, Any] = {"requests": server.counters.requests, "loggers": {}}
    for queued in open_log_queues():
        queued.close(timeout=60)
        stats["loggers"][queued.describe()] = queued.stats()
    print(json.dumps(stats), flush=True)


def collect(argv: list[str]) -> None:
    port = int(argv[0])
    count = 0

    stop = asyncio.Event()

    class Counter(asyncio.Protocol):
        def data_received(self, data: bytes) -> None:
            nonlocal count
            count += data.count(b"\n")

        def connection_lost(self, exc: Exception | None) -> None:
            stop.set()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        listener = await loop.create_server(Counter, "127.0.0.1", port)
        print("ready", flush=True)
        await stop.wait()
        listener.close()

    asyncio.run(main())
    print(json.dumps({"lines": count}), flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 3 or sys.argv[1] not in ("serve", "collect"):
        sys.exit(__doc__)
    (serve if sys.argv[1] == "serve" else collect)(sys.argv[2:])
