"""Instructions per HTTP request with and without an access log, counted by callgrind: the
steadiest companion of ``bench/logging_bench.py`` on a machine whose speed drifts (not a
test).

Run from the repository root (``apt-get install valgrind``)::

    hatch run bench:python bench/logging_instructions.py [--requests 10000] [--kinds none,null,file]

For each kind, this script runs itself under ``valgrind --tool=callgrind`` twice: a
medusa-http server (not listening) whose :class:`~medusa.http.channel.HTTPChannel` is fed
``GET /hello`` requests through ``data_received`` with an in-memory transport (no sockets,
no event-loop I/O: only the request path and the access log), first after a warm-up only,
then with ``--requests`` more; the difference of the two instruction totals divided by
``--requests`` is the user-space instructions per request, the logger's writer thread
included. System calls (the writer's ``write()``) are not counted: a batch of hundreds of
records costs one. Kinds: ``none`` (no access log), ``null`` (the Common Log Format line
made, then discarded), ``file`` (medusa-logging's file logger).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.logging_server import HelloHandler, NullLogger
from bench.measure import callgrind_run

KINDS = ("none", "null", "console", "stdlib", "file")
REQUEST = b"GET /hello HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\n\r\n"
WARMUP = 2000


class MemoryTransport(asyncio.Transport):
    """Takes every write and keeps the last one; reports a TCP peer."""

    last: Any = b""

    def write(self, data: Any) -> None:
        self.last = data

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 50123) if name == "peername" else default

    def is_closing(self) -> bool:
        return False

    def get_write_buffer_size(self) -> int:
        return 0

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


def serve(kind: str, requests: int, tmp: Path) -> None:
    """Feed ``WARMUP + requests`` hello requests to one channel (under callgrind)."""
    from medusa.http import HTTPServer

    logger: Any = None
    if kind in ("console", "stdlib"):
        import logging
        import os

        from medusa.core.console import install_console

        devnull = os.open(os.devnull, os.O_WRONLY)
        if kind == "console":  # what `medusa serve` does: the default access log to stderr
            install_console(logging.INFO, fd=devnull)
        else:  # the standard library's synchronous console (the command before issue 15)
            stream = os.fdopen(devnull, "w")
            fmt = "%(asctime)s %(name)s %(levelname)s %(message)s"
            logging.basicConfig(level=logging.INFO, format=fmt, stream=stream)
        logger = True
    elif kind == "null":
        logger = NullLogger()
    elif kind == "file":
        from medusa.logging import FileLogger

        logger = FileLogger(tmp / "access.log", reopen_on_sighup=False)

    async def feed() -> None:
        server = HTTPServer(("127.0.0.1", 0), handlers=[HelloHandler()], access_log=logger)
        channel = server.make_channel()
        channel.connection_made(MemoryTransport())
        data_received = channel.data_received
        for _ in range(WARMUP + requests):
            data_received(REQUEST)

    asyncio.run(feed())
    if logger is not None and hasattr(logger, "close"):
        logger.close(60.0)
    from medusa.core.logqueue import close_log_queues

    close_log_queues(60.0)


def total(kind: str, requests: int, tmp: Path) -> int:
    """Instructions of one run of :func:`serve` under callgrind, start to exit."""
    out = tmp / f"callgrind.{kind}.{requests}.out"
    return callgrind_run(out, [sys.executable, __file__, "serve", kind, str(requests), str(tmp)])


def main(argv: list[str]) -> None:
    if argv[:1] == ["serve"]:
        serve(argv[1], int(argv[2]), Path(argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--kinds", default=",".join(KINDS))
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    per_request: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="medusa-logging-instructions-") as tmpdir:
        tmp = Path(tmpdir)
        for kind in args.kinds.split(","):
            base = total(kind, 0, tmp)
            full = total(kind, args.requests, tmp)
            per_request[kind] = (full - base) / args.requests
            print(f"{kind:6s} {per_request[kind]:10,.0f} instructions per request", flush=True)
    none = per_request.get("none")
    if none:
        print(f"\nagainst no access log ({none:,.0f} instructions per hello request):")
        for kind, count in per_request.items():
            if kind != "none":
                print(f"{kind:6s} +{count - none:8,.0f} ({(count - none) / none:+.0%})")


if __name__ == "__main__":
    main(sys.argv[1:])
