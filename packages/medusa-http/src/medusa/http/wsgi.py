"""WSGI (PEP 3333) applications served by medusa-http: :class:`WSGIHandler`.

Work in progress: the handler answers 501 Not Implemented for now.
"""

from __future__ import annotations

from typing import Any

from medusa.http.request import Request

__all__ = ["WSGIHandler"]


class WSGIHandler:
    """Serve a WSGI application (PEP 3333) mounted at ``prefix``.

    Args:
        app: the WSGI callable ``app(environ, start_response) -> iterable of bytes``.
        prefix: the path it is mounted at (``""`` for ``/``, else ``"/api"``: no trailing
            slash); it becomes ``SCRIPT_NAME``.
        threads: how many threads run the application at once (at least 1).

    Raises:
        ValueError: for ``threads`` below 1 or a prefix not starting with ``/``.
    """

    def __init__(self, app: Any, *, prefix: str = "", threads: int = 8) -> None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        prefix = prefix.rstrip("/")
        if prefix and not prefix.startswith("/"):
            raise ValueError(f"prefix must start with '/': {prefix!r}")
        self.app = app
        self.prefix = prefix
        self.threads = threads

    def match(self, request: Request) -> bool:
        """Take requests whose path is the prefix or under it."""
        path = request.path
        prefix = self.prefix
        return not prefix or path == prefix or path.startswith(prefix + "/")

    def handle_request(self, request: Request) -> None:
        """Answer 501 (not implemented yet)."""
        request.error(501, "WSGI hosting is not implemented yet")
