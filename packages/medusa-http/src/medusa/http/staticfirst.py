"""Static files in front of an application (``medusa serve ROOT --app SPEC``): what nginx's
``try_files $uri @app`` does in front of uvicorn or gunicorn.

:class:`ExistingFileHandler` is a :class:`~medusa.http.files.FileHandler` that takes only
a ``GET`` or ``HEAD`` whose path names a regular file under its root (symbolic links
followed, inside the root only); every other request (a directory, a missing file, another
method) goes on down the chain, to the application.
"""

from __future__ import annotations

from medusa.core.uploads import is_upload_temporary
from medusa.http.files import FileHandler
from medusa.http.request import Request

__all__ = ["ExistingFileHandler"]


class ExistingFileHandler(FileHandler):
    """Serve the files that exist under a root, and let everything else pass (see the
    module's docstring); the options are :class:`~medusa.http.files.FileHandler`'s."""

    def __repr__(self) -> str:
        return f"existing files of {self.filesystem!r}, then the next handler"

    def match(self, request: Request) -> bool:
        """Take a GET or HEAD of a regular file under the root (one ``stat``; a cached
        small file needs none)."""
        method = request.method
        if method != "GET" and method != "HEAD":
            return False
        path = request.path
        if path.endswith("/") or "\x00" in path or is_upload_temporary(path):
            return False
        cache = self.cache
        if cache is not None and cache.get(path) is not None:
            return True
        return self.filesystem.isfile(path)
