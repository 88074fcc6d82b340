"""Instructions per hello request, counted by callgrind: the steady figure of the hello path
(issue 15, part 4) on a machine whose speed drifts (not a test).

Run from the repository root (``apt-get install valgrind``)::

    hatch run bench:python bench/hello_instructions.py [--requests 5000] [--kinds KINDS]
    hatch run bench:python bench/hello_instructions.py --kinds static --keep DIR

``--kinds`` takes a comma-separated list (default ``handler,static,bare``); ``--keep DIR``
keeps callgrind's output files there (for ``callgrind_annotate``).

For each kind, this script runs itself under ``valgrind --tool=callgrind`` twice, once with
a warm-up only and once with ``--requests`` more; the difference of the two instruction
totals divided by ``--requests`` is the user-space instructions per request (system calls
are not counted). Requests are fed through ``data_received`` with an in-memory transport:
no sockets, no event-loop I/O, only the request path. Kinds:

``handler``
    medusa-http (no access log) with a handler answering ``GET /hello`` with a fixed
    13-byte body (``request.respond``), as ``bench/servers/medusa_hello.py``'s.
``static``
    medusa-http (no access log) serving ``GET /hello.txt``, a 13-byte file, with
    :class:`~medusa.http.FileHandler` (what ``medusa serve ROOT`` does).
``bare``
    ``bench/servers/bare_httptools.py``'s protocol: the Python ceiling (httptools and one
    ``transport.write`` per request).
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

from bench.logging_instructions import MemoryTransport
from bench.measure import callgrind_run

KINDS = ("handler", "static", "bare")
TARGETS = {"handler": b"/hello", "static": b"/hello.txt", "bare": b"/hello"}
WARMUP = 2000


def make_protocol(kind: str, tmp: Path) -> asyncio.Protocol:
    """The protocol instance that one kind feeds (called inside the running loop)."""
    if kind == "bare":
        from bench.servers.bare_httptools import HelloProtocol

        return HelloProtocol()
    from bench.servers.medusa_hello import HelloHandler

    from medusa.http import FileHandler, HTTPServer

    handlers: list[Any] = [HelloHandler()] if kind == "handler" else []
    root = tmp / "root"
    root.mkdir(exist_ok=True)
    (root / "hello.txt").write_bytes(b"Hello, World!")
    handlers.append(FileHandler(root))
    server = HTTPServer(("127.0.0.1", 0), handlers=handlers, access_log=None)
    return server.make_channel()


def serve(kind: str, requests: int, tmp: Path) -> None:
    """Feed ``WARMUP + requests`` requests of ``kind`` to one connection."""
    request = (
        b"GET %s HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\n\r\n" % (TARGETS[kind])
    )

    async def feed() -> None:
        protocol = make_protocol(kind, tmp)
        transport = MemoryTransport()
        protocol.connection_made(transport)
        data_received = protocol.data_received
        data_received(request)
        if not bytes(transport.last).startswith(b"HTTP/1.1 200 ") or not bytes(
            transport.last
        ).endswith(b"\r\n\r\nHello, World!"):
            raise SystemExit(f"{kind}: unexpected answer {transport.last!r}")
        for _ in range(WARMUP + requests):
            data_received(request)

    asyncio.run(feed())


def total(kind: str, requests: int, tmp: Path, keep: Path | None) -> int:
    """Instructions of one run of :func:`serve` under callgrind, start to exit."""
    out = (keep or tmp) / f"callgrind.{kind}.{requests}.out"
    argv = [sys.executable, __file__, "serve", kind, str(requests), str(tmp)]
    return callgrind_run(out, argv, "--dump-instr=no")


def main(argv: list[str]) -> None:
    if argv[:1] == ["serve"]:
        serve(argv[1], int(argv[2]), Path(argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--keep", type=Path, help="directory to keep callgrind's output in")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    per_request: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="medusa-hello-instructions-") as tmpdir:
        tmp = Path(tmpdir)
        for kind in args.kinds.split(","):
            if kind not in KINDS:
                raise SystemExit(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
            base = total(kind, 0, tmp, args.keep)
            full = total(kind, args.requests, tmp, args.keep)
            per_request[kind] = (full - base) / args.requests
            print(f"{kind:8s} {per_request[kind]:10,.0f} instructions per request", flush=True)
    bare = per_request.get("bare")
    if bare:
        for kind, count in per_request.items():
            if kind != "bare":
                print(f"{kind:8s} {count / bare:5.2f}x the bare httptools protocol")


if __name__ == "__main__":
    main(sys.argv[1:])
