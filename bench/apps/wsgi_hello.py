"""The WSGI hello of ``bench/wsgi_bench.py``: a 13-byte ``text/plain`` body with its
``Content-Length``, the same application under every server (``wsgi_hello:app``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

BODY = b"Hello, World!"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    """Answer every request with :data:`BODY`."""
    start_response("200 OK", HEADERS)
    return [BODY]
