"""The default file handler: GET and HEAD over a :class:`~medusa.core.filesys.Filesystem`.

Content-Type from :mod:`mimetypes`; Content-Length; Last-Modified and ETag validators with
If-Modified-Since / If-None-Match (304) and If-Match / If-Unmodified-Since (412), RFC 9110
§13; single byte ranges (206, or 416 when unsatisfiable) honouring If-Range, RFC 9110 §14;
a directory without its trailing slash gets 301 to the slash form, a directory with one
serves its index file (403 when there is none: listings are off); other methods get 405 with
``Allow``. Small files go out with the headers in one write; larger ones through a
:class:`~medusa.core.producers.FileProducer` (``os.sendfile`` when the transport allows).
"""

from __future__ import annotations

import mimetypes
import os
import stat as _stat
from collections.abc import Sequence
from urllib.parse import quote

from medusa.core.filesys import Filesystem, OSFilesystem, PathEscapeError
from medusa.core.log import error_logger
from medusa.http.conditional import entity_tag, evaluate_preconditions, if_range_allows
from medusa.http.dates import http_date
from medusa.http.ranges import UNSATISFIABLE, parse_range
from medusa.http.request import Request

__all__ = ["FileHandler"]

SMALL_FILE = 65536
"""Files up to this many bytes are read and sent with the headers in one write."""

_ALLOW = "GET, HEAD"


class FileHandler:
    """Serve files from a filesystem (the original's ``default_handler``).

    Args:
        root: a directory path (served through a confined
            :class:`~medusa.core.filesys.OSFilesystem`) or any
            :class:`~medusa.core.filesys.Filesystem`.
        index: file names tried, in order, for a directory request ending in ``/``.
        small_file: files up to this many bytes are sent in one write with the headers.

    Raises:
        FileNotFoundError, NotADirectoryError: when ``root`` is not a directory.
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | Filesystem,
        *,
        index: Sequence[str] = ("index.html",),
        small_file: int = SMALL_FILE,
    ) -> None:
        if isinstance(root, (str, os.PathLike)):
            self.filesystem: Filesystem = OSFilesystem(root)
        else:
            self.filesystem = root
        self.index = tuple(index)
        self.small_file = small_file
        self._types: dict[str, str] = {}
        self._dates: dict[int, str] = {}

    def __repr__(self) -> str:
        return f"<FileHandler {self.filesystem!r}>"

    def match(self, request: Request) -> bool:
        """Take every request (the file handler goes last in a chain)."""
        return True

    def content_type(self, path: str) -> str:
        """Return the media type for a file name (cached per extension)."""
        ext = os.path.splitext(path)[1].lower()
        found = self._types.get(ext)
        if found is None:
            guessed, encoding = mimetypes.guess_type("x" + ext, strict=False)
            if encoding == "gzip":
                guessed = "application/gzip"
            elif encoding is not None:
                guessed = "application/octet-stream"
            found = guessed or "application/octet-stream"
            if len(self._types) < 4096:
                self._types[ext] = found
        return found

    def _last_modified(self, mtime: float) -> str:
        key = int(mtime)
        value = self._dates.get(key)
        if value is None:
            if len(self._dates) > 4096:
                self._dates.clear()
            value = self._dates[key] = http_date(key)
        return value

    def handle_request(self, request: Request) -> None:
        """Answer GET or HEAD for the file or directory at ``request.path``."""
        method = request.method
        if method != "GET" and method != "HEAD":
            request.set_header("Allow", _ALLOW)
            request.error(405)
            return
        path = request.path
        if "\x00" in path:
            request.error(400, "NUL in path")
            return
        try:
            fd, st = self.filesystem.open_read(path)
        except PathEscapeError:
            error_logger.info("%r: refused path outside the root: %r", request.peer, path)
            request.error(404)
            return
        except (FileNotFoundError, NotADirectoryError):
            request.error(404)
            return
        except PermissionError:
            request.error(403)
            return
        except OSError as exc:
            error_logger.warning("%r: cannot open %r: %s", request.peer, path, exc)
            request.error(404)
            return
        if _stat.S_ISDIR(st.st_mode):
            os.close(fd)
            self._directory(request, path)
            return
        if not _stat.S_ISREG(st.st_mode):
            os.close(fd)
            request.error(403)
            return
        self._file(request, fd, st, path)

    def _directory(self, request: Request, path: str) -> None:
        if not path.endswith("/"):
            location = quote(path.encode("utf-8", "surrogateescape")) + "/"
            if request.query:
                location += "?" + request.query
            host = request.headers.get("host")
            if host and "/" not in host and "\\" not in host:
                scheme = "https" if request.channel.http.ssl is not None else "http"
                location = f"{scheme}://{host}{location}"
            request.set_header("Location", location)
            request.error(301)
            return
        for name in self.index:
            try:
                fd, st = self.filesystem.open_read(path + name)
            except OSError:
                continue
            if _stat.S_ISREG(st.st_mode):
                self._file(request, fd, st, path + name)
                return
            os.close(fd)
        request.error(403, "Directory listing is not enabled.")

    def _file(self, request: Request, fd: int, st: os.stat_result, path: str) -> None:
        size = st.st_size
        etag = entity_tag(st)
        last_modified = self._last_modified(st.st_mtime)
        headers = request.headers
        out = [
            ("Content-Type", self.content_type(path)),
            ("Last-Modified", last_modified),
            ("ETag", etag),
            ("Accept-Ranges", "bytes"),
        ]
        if len(headers) > 2:  # a bare GET has only Host (and maybe User-Agent)
            verdict = evaluate_preconditions(request.method, headers, etag, st.st_mtime)
            if verdict is not None:
                os.close(fd)
                if verdict == 304:
                    request.respond(304, headers=out[1:3])
                else:
                    request.error(412)
                return
        first, count = 0, size
        range_header = headers.get("range")
        if range_header is not None and request.method == "GET":
            if_range = headers.get("if-range")
            if if_range is None or if_range_allows(if_range, etag, last_modified):
                selected = parse_range(range_header, size)
                if selected == UNSATISFIABLE:
                    os.close(fd)
                    request.set_header("Content-Range", f"bytes */{size}")
                    request.error(416)
                    return
                if selected is not None:
                    first, last = selected
                    count = last - first + 1
                    request.status = 206
                    out.append(("Content-Range", f"bytes {first}-{last}/{size}"))
        if request.method == "HEAD" or count <= self.small_file:
            try:
                body = os.pread(fd, count, first) if request.method == "GET" and count else b""
            except OSError as exc:
                error_logger.warning("%r: read of %r failed: %s", request.peer, path, exc)
                request.error(500)
                return
            finally:
                os.close(fd)
            if request.method == "HEAD":
                request.set_length(count)
                for name, value in out:
                    request.set_header(name, value)
                request.done()
                return
            request.respond(request.status, body, headers=out)
            return
        for name, value in out:
            request.set_header(name, value)
        request.send_file(open(fd, "rb", buffering=0), first, count)  # noqa: SIM115
        request.done()
