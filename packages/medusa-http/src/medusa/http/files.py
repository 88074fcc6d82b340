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

import errno
import mimetypes
import os
import stat as _stat
from collections.abc import Sequence
from typing import BinaryIO, cast
from urllib.parse import quote

from medusa.core.filesys import Filesystem, OpenFile, OSFilesystem, PathEscapeError
from medusa.core.log import error_logger, peer_text
from medusa.core.producers import FileProducer
from medusa.core.uploads import is_upload_temporary
from medusa.http.charset import DEFAULT_CHARSET, check_charset, with_charset
from medusa.http.compression import GzipProducer, accepts_gzip, compressible
from medusa.http.conditional import entity_tag, evaluate_preconditions, if_range_allows
from medusa.http.dates import http_date
from medusa.http.descriptorfile import DescriptorFile
from medusa.http.filecache import CachedFile, SmallFileCache
from medusa.http.lazyfile import LazyFile
from medusa.http.ranges import UNSATISFIABLE, parse_range
from medusa.http.request import Request

__all__ = ["FileHandler"]

SMALL_FILE = 65536
"""Files up to this many bytes are read and sent with the headers in one write."""

_ALLOW = "GET, HEAD"

NO_LISTING = (
    "Directory listing is not enabled. To enable it: medusa serve --listing (and --status "
    'for the status page at /status), or a handler of type "listing" in medusa.toml.'
)
"""The sentence of the 403 page of a directory without an index file."""


class FileHandler:
    """Serve files from a filesystem (the original's ``default_handler``).

    Args:
        root: a directory path (served through a confined
            :class:`~medusa.core.filesys.OSFilesystem`) or any
            :class:`~medusa.core.filesys.Filesystem`.
        index: file names tried, in order, for a directory request ending in ``/``.
        small_file: files up to this many bytes are sent in one write with the headers.
        gzip: compress responses of compressible types (text/*, JSON, JavaScript, XML, SVG)
            for clients whose Accept-Encoding allows gzip (RFC 9110 §8.4), with
            ``Vary: Accept-Encoding``; never ranges. Only files up to ``small_file`` bytes
            are compressed (once, kept with the cached file); larger ones go out as they are,
            zero-copy.
        gzip_min_size: smallest file compressed, bytes.
        cache_size: bytes of small files kept in memory (0: no cache). A cached file is
            served only while it is the file read: on Linux, inotify reports every change
            to it or to a directory on its way from the root (:mod:`medusa.http.filewatch`),
            and the change drops it before any later request is answered; elsewhere (or a
            filesystem other than :class:`~medusa.core.filesys.OSFilesystem`) each use
            checks ``stat`` of its checked real path (device, inode, size, modification
            and change times). Anything else reopens it through the filesystem's
            confinement check.
        charset: named on textual types (``text/*``, JavaScript, JSON, XML, SVG:
            :func:`~medusa.http.charset.is_textual`) as ``; charset=utf-8``, as nginx's
            ``charset`` does; ``None`` or ``""``: never.

    Raises:
        FileNotFoundError, NotADirectoryError: when ``root`` is not a directory.
        ValueError: when ``charset`` is not a charset name (a token, RFC 9110 §8.3.2).
    """

    def __init__(
        self,
        root: str | os.PathLike[str] | Filesystem,
        *,
        index: Sequence[str] = ("index.html",),
        small_file: int = SMALL_FILE,
        cache_size: int = 32 << 20,
        gzip: bool = False,
        gzip_min_size: int = 1024,
        charset: str | None = DEFAULT_CHARSET,
    ) -> None:
        self.charset = check_charset(charset)
        if isinstance(root, (str, os.PathLike)):
            self.filesystem: Filesystem = OSFilesystem(root)
        else:
            self.filesystem = root
        self.index = tuple(index)
        self.small_file = small_file
        self._types: dict[str, str] = {}
        self._dates: dict[int, str] = {}
        root_path = self.filesystem.root if isinstance(self.filesystem, OSFilesystem) else None
        self.cache = SmallFileCache(cache_size, root_path) if cache_size > 0 else None
        self.gzip = gzip
        self.gzip_min_size = gzip_min_size

    def __repr__(self) -> str:
        return f"<FileHandler {self.filesystem!r}>"

    def match(self, request: Request) -> bool:
        """Take every request (the file handler goes last in a chain)."""
        return True

    def content_type(self, path: str) -> str:
        """Return the media type for a file name (cached per extension), with the
        configured charset when it is textual (``text/plain; charset=utf-8``)."""
        name = path.rpartition("/")[2]
        dot = name.rfind(".")
        ext = name[dot:].lower() if dot > 0 else ""
        found = self._types.get(ext)
        if found is None:
            guessed, encoding = mimetypes.guess_type("x" + ext, strict=False)
            if encoding == "gzip":
                guessed = "application/gzip"
            elif encoding is not None:
                guessed = "application/octet-stream"
            found = with_charset(guessed or "application/octet-stream", self.charset)
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
        cache = self.cache
        if cache is not None and not self.gzip:
            # A cached small file asked for without conditions or ranges (most requests):
            # what serve() would answer, with fewer calls.
            headers = request.headers
            method = request.method
            if (
                (method == "GET" or method == "HEAD")
                and "range" not in headers
                and _CONDITIONAL.isdisjoint(headers)
            ):
                entry = cache.get(request.path)
                if entry is not None:
                    request.respond_prepared(200, entry.fields, entry.body, entry.size)
                    return
        self.serve(request, request.path)

    def serve(self, request: Request, path: str, prefix: str = "") -> None:
        """Answer GET or HEAD for ``path`` in this handler's filesystem.

        Args:
            request: the request.
            path: the virtual path to serve (``request.path`` less any ``prefix``).
            prefix: the URL path this filesystem is mounted at (``/~alice``), put in front
                of ``path`` in redirects.
        """
        method = request.method
        if method != "GET" and method != "HEAD":
            request.set_header("Allow", _ALLOW)
            request.error(405)
            return
        cache = self.cache
        if cache is not None:
            entry = cache.get(path)
            if entry is not None:
                self._cached(request, entry)
                return
        if "\x00" in path:
            request.error(400, "NUL in path")
            return
        if is_upload_temporary(path):
            request.error(404)  # an upload in progress (HTTP's or FTP's) is not there yet
            return
        opened = self._open(request, path)
        if opened is None:
            return
        if _stat.S_ISDIR(opened.stat.st_mode):
            os.close(opened.fd)
            self._directory(request, path, prefix)
            return
        if path.endswith("/"):  # "/file.txt/" names a directory that is not there
            os.close(opened.fd)
            request.error(404)
            return
        self._file(request, opened, path, path)

    def _open(self, request: Request, path: str) -> OpenFile | None:
        """Open ``path`` through the filesystem; answer the error and return None on
        failure."""
        try:
            return self.filesystem.open_read(path)
        except PathEscapeError:
            client = peer_text(request.peer)
            error_logger.info("%s: refused path outside the root: %r", client, path)
            request.error(404)
        except (FileNotFoundError, NotADirectoryError):
            request.error(404)
        except PermissionError:
            request.error(403)
        except OSError as exc:
            if exc.errno in _NO_DESCRIPTORS:
                _unavailable(request, path, exc)
            elif exc.errno == errno.ENAMETOOLONG:
                request.error(404)  # no such file can exist: nothing to log
            else:
                error_logger.warning("%s: cannot open %r: %s", peer_text(request.peer), path, exc)
                request.error(404)
        return None

    def _directory(self, request: Request, path: str, prefix: str = "") -> None:
        if not path.endswith("/"):
            location = quote((prefix + path).encode("utf-8", "surrogateescape")) + "/"
            if request.query:
                location += "?" + request.query
            request.redirect(location)
            return
        for name in self.index:
            try:
                opened = self.filesystem.open_read(path + name)
            except OSError as exc:
                if exc.errno in _NO_DESCRIPTORS:
                    _unavailable(request, path + name, exc)
                    return
                continue
            if _stat.S_ISREG(opened.stat.st_mode):
                self._file(request, opened, path + name, path)
                return
            os.close(opened.fd)
        request.error(403, NO_LISTING)

    def _file(self, request: Request, opened: OpenFile, name: str, key: str) -> None:
        """Serve an opened file; ``name`` gives its type, ``key`` is its cache key."""
        fd, st = opened.fd, opened.stat
        if not _stat.S_ISREG(st.st_mode):
            os.close(fd)
            request.error(403)
            return
        size = st.st_size
        if size <= self.small_file:
            try:
                body = os.pread(fd, size, 0) if size else b""
            except OSError as exc:
                client = peer_text(request.peer)
                error_logger.warning("%s: read of %r failed: %s", client, name, exc)
                request.error(500)
                return
            finally:
                os.close(fd)
            if len(body) != size:  # changed while being read: serve it, but don't cache
                st = os.stat_result((*st[:6], len(body), *st[7:]))
            entry = CachedFile(
                opened.real,
                st,
                body,
                self.content_type(name),
                self._last_modified(st.st_mtime),
            )
            if self.cache is not None and len(body) == size:
                self.cache.put(key, entry)
            self._cached(request, entry)
            return
        etag = entity_tag(st)
        last_modified = self._last_modified(st.st_mtime)
        content_type = self.content_type(name)
        coded = False
        out = [("Content-Type", content_type), ("Last-Modified", last_modified)]
        if self.gzip and compressible(content_type):
            out.append(("Vary", "Accept-Encoding"))
            headers = request.headers
            if "range" not in headers and accepts_gzip(headers.get("accept-encoding")):
                coded = True
                etag = etag[:-1] + '-gzip"'  # a different representation
        out.append(("ETag", etag))
        verdict = self._preconditions(request, etag, st.st_mtime)
        if verdict is not None:
            os.close(fd)
            self._not_modified(request, verdict, out[1:])
            return
        if coded:
            self._send_gzip(request, opened, out)
            return
        out.append(("Accept-Ranges", "bytes"))
        selected = self._range(request, size, etag, last_modified)
        if selected is None:
            os.close(fd)
            return
        first, count, partial = selected
        if partial:
            request.status = 206
            out.append(("Content-Range", f"bytes {first}-{first + count - 1}/{size}"))
        for field, value in out:
            request.set_header(field, value)
        if request.method == "HEAD":
            os.close(fd)
            request.set_length(count)
            request.done()
            return
        request.send_file(self._sendable(request, opened), first, count)
        request.done()

    def _sendable(self, request: Request, opened: OpenFile) -> BinaryIO:
        """The file to send: the open descriptor when the response goes out now, else a
        :class:`~medusa.http.lazyfile.LazyFile` (this descriptor closed, the file opened
        again when its turn comes), so that pipelined responses hold no descriptors."""
        if request.output_waits:
            os.close(opened.fd)
            return cast(BinaryIO, LazyFile(opened.real, opened.stat))
        return cast(BinaryIO, DescriptorFile(opened.fd))  # the producer closes it

    def _send_gzip(self, request: Request, opened: OpenFile, out: list[tuple[str, str]]) -> None:
        """Send a large file gzip-coded as it is read (its length is not known beforehand:
        chunked over HTTP/1.1, ended by closing over HTTP/1.0)."""
        for field, value in out:
            request.set_header(field, value)
        request.set_header("Content-Encoding", "gzip")
        if request.method == "HEAD":
            os.close(opened.fd)
            request.push(b"")  # the head as for GET: no length is known (RFC 9110 §9.3.2)
            request.done()
            return
        file = self._sendable(request, opened)
        request.push_with_producer(GzipProducer(FileProducer(file, 0, opened.stat.st_size)))
        request.done()

    def _cached(self, request: Request, entry: CachedFile) -> None:
        """Serve a small file from memory (validators, ranges, HEAD and gzip included)."""
        fields = entry.fields
        if self.gzip and entry.size >= self.gzip_min_size and compressible(entry.content_type):
            fields += b"Vary: Accept-Encoding\r\n"
            headers = request.headers
            if "range" not in headers and accepts_gzip(headers.get("accept-encoding")):
                coded = entry.gzip_body()
                if coded is not None:
                    verdict = self._preconditions(request, entry.gzip_etag, entry.mtime)
                    if verdict is not None:
                        validators = [
                            ("Last-Modified", entry.last_modified),
                            ("ETag", entry.gzip_etag),
                            ("Vary", "Accept-Encoding"),
                        ]
                        self._not_modified(request, verdict, validators)
                        return
                    request.respond_prepared(200, entry.gzip_fields(), coded, len(coded))
                    return
        verdict = self._preconditions(request, entry.etag, entry.mtime)
        if verdict is not None:
            self._not_modified(
                request, verdict, [("Last-Modified", entry.last_modified), ("ETag", entry.etag)]
            )
            return
        size = entry.size
        if "range" in request.headers:
            selected = self._range(request, size, entry.etag, entry.last_modified)
            if selected is None:
                return
            first, count, partial = selected
            if partial:
                fields += f"Content-Range: bytes {first}-{first + count - 1}/{size}\r\n".encode()
                body = entry.body[first : first + count]
                request.respond_prepared(206, fields, body, count)
                return
        request.respond_prepared(200, fields, entry.body, size)

    def _preconditions(self, request: Request, etag: str, mtime: float) -> int | None:
        headers = request.headers
        if _CONDITIONAL.isdisjoint(headers):
            return None
        return evaluate_preconditions(request.method, headers, etag, mtime)

    def _not_modified(
        self, request: Request, verdict: int, validators: list[tuple[str, str]]
    ) -> None:
        if verdict == 304:
            request.respond(304, headers=validators)
        else:
            request.error(412)

    def _range(
        self, request: Request, size: int, etag: str, last_modified: str
    ) -> tuple[int, int, bool] | None:
        """Return ``(first, count, partial)`` to send: the byte range asked for (``partial``
        True: a 206 answer, RFC 9110 §14.2), or the whole file when there is no usable
        ``Range``; or None after answering 416."""
        headers = request.headers
        range_header = headers.get("range")
        if range_header is None or request.method != "GET":
            return (0, size, False)
        if_range = headers.get("if-range")
        if if_range is not None and not if_range_allows(if_range, etag, last_modified):
            return (0, size, False)
        selected = parse_range(range_header, size)
        if selected == UNSATISFIABLE:
            request.set_header("Content-Range", f"bytes */{size}")
            request.error(416)
            return None
        if selected is None:
            return (0, size, False)
        return (selected[0], selected[1] - selected[0] + 1, True)


_CONDITIONAL = frozenset({"if-match", "if-none-match", "if-modified-since", "if-unmodified-since"})

_NO_DESCRIPTORS = frozenset({errno.EMFILE, errno.ENFILE})
"""``open`` errors meaning the process (or the system) has no descriptor left."""


def _unavailable(request: Request, path: str, exc: OSError) -> None:
    """Answer 503 with ``Retry-After`` (RFC 9110 §15.6.4) for a file that could not be
    opened for want of descriptors, and log it: a passing overload, not a missing file."""
    error_logger.warning(
        "%s: cannot open %r: %s: answered 503", peer_text(request.peer), path, exc.strerror or exc
    )
    request.set_header("Retry-After", "1")
    request.error(503)
