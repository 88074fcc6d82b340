"""Publishing: a site that its authors update over HTTP, the original Medusa's demo.

Reads (GET, HEAD) are public and served by a :class:`~medusa.http.files.FileHandler`; PUT
and DELETE go through Basic authentication (RFC 7617) to a
:class:`~medusa.http.put.PutHandler` on the same directory. So ``curl -T page.html -u
author http://host/page.html`` publishes a page and everyone can read it at once.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Sequence

from medusa.core.passwords import PasswordFile
from medusa.http.auth import BasicAuthHandler
from medusa.http.body import BodySink
from medusa.http.files import FileHandler
from medusa.http.handler import NotDoneYet
from medusa.http.put import DEFAULT_MAX_SIZE, PutHandler
from medusa.http.request import Request

__all__ = ["PublishingHandler"]


class PublishingHandler:
    """Public reads, authenticated writes, on one directory.

    Args:
        root: the site's directory (``str`` or path-like).
        passwords: a :class:`~medusa.core.passwords.PasswordFile` or its path: the authors.
        realm: the authentication realm shown by browsers and clients.
        max_size: largest file accepted by PUT, bytes.
        delete: whether authors may DELETE files.
        index: index file names for directories (reads).

    Raises:
        FileNotFoundError, NotADirectoryError: when ``root`` is not a directory.
        OSError: when the password file cannot be read.
        ValueError: for a bad ``realm`` or a negative ``max_size``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        passwords: PasswordFile | str | os.PathLike[str],
        *,
        realm: str = "Publishing",
        max_size: int = DEFAULT_MAX_SIZE,
        delete: bool = True,
        index: Sequence[str] = ("index.html",),
    ) -> None:
        self.put = PutHandler(root, max_size=max_size, delete=delete)
        self.writes = BasicAuthHandler(self.put, passwords, realm=realm)
        self.reads = FileHandler(root, index=index)

    def __repr__(self) -> str:
        return f"<PublishingHandler {self.put.filesystem.root} realm={self.writes.realm!r}>"

    def match(self, request: Request) -> bool:
        """Take every request: writes go to authentication and PUT, the rest to files."""
        return True

    def handle_request(self, request: Request) -> Awaitable[None] | NotDoneYet | None:
        """Answer a write after authentication, a read from the files."""
        if self.writes.match(request):
            return self.writes.handle_request(request)
        if request.method in ("PUT", "DELETE"):  # DELETE when not allowed
            request.set_header("Allow", ", ".join(["GET", "HEAD", *sorted(self.put.methods)]))
            request.error(405)
            return None
        self.reads.handle_request(request)  # answers before it returns
        return None

    def receive_body(self, request: Request) -> BodySink | Awaitable[BodySink | None] | None:
        """Check the author's credentials, then the PUT, before the body is read."""
        if self.writes.match(request):
            return self.writes.receive_body(request)
        return None
