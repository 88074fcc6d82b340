"""Medusa under benchmark: ``/hello`` plus static files from one HTTPServer.

Usage: ``python bench/servers/medusa_hello.py PORT ROOT [uvloop|asyncio]``

Started by ``bench/run.py``, pinned to one CPU; it runs until SIGTERM.
"""

from __future__ import annotations

import sys

from medusa.core import run
from medusa.http import FileHandler, HTTPServer, Request

HELLO = b"Hello, World!"


class HelloHandler:
    """Answers ``GET /hello`` with a fixed 13-byte body."""

    def match(self, request: Request) -> bool:
        return request.path == "/hello"

    def handle_request(self, request: Request) -> None:
        request.respond(200, HELLO, content_type="text/plain")


def main(argv: list[str]) -> None:
    if len(argv) not in (2, 3):
        sys.exit("usage: medusa_hello.py PORT ROOT [uvloop|asyncio]")
    port = int(argv[0])
    root = argv[1]
    backend = argv[2] if len(argv) == 3 else "uvloop"
    # No access log: every server in the benchmark runs without one.
    server = HTTPServer(
        ("127.0.0.1", port), handlers=[HelloHandler(), FileHandler(root)], access_log=None
    )
    run([server], backend=backend)


if __name__ == "__main__":
    main(sys.argv[1:])
