"""aiohttp under benchmark: ``/hello`` plus ``add_static`` for the document root.

Usage: ``python bench/servers/aiohttp_app.py PORT ROOT [--default-logs]``

Runs on uvloop, like medusa's headline row. Without ``--default-logs`` the access log is
off (``access_log=None``) and nothing is printed. With it, ``web.run_app`` keeps its
defaults (the ``aiohttp.access`` logger, one line per response, and the "Running on"
banner on stdout), and logging is configured as aiohttp's documentation shows
(``logging.basicConfig``, level INFO here so that access lines are written): without
that, the ``aiohttp.access`` logger has no handler and drops every line.
"""

from __future__ import annotations

import logging
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
    default_logs = "--default-logs" in argv
    args = [arg for arg in argv if arg != "--default-logs"]
    if len(args) != 2:
        sys.exit("usage: aiohttp_app.py PORT ROOT [--default-logs]")
    port = int(args[0])
    app = make_app(Path(args[1]))
    loop = uvloop.new_event_loop()
    if default_logs:
        logging.basicConfig(level=logging.INFO)  # a StreamHandler on stderr
        web.run_app(app, host="127.0.0.1", port=port, loop=loop)
    else:
        web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main(sys.argv[1:])
