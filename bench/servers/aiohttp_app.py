"""aiohttp under benchmark: ``/hello`` plus ``add_static`` for the document root.

Usage: ``python bench/servers/aiohttp_app.py PORT ROOT``

Runs on uvloop, like medusa's headline row, with the access log off.
"""

from __future__ import annotations

import sys
from pathlib import Path

import uvloop
from aiohttp import web

HELLO = b"Hello, World!"


async def hello(request: web.Request) -> web.Response:
    return web.Response(body=HELLO, content_type="text/plain")


def make_app(root: Path) -> web.Application:
    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_static("/", root)
    return app


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        sys.exit("usage: aiohttp_app.py PORT ROOT")
    port = int(argv[0])
    app = make_app(Path(argv[1]))
    web.run_app(
        app,
        host="127.0.0.1",
        port=port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
