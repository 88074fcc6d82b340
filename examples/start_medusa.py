"""An example startup script, in the spirit of the original Medusa's ``start_medusa.py``.

Run it with the ``medusa`` command::

    medusa run examples/start_medusa.py                 # http://127.0.0.1:8080/
    medusa run examples/start_medusa.py --port 0 SITE   # a free port, serving SITE

It builds one :class:`~medusa.http.HTTPServer` with the typed API and a handler chain of

* ``GET /status`` — a plain-text page of the server's counters (connections, requests,
  bytes in and out, errors), as the original's status extension showed;
* ``POST /echo`` or ``PUT /echo`` — answers with the request body (whether it came with a
  ``Content-Length`` or chunked), so clients can check request-body handling;
* a :class:`~medusa.http.FileHandler` on ROOT (default: ``packages/medusa-http/demo``
  in this repository) for everything else,

then calls :func:`medusa.core.run`, which serves until SIGINT or SIGTERM.

Options (each also settable through the environment):

``--host HOST`` (``MEDUSA_HOST``, default ``127.0.0.1``), ``--port PORT`` (``MEDUSA_PORT``,
default ``8080``; ``0`` asks the system for a free port, printed at start),
``--backend auto|uvloop|asyncio`` (``MEDUSA_BACKEND``, default ``auto``),
``--grace SECONDS`` (``MEDUSA_GRACE``, default ``10``) and ``ROOT`` (``MEDUSA_ROOT``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import medusa.core
from medusa.core import Server
from medusa.http import FileHandler, HTTPServer, Request

DEFAULT_ROOT = Path(__file__).resolve().parent.parent / "packages" / "medusa-http" / "demo"
"""The demo site bundled with medusa-http in this repository."""


class StatusHandler:
    """``GET /status``: the counters of the servers it watches, as plain text.

    Args:
        servers: the servers whose :attr:`~medusa.core.Server.counters` are shown; the
            list may be filled after the handler is made (the handler is built first, then
            the server that holds it).
        path: the URL path answered.
    """

    def __init__(self, servers: list[Server], path: str = "/status") -> None:
        self.servers = servers
        self.path = path

    def match(self, request: Request) -> bool:
        """Take requests for :attr:`path` only."""
        return request.path == self.path

    def handle_request(self, request: Request) -> None:
        """Answer GET and HEAD with the counters; 405 for other methods."""
        if request.method not in ("GET", "HEAD"):
            request.set_header("Allow", "GET, HEAD")
            request.error(405)
            return
        lines = ["Medusa status", ""]
        for server in self.servers:
            counters = server.counters
            uptime = max(0.0, time.time() - counters.started)
            lines.append(f"{server.name} server on {', '.join(server.listening)}")
            lines.append(f"  uptime       {uptime:.0f} s")
            lines.append(f"  connections  {counters.connections} ({counters.active} open)")
            lines.append(f"  refused      {counters.refused}")
            lines.append(f"  requests     {counters.requests}")
            lines.append(f"  bytes in     {counters.bytes_in}")
            lines.append(f"  bytes out    {counters.bytes_out}")
            lines.append(f"  errors       {counters.errors}")
        body = ("\n".join(lines) + "\n").encode("utf-8")
        request.set_header("Cache-Control", "no-store")
        request.respond(200, body, content_type="text/plain; charset=utf-8")


class EchoHandler:
    """``POST /echo`` and ``PUT /echo``: the request body, sent back as it arrived.

    Args:
        path: the URL path answered.
    """

    def __init__(self, path: str = "/echo") -> None:
        self.path = path

    def match(self, request: Request) -> bool:
        """Take requests for :attr:`path` only."""
        return request.path == self.path

    def handle_request(self, request: Request) -> None:
        """Echo the body with the request's Content-Type; 405 for other methods."""
        if request.method not in ("POST", "PUT"):
            request.set_header("Allow", "POST, PUT")
            request.error(405)
            return
        content_type = request.get_header("content-type") or "application/octet-stream"
        request.respond(200, request.body, content_type=content_type)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the script's arguments (after ``medusa run start_medusa.py``).

    Environment variables give the defaults, so a test or a service manager can set the
    port without touching the command line.
    """
    env = os.environ
    parser = argparse.ArgumentParser(
        prog="start_medusa.py", description="Serve a directory with a status and an echo page."
    )
    parser.add_argument(
        "root",
        nargs="?",
        default=env.get("MEDUSA_ROOT", str(DEFAULT_ROOT)),
        metavar="ROOT",
        help="directory to serve (default: the bundled demo site)",
    )
    parser.add_argument("--host", default=env.get("MEDUSA_HOST", "127.0.0.1"))
    parser.add_argument(
        "--port",
        type=int,
        default=int(env.get("MEDUSA_PORT", "8080")),
        help="TCP port (0: any free port)",
    )
    parser.add_argument(
        "--backend",
        choices=["auto", "uvloop", "asyncio"],
        default=env.get("MEDUSA_BACKEND", "auto"),
    )
    parser.add_argument(
        "--grace", type=float, default=float(env.get("MEDUSA_GRACE", "10")), metavar="SECONDS"
    )
    return parser.parse_args(list(argv))


def build_servers(root: str, host: str = "127.0.0.1", port: int = 8080) -> list[Server]:
    """Build the servers of this script: one HTTP server with the status and echo
    handlers in front of the files of ``root``.

    Raises:
        FileNotFoundError, NotADirectoryError: when ``root`` is not a directory.
    """
    watched: list[Server] = []
    http = HTTPServer(
        (host, port),
        handlers=[StatusHandler(watched), EchoHandler(), FileHandler(root)],
        max_body_size=1 << 20,
    )
    watched.append(http)
    return [http]


def main(argv: Sequence[str] | None = None) -> int:
    """Build the servers and run them until SIGINT or SIGTERM; return the exit status."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not os.path.isdir(args.root):
        reason = "not a directory" if os.path.exists(args.root) else "no such directory"
        print(f"start_medusa.py: {args.root}: {reason}", file=sys.stderr)
        return 2
    medusa.core.run(
        build_servers(args.root, args.host, args.port), backend=args.backend, grace=args.grace
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
