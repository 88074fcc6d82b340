"""Medusa serving ``bench/apps/wsgi_hello.py`` through :class:`~medusa.http.wsgi.WSGIHandler`.

Usage: ``python bench/apps/wsgi_medusa.py PORT [logs|nologs] [THREADS]`` (uvloop when it is
installed). ``logs``: Medusa's default access log (to standard output); ``nologs``: none.
Started by ``bench/wsgi_bench.py``; it runs until SIGTERM.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from bench.apps.wsgi_hello import app

from medusa.core import run
from medusa.http import HTTPServer
from medusa.http.wsgi import WSGIHandler


def main(argv: list[str]) -> None:
    port = int(argv[0])
    logs = len(argv) > 1 and argv[1] == "logs"
    threads = int(argv[2]) if len(argv) > 2 else 8
    handler = WSGIHandler(app, threads=threads)
    options = {} if logs else {"access_log": None}
    server = HTTPServer(("127.0.0.1", port), handlers=[handler], **options)  # type: ignore[arg-type]
    run([server], backend="auto")


if __name__ == "__main__":
    main(sys.argv[1:])
