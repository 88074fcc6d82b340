"""HTML directory listings (indexes), off by default.

What Apache's ``mod_autoindex`` and nginx's ``autoindex`` do: a ``GET`` or ``HEAD`` of a
directory (its path ending in ``/``) that has no index file gets an HTML page listing its
entries, directories first, each with its size and modification time (UTC). Nothing lists a
directory unless a :class:`DirectoryListingHandler` is put in a server's handler chain before
the :class:`~medusa.http.files.FileHandler`, which on its own answers such a request with 403::

    HTTPServer(8080, handlers=[DirectoryListingHandler(root), FileHandler(root)])

Names are shown HTML-escaped and linked percent-encoded, so a file called
``<script>alert(1)</script>`` is shown as text and its link leads to it. Entries are looked up
through the filesystem's confinement check: a symbolic link that leads outside the root (or a
dangling one) is not listed, and neither is anything that is not a regular file or a directory
(a FIFO, a socket, a device), which the file handler would refuse anyway, nor the temporary
file of an upload in progress (:func:`medusa.core.uploads.is_upload_temporary`).
"""

from __future__ import annotations

import html
import os
import stat as _stat
import time
from collections.abc import Sequence
from urllib.parse import quote

from medusa.core.filesys import Filesystem, OSFilesystem, PathEscapeError
from medusa.core.log import error_logger, peer_text
from medusa.core.uploads import is_upload_temporary
from medusa.http.request import Request

__all__ = ["DirectoryListingHandler"]

_CONTENT_TYPE = "text/html; charset=utf-8"


def _text(name: str) -> str:
    """Return ``name`` HTML-escaped for display (undecodable bytes shown as U+FFFD)."""
    shown = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return html.escape(shown, quote=True)


def _href(name: str) -> str:
    """Return ``name`` percent-encoded as a relative URL path segment.

    Every reserved character is encoded (``safe=""``), so a name containing ``:``, ``?`` or
    ``#`` cannot be taken for a scheme, a query or a fragment; the original bytes of an
    undecodable name (kept as surrogates by :func:`os.listdir`) are encoded as they are.
    """
    return quote(name.encode("utf-8", "surrogateescape"), safe="")


def _mtime(seconds: float) -> str:
    """Return ``seconds`` since the epoch as ``YYYY-MM-DD HH:MM`` in UTC (``-`` if out of
    range)."""
    try:
        return time.strftime("%Y-%m-%d %H:%M", time.gmtime(seconds))
    except (OverflowError, OSError, ValueError):
        return "-"


class DirectoryListingHandler:
    """Answer ``GET``/``HEAD`` of a directory without an index file with an HTML listing.

    Implements the behaviour of Apache ``mod_autoindex`` / nginx ``autoindex`` (plain table
    form). Listings are off unless this handler is installed, before the
    :class:`~medusa.http.files.FileHandler` of the same tree, in a server's handler chain: it
    takes only the requests that the file handler would answer with 403, and leaves every
    other one (files, directories with an index, a directory without its trailing slash, which
    gets the file handler's 301, other methods) to the rest of the chain.

    Args:
        root: a directory path (served through a confined
            :class:`~medusa.core.filesys.OSFilesystem`) or any
            :class:`~medusa.core.filesys.Filesystem`.
        index: the index file names; a directory holding any of them as a regular file is
            not listed (give the file handler's ``index``).

    Raises:
        FileNotFoundError, NotADirectoryError: when ``root`` is a path that is not a directory.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | Filesystem,
        *,
        index: Sequence[str] = ("index.html",),
    ) -> None:
        if isinstance(root, (str, os.PathLike)):
            self.filesystem: Filesystem = OSFilesystem(root)
        else:
            self.filesystem = root
        self.index = tuple(index)

    def __repr__(self) -> str:
        return f"<DirectoryListingHandler {self.filesystem!r}>"

    def match(self, request: Request) -> bool:
        """Return True for a ``GET`` or ``HEAD`` of a directory inside the root, its path
        ending in ``/``, that has none of the index files.

        Never raises: a malformed path, or one that leaves the root, is not taken (the file
        handler then refuses it).
        """
        if request.method != "GET" and request.method != "HEAD":
            return False
        path = request.path
        if not path.endswith("/") or "\x00" in path:
            return False
        fs = self.filesystem
        if not fs.isdir(path):
            return False
        return not any(fs.isfile(path + name) for name in self.index)

    def handle_request(self, request: Request) -> None:
        """Answer with the listing of the directory at ``request.path``: 200
        ``text/html; charset=utf-8`` (headers only for ``HEAD``).

        The directory is read again here, so a change since :meth:`match` gives 404 (gone,
        or now outside the root) or 403 (not readable) rather than an exception.
        """
        path = request.path
        fs = self.filesystem
        try:
            vpath = fs.normalize(path)
            names = fs.listdir(vpath)
        except PathEscapeError:
            client = peer_text(request.peer)
            error_logger.info("%s: refused path outside the root: %r", client, path)
            request.error(404)
            return
        except (FileNotFoundError, NotADirectoryError):
            request.error(404)
            return
        except PermissionError:
            request.error(403)
            return
        except OSError as exc:
            error_logger.warning("%s: cannot list %r: %s", peer_text(request.peer), path, exc)
            request.error(404)
            return
        body = self.render(vpath, names).encode("utf-8")
        request.respond(200, body, content_type=_CONTENT_TYPE)

    def render(self, vpath: str, names: Sequence[str]) -> str:
        """Return the HTML page for directory ``vpath`` holding ``names``.

        Each name is stat'ed through the filesystem (links followed, confinement checked);
        one that raises :class:`OSError` (:class:`~medusa.core.filesys.PathEscapeError` for a
        link leading outside the root, :class:`FileNotFoundError` for a dangling one) or is
        neither a directory nor a regular file is left out.

        Args:
            vpath: the normalized virtual path of the directory.
            names: the entries' names, as :meth:`~medusa.core.filesys.Filesystem.listdir`
                returns them.

        Returns:
            The whole HTML document.
        """
        fs = self.filesystem
        base = vpath.rstrip("/") + "/"
        entries: list[tuple[bool, str, os.stat_result]] = []
        for name in names:
            if is_upload_temporary(name):
                continue  # an upload in progress (HTTP's or FTP's) is not there yet
            try:
                st = fs.stat(base + name)
            except (OSError, ValueError):  # PathEscapeError is an OSError
                continue
            if _stat.S_ISDIR(st.st_mode):
                entries.append((True, name, st))
            elif _stat.S_ISREG(st.st_mode):
                entries.append((False, name, st))
        entries.sort(key=lambda entry: (not entry[0], entry[1]))
        title = "Index of " + _text(base)
        out = [
            '<!DOCTYPE html>\n<html>\n<head>\n<meta charset="utf-8">\n',
            f"<title>{title}</title>\n</head>\n<body>\n<h1>{title}</h1>\n<table>\n",
            "<tr><th>Name</th><th>Last modified</th><th>Size</th></tr>\n",
        ]
        if base != "/":
            out.append('<tr><td><a href="../">Parent Directory</a></td><td></td><td>-</td></tr>\n')
        for is_dir, name, st in entries:
            slash = "/" if is_dir else ""
            size = "-" if is_dir else str(st.st_size)
            out.append(
                f'<tr><td><a href="{_href(name)}{slash}">{_text(name)}{slash}</a></td>'
                f"<td>{_mtime(st.st_mtime)}</td><td>{size}</td></tr>\n"
            )
        out.append("</table>\n</body>\n</html>\n")
        return "".join(out)
