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
``uvicorn``
    uvicorn's httptools protocol (access log off) running ``bench/servers/uvicorn_hello.py``'s
    raw ASGI hello, the peer of issue 15's hello target. uvicorn answers from a task, so
    each request is followed by event-loop turns until the answer is written; for a fair
    ratio, the other kinds then get one loop turn per request too (``--turn``, implied),
    all on uvloop (what both servers run on when it is installed).
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


class HelloTransport(MemoryTransport):
    """Counts the writes; keeps what the first answer wrote, for the check."""

    writes = 0
    answer = b""
    keep = True

    def write(self, data: Any) -> None:
        self.writes += 1
        if self.keep:
            self.answer += bytes(data)


KINDS = ("handler", "static", "bare", "uvicorn")
TARGETS = {"handler": b"/hello", "static": b"/hello.txt", "bare": b"/hello", "uvicorn": b"/hello"}
WARMUP = 2000


def make_protocol(kind: str, tmp: Path) -> asyncio.Protocol:
    """The protocol instance that one kind feeds (called inside the running loop)."""
    if kind == "bare":
        from bench.servers.bare_httptools import HelloProtocol

        return HelloProtocol()
    if kind == "uvicorn":
        from bench.servers.uvicorn_hello import app
        from uvicorn.config import Config
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
        from uvicorn.server import ServerState

        config = Config(app=app, http="httptools", access_log=False, lifespan="off")
        config.load()
        return HttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    from bench.servers.medusa_hello import HelloHandler

    from medusa.http import FileHandler, HTTPServer

    handlers: list[Any] = [HelloHandler()] if kind == "handler" else []
    root = tmp / "root"
    root.mkdir(exist_ok=True)
    (root / "hello.txt").write_bytes(b"Hello, World!")
    handlers.append(FileHandler(root))
    server = HTTPServer(("127.0.0.1", 0), handlers=handlers, access_log=None)
    return server.make_channel()


def serve(kind: str, requests: int, tmp: Path, turn: bool = False) -> None:
    """Feed ``WARMUP + requests`` requests of ``kind`` to one connection; with ``turn``,
    let the event loop turn after each request until its answer is written."""
    request = (
        b"GET %s HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\n\r\n" % (TARGETS[kind])
    )

    async def feed() -> None:
        protocol = make_protocol(kind, tmp)
        transport = HelloTransport()
        protocol.connection_made(transport)
        data_received = protocol.data_received
        data_received(request)
        for _ in range(10):
            await asyncio.sleep(0)
        if not transport.answer.startswith(b"HTTP/1.1 200 ") or not transport.answer.endswith(
            b"\r\n\r\nHello, World!"
        ):
            raise SystemExit(f"{kind}: unexpected answer {transport.answer!r}")
        transport.keep = False
        if not turn:
            for _ in range(WARMUP + requests):
                data_received(request)
            return
        written = transport.writes
        for _ in range(WARMUP + requests):
            data_received(request)
            await asyncio.sleep(0)
            while transport.writes == written:
                await asyncio.sleep(0)
            written = transport.writes

    if turn:
        import uvloop  # the loop `medusa serve` and uvicorn run on, when installed

        uvloop.run(feed())
    else:
        asyncio.run(feed())


def total(kind: str, requests: int, tmp: Path, keep: Path | None, turn: bool) -> int:
    """Instructions of one run of :func:`serve` under callgrind, start to exit."""
    out = (keep or tmp) / f"callgrind.{kind}.{requests}.out"
    argv = [sys.executable, __file__, "serve", kind, str(requests), str(tmp), str(int(turn))]
    return callgrind_run(out, argv, "--dump-instr=no")


def main(argv: list[str]) -> None:
    if argv[:1] == ["serve"]:
        serve(argv[1], int(argv[2]), Path(argv[3]), argv[4] == "1")
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--keep", type=Path, help="directory to keep callgrind's output in")
    parser.add_argument(
        "--turn", action="store_true", help="one event-loop turn per request (uvicorn implies it)"
    )
    args = parser.parse_args(argv)
    kinds = args.kinds.split(",")
    turn = args.turn or "uvicorn" in kinds
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
    per_request: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="medusa-hello-instructions-") as tmpdir:
        tmp = Path(tmpdir)
        for kind in kinds:
            if kind not in KINDS:
                raise SystemExit(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
            base = total(kind, 0, tmp, args.keep, turn)
            full = total(kind, args.requests, tmp, args.keep, turn)
            per_request[kind] = (full - base) / args.requests
            print(f"{kind:8s} {per_request[kind]:10,.0f} instructions per request", flush=True)
    if turn:
        print("(each kind with one event-loop turn per request)")
    bare = per_request.get("bare")
    if bare:
        for kind, count in per_request.items():
            if kind != "bare":
                print(f"{kind:8s} {count / bare:5.2f}x the bare httptools protocol")
    uvicorn = per_request.get("uvicorn")
    if uvicorn:
        for kind, count in per_request.items():
            if kind != "uvicorn":
                print(f"{kind:8s} {uvicorn / count:5.2f}x fewer instructions than uvicorn")


if __name__ == "__main__":
    main(sys.argv[1:])
