"""``~user`` directories (the original Medusa's ``unix_user_handler``; Apache's mod_userdir):
``/~alice/page.html`` serves ``page.html`` from ``public_html`` in alice's home directory."""

from __future__ import annotations

import os
import pwd
from collections.abc import Callable
from urllib.parse import quote

from medusa.core.filesys import OSFilesystem
from medusa.http.files import FileHandler
from medusa.http.request import Request

__all__ = ["UserDirHandler", "unix_home"]


def unix_home(name: str) -> str | None:
    """Return the home directory of Unix user ``name`` from the password database, or None
    when there is no such user."""
    try:
        return pwd.getpwnam(name).pw_dir
    except (KeyError, ValueError):
        return None


class UserDirHandler:
    """Serve ``/~name/...`` from ``<home of name>/<public_dir>``, confined there.

    ``/~name`` answers 301 to ``/~name/``; an unknown user, a user without the directory, or
    a path leaving it answers 404. Files are served as by
    :class:`~medusa.http.files.FileHandler` (validators, ranges, index files).

    Args:
        public_dir: the directory inside each home that is published (``public_html``).
        home_for: maps a user name to a home directory or None (default: the Unix password
            database, :func:`unix_home`).
        max_users: file handlers kept for recently seen users.

    Raises:
        ValueError: when ``public_dir`` is empty, absolute or contains ``..``.
    """

    def __init__(
        self,
        public_dir: str = "public_html",
        *,
        home_for: Callable[[str], str | None] = unix_home,
        max_users: int = 256,
    ) -> None:
        if not public_dir or os.path.isabs(public_dir) or ".." in public_dir.split("/"):
            raise ValueError(f"public_dir must be a relative path inside the home: {public_dir!r}")
        self.public_dir = public_dir
        self.home_for = home_for
        self.max_users = max_users
        self._handlers: dict[str, FileHandler | None] = {}

    def __repr__(self) -> str:
        return f"<UserDirHandler ~user/{self.public_dir}>"

    def match(self, request: Request) -> bool:
        """Take ``/~name`` and everything below it."""
        return request.path.startswith("/~")

    def _handler(self, name: str) -> FileHandler | None:
        if name in self._handlers:
            return self._handlers[name]
        handler: FileHandler | None = None
        home = self.home_for(name) if name and "\x00" not in name else None
        if home:
            try:
                handler = FileHandler(OSFilesystem(os.path.join(home, self.public_dir)))
            except OSError:
                handler = None
        if len(self._handlers) >= self.max_users:
            self._handlers.clear()
        self._handlers[name] = handler
        return handler

    def handle_request(self, request: Request) -> None:
        """Serve the file, or answer 301/404."""
        name, slash, rest = request.path[2:].partition("/")
        handler = self._handler(name)
        if handler is None:
            request.error(404)
            return
        if not slash:
            request.redirect(quote(f"/~{name}/".encode("utf-8", "surrogateescape")))
            return
        handler.serve(request, "/" + rest, prefix=f"/~{name}")
