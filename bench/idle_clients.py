"""Open many keep-alive connections to a server, make one request on each, then hold them idle.

Used by ``bench/run.py`` for the "idle" scenario, pinned to the client CPU::

    python bench/idle_clients.py --port PORT --connections 10000

It talks to ``bench/run.py`` through standard streams, one JSON object per line:

1. once every connection has been opened and has read one complete response (or the
   ``--deadline`` has passed), it prints ``{"event": "ready", ...}``;
2. it then holds the connections idle until it reads a line on standard input (the
   server's memory has been measured) or ``--hold`` seconds have passed;
3. it prints ``{"event": "done", "still_open": N}``: how many connections the server had
   not closed by then, closes everything and exits.

Every step is bounded in time, so the process always ends by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import sys
import time
from dataclasses import dataclass, field

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@dataclass
class Tally:
    """What happened to the connection attempts."""

    opened: list[Stream] = field(default_factory=list)
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def fail(self, reason: str) -> None:
        self.failed += 1
        self.errors[reason] = self.errors.get(reason, 0) + 1


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/hello")
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--in-flight", type=int, default=64, help="connects at once")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds to open all")
    parser.add_argument("--hold", type=float, default=120.0, help="seconds to stay idle at most")
    return parser.parse_args(argv)


def raise_nofile_limit(wanted: int) -> int:
    """Raise RLIMIT_NOFILE towards ``wanted``; return the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def emit(event: str, **fields: object) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


def content_length(head: bytes) -> int:
    """The status must be 200 and the body length declared (the servers all do)."""
    lines = head.split(b"\r\n")
    status = lines[0].split(b" ", 2)
    if len(status) < 2 or status[1] != b"200":
        raise ValueError(f"status {lines[0][:40]!r}")
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    raise ValueError("no content-length")


async def open_one(
    args: argparse.Namespace, request: bytes, gate: asyncio.Semaphore, tally: Tally
) -> None:
    async with gate:
        try:
            reader, writer = await asyncio.open_connection(args.host, args.port)
        except OSError as exc:
            tally.fail(f"connect: {exc.strerror or exc}")
            return
        try:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(content_length(head))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            writer.close()
            tally.fail(f"request: {type(exc).__name__}")
            return
        except ValueError as exc:
            writer.close()
            tally.fail(f"response: {exc}")
            return
        tally.opened.append((reader, writer))


async def wait_for_stdin_line(timeout: float) -> bool:
    """True when a line (or end of file) arrived on standard input before ``timeout``."""
    loop = asyncio.get_running_loop()
    arrived = loop.create_future()
    fd = sys.stdin.fileno()

    def on_readable() -> None:
        if not arrived.done():
            arrived.set_result(None)

    loop.add_reader(fd, on_readable)
    try:
        await asyncio.wait_for(arrived, timeout)
    except TimeoutError:
        return False
    finally:
        loop.remove_reader(fd)
    return True


async def main_async(args: argparse.Namespace) -> None:
    request = (
        f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
        "Connection: keep-alive\r\n\r\n"
    ).encode("ascii")
    gate = asyncio.Semaphore(args.in_flight)
    tally = Tally()
    started = time.monotonic()
    tasks = [
        asyncio.create_task(open_one(args, request, gate, tally)) for _ in range(args.connections)
    ]
    _, pending = await asyncio.wait(tasks, timeout=args.deadline)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
        for _ in pending:
            tally.fail("deadline passed")
    emit(
        "ready",
        established=len(tally.opened),
        failed=tally.failed,
        errors=tally.errors,
        seconds=round(time.monotonic() - started, 3),
    )

    measured = await wait_for_stdin_line(args.hold)
    await asyncio.sleep(0)  # let any pending end-of-file reach the readers
    still_open = sum(1 for reader, _ in tally.opened if not reader.at_eof())
    emit("done", still_open=still_open, measured=measured)

    for _, writer in tally.opened:
        writer.close()
    closing = asyncio.gather(
        *(writer.wait_closed() for _, writer in tally.opened), return_exceptions=True
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(closing, 10.0)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    limit = raise_nofile_limit(args.connections + 256)
    if limit < args.connections + 16:
        print(f"warning: RLIMIT_NOFILE is {limit}", file=sys.stderr)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main(sys.argv[1:])
