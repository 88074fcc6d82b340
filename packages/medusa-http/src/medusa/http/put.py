"""PUT and DELETE of files under a directory (RFC 9110 §9.3.4 and §9.3.5).

The body of a PUT is streamed (:mod:`medusa.http.body`) into a temporary file created in the
target's own directory, and renamed over the target only when the whole body has arrived and
reached the disk (``fsync``). A connection cut halfway, a body over the limit or a full disk
therefore never leaves a half-written file under the target's name, and never destroys the
previous version: the temporary file is removed and the failure logged with the client's
address and the bytes received.

The temporary file, ``.NAME.XXXXXXXX.upload`` (see :mod:`medusa.core.uploads`), is locked
(``flock``) while the upload runs; one that nobody holds locked was left by a process that
died mid-upload (``SIGKILL``, a crash): a :class:`PutHandler` removes those under its root
when it is made (at server start), one log line each. Such names are never served or listed
(:class:`~medusa.http.files.FileHandler`) and cannot be written or deleted (403).

Answers: 201 Created (with ``Location``) for a new file, 204 No Content for a replaced one;
400 for a ``Content-Range`` (a partial PUT, RFC 9110 §14.5); 403 for a path outside the
root (dot segments that climb above it included, RFC 3986 §5.2.4) or a temporary upload
name; 405 for a directory; 409 when the parent directory is missing; 411 when the request
has neither ``Content-Length`` nor chunked framing; 412 when ``If-Match`` /
``If-None-Match`` / ``If-Unmodified-Since`` fail (``If-None-Match: *`` makes a PUT create
only); 414 for a file name (a path component) over 255 bytes of UTF-8 (``NAME_MAX``: no
usual file system takes it; the temporary name of a long name that fits is cut short, see
:mod:`medusa.core.uploads`); 413 above ``max_size``; 507 when the disk is full. All of
these except the last two are decided from the request's head, before ``100 Continue`` and
before any of the body is read.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import stat as _stat
import tempfile
import time
from typing import IO
from urllib.parse import quote

from medusa.core.filesys import OSFilesystem, PathEscapeError
from medusa.core.log import error_logger, peer_text, printable
from medusa.core.uploads import (
    HTTP_TEMPORARY,
    NAME_MAX,
    http_temporary_prefix,
    is_upload_temporary,
    lock_upload,
    remove_stale_uploads,
)
from medusa.http.conditional import entity_tag, evaluate_preconditions
from medusa.http.digits import parse_digits
from medusa.http.request import Request

__all__ = ["PutHandler", "TemporaryFileUpload", "climbs_above_root", "remove_stale"]

DEFAULT_MAX_SIZE = 100 << 20
"""Largest body a :class:`PutHandler` accepts by default, bytes (100 MiB)."""

_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
"""Write errors answered 507 Insufficient Storage (RFC 4918 §11.5): no room for the file."""


def _client(request: Request) -> str:
    return peer_text(request.peer)


def climbs_above_root(path: str) -> bool:
    """Return True when ``path``'s ``..`` segments climb above its first ``/`` (RFC 3986
    §5.2.4 would drop them there: ``/a/../../b`` is ``/b``). A PUT or DELETE of such a path
    is refused (403) rather than stored at the clamped place."""
    depth = 0
    for segment in path.split("/"):
        if segment == "..":
            depth -= 1
            if depth < 0:
                return True
        elif segment and segment != ".":
            depth += 1
    return False


def remove_stale(root: str) -> int:
    """Remove the HTTP temporary upload files under ``root`` that no live upload holds
    (left by a process that died mid-upload), logging each; return how many."""
    removed = remove_stale_uploads([root], HTTP_TEMPORARY, before=time.time())
    for stale in removed:
        error_logger.warning(
            "removed %s: a temporary upload file left by a process that stopped "
            "(%d bytes, last written %s)",
            printable(stale.path),
            stale.size,
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stale.mtime)),
        )
    return len(removed)


class TemporaryFileUpload:
    """A :class:`~medusa.http.body.BodySink` writing a body to a temporary file beside its
    target, renamed over the target by :meth:`commit`.

    Args:
        request: the PUT request (its answer is given here when a write fails).
        target: the real path of the file to create or replace.
        max_size: most bytes accepted; more gives 413.
        mode: permission bits of a new file (an existing file's bits are kept).

    Raises:
        OSError: when the temporary file cannot be created (permissions, full disk).
    """

    __slots__ = ("_file", "failed", "max_size", "request", "size", "target", "temporary")

    def __init__(self, request: Request, target: str, max_size: int, mode: int) -> None:
        self.request = request
        self.target = target
        self.max_size = max_size
        self.size = 0
        self.failed = False
        directory, name = os.path.split(target)
        fd, self.temporary = tempfile.mkstemp(
            prefix=http_temporary_prefix(name), suffix=".upload", dir=directory
        )
        try:
            lock_upload(fd)  # held while this upload lives: it is not stale
            with contextlib.suppress(FileNotFoundError):
                mode = _stat.S_IMODE(os.stat(target).st_mode)
            os.fchmod(fd, mode)
            self._file: IO[bytes] | None = os.fdopen(fd, "wb")
        except BaseException:
            os.close(fd)
            os.unlink(self.temporary)
            raise

    def write(self, data: bytes) -> None:
        """Append ``data``; over ``max_size`` answer 413, on a full disk 507, on another
        write error 500 (each time the temporary file is removed and the reason logged)."""
        if self.failed:
            return
        self.size += len(data)
        if self.size > self.max_size:
            self._fail(413, f"body over the {self.max_size}-byte limit")
            return
        file = self._file
        assert file is not None
        try:
            file.write(data)
        except OSError as exc:
            self._write_failed(exc)

    def _write_failed(self, exc: OSError) -> None:
        status = 507 if exc.errno in _FULL else 500
        self._fail(status, f"write failed: {exc.strerror or exc}")

    def _fail(self, status: int, reason: str) -> None:
        self.abort(reason)
        if not self.request.answered:
            self.request.error(status)

    def abort(self, reason: str) -> None:
        """Remove the temporary file and log ``reason``, once; the target is untouched."""
        if self.failed:
            return
        self.failed = True
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.temporary)
        request = self.request
        error_logger.warning(
            "upload of %s from %s abandoned after %d bytes: %s",
            printable(request.path),
            _client(request),
            self.size,
            printable(reason),
        )

    async def commit(self) -> bool:
        """Flush, ``fsync`` (in a thread), and rename the file over the target.

        Returns:
            True if the target existed before (so it was replaced), False if created.

        Raises:
            OSError: when flushing, syncing or renaming fails (the temporary file is
                removed first and the failure logged).
        """
        file = self._file
        assert file is not None
        assert not self.failed
        try:
            file.flush()
            await asyncio.get_running_loop().run_in_executor(None, os.fsync, file.fileno())
            file.close()
            self._file = None
            existed = os.path.lexists(self.target)
            os.replace(self.temporary, self.target)
        except OSError as exc:
            self.abort(f"could not store the file: {exc}")
            raise
        self.failed = True  # nothing left to undo
        return existed


class PutHandler:
    """Store files sent with PUT, and delete them with DELETE when allowed.

    Requests whose path starts with ``prefix`` and whose method is PUT (or DELETE) are
    taken; everything else goes on down the chain, so a
    :class:`~medusa.http.files.FileHandler` after this one serves the files. Wrap it in a
    :class:`~medusa.http.auth.BasicAuthHandler` (or use
    :class:`~medusa.http.publish.PublishingHandler`) before exposing it.

    Args:
        root: the directory files are stored in (``str`` or path-like).
        prefix: the URL path mapped onto ``root`` (``"/"``: the whole site).
        max_size: largest body accepted, bytes (413 above).
        delete: also accept DELETE of files (204; 404 when missing; 405 on a directory).
        mode: permission bits of new files (exactly these: the process umask does not
            apply); a replaced file keeps its own.

    Temporary upload files under ``root`` that no running upload holds are removed here,
    each with a log line (see the module documentation).

    Raises:
        FileNotFoundError, NotADirectoryError: when ``root`` is not a directory.
        ValueError: when ``max_size`` is negative or ``prefix`` does not start with ``/``.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        prefix: str = "/",
        max_size: int = DEFAULT_MAX_SIZE,
        delete: bool = False,
        mode: int = 0o644,
    ) -> None:
        if max_size < 0:
            raise ValueError("max_size must not be negative")
        if not prefix.startswith("/"):
            raise ValueError(f"prefix must start with '/': {prefix!r}")
        self.filesystem = OSFilesystem(root)
        self.prefix = prefix.rstrip("/") + "/"
        self.max_size = max_size
        self.methods = frozenset({"PUT", "DELETE"} if delete else {"PUT"})
        self.mode = mode
        remove_stale(self.filesystem.root)

    def __repr__(self) -> str:
        return (
            f"<PutHandler {self.filesystem.root} at {self.prefix} methods="
            f"{','.join(sorted(self.methods))}>"
        )

    def match(self, request: Request) -> bool:
        """Take PUT (and DELETE when allowed) below :attr:`prefix`."""
        return request.method in self.methods and (request.path + "/").startswith(self.prefix)

    # -- deciding from the head ------------------------------------------------------------

    def _target(self, request: Request) -> str | None:
        """Check everything that can be checked from the head; return the real target
        path, or None once the request was answered."""
        path = "/" + request.path[len(self.prefix) :]
        if request.path.endswith("/") or path == "/":
            self._not_a_file(request)
            return None
        if is_upload_temporary(path):
            error_logger.warning(
                "%s %s from %s: a temporary upload name",
                request.method,
                printable(request.path),
                _client(request),
            )
            request.error(403, "This name is reserved for uploads in progress.")
            return None
        try:
            if "/.." in path and climbs_above_root(path):
                raise PathEscapeError(path, "dot segments above the root")
            target = self.filesystem.translate(path)
        except PathEscapeError:
            error_logger.warning(
                "%s %s from %s: outside the root",
                request.method,
                printable(request.path),
                _client(request),
            )
            request.error(403)
            return None
        try:
            st: os.stat_result | None = os.stat(target)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                self._too_long(request)
            else:
                request.error(409, "The parent of this path is not a directory.")
            return None
        if st is None:
            if request.method == "DELETE":
                request.error(404)
                return None
            if not os.path.isdir(os.path.dirname(target)):
                request.error(409, "The parent directory does not exist.")
                return None
            # No current representation: If-Match fails, If-None-Match (even "*") holds,
            # If-Unmodified-Since is ignored (RFC 9110 §13.1.1, §13.1.2, §13.1.4).
            if "if-match" in request.headers:
                request.error(412)
                return None
            return target
        if _stat.S_ISDIR(st.st_mode):
            self._not_a_file(request)
            return None
        if evaluate_preconditions(request.method, request.headers, entity_tag(st), st.st_mtime):
            request.error(412)
            return None
        return target

    def _too_long(self, request: Request) -> None:
        """A name in the path is over :data:`~medusa.core.uploads.NAME_MAX` bytes (or the
        whole path over the system's ``PATH_MAX``): 414 (RFC 9110 §15.5.15), logged."""
        error_logger.info(
            "%s %s from %s: 414 file name too long",
            request.method,
            printable(request.path),
            _client(request),
        )
        request.error(414, f"The file name is too long (at most {NAME_MAX} bytes).")

    def _not_a_file(self, request: Request) -> None:
        request.set_header("Allow", "GET, HEAD")
        request.error(405, "A directory cannot be replaced or deleted.")

    def receive_body(self, request: Request) -> TemporaryFileUpload | None:
        """Decide on a PUT before its body is read (:class:`~medusa.http.body.BodyReceiver`):
        answer 400/403/405/409/412/413, or return the temporary file the body goes to."""
        if request.method != "PUT":
            return None  # a DELETE with a body: buffered and ignored
        if "content-range" in request.headers:
            request.error(400, "Partial PUT (Content-Range) is not supported.")
            return None
        length = request.headers.get("content-length")
        size = None if length is None else parse_digits(length)  # the channel checked it
        if size is not None and size > self.max_size:
            request.error(413)
            return None
        target = self._target(request)
        if target is None:
            return None
        return self._open(request, target)

    def _open(self, request: Request, target: str) -> TemporaryFileUpload | None:
        try:
            return TemporaryFileUpload(request, target, self.max_size, self.mode)
        except OSError as exc:
            error_logger.error(
                "PUT %s from %s: cannot create a temporary file: %s",
                printable(request.path),
                _client(request),
                printable(str(exc)),
            )
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                request.set_header("Retry-After", "1")  # out of descriptors: try again later
                request.error(503)
            else:
                request.error(507 if exc.errno in _FULL else 500)
            return None

    # -- answering -------------------------------------------------------------------------

    async def handle_request(self, request: Request) -> None:
        """Finish a PUT (commit its file; 201 or 204) or carry out a DELETE."""
        if request.method == "DELETE":
            self._delete(request)
            return
        upload = request.body_sink
        if upload is None:
            # No body was announced: "Content-Length: 0" stores an empty file; a request
            # with no framing at all is refused (RFC 9110 §8.6).
            if "content-length" not in request.headers:
                request.error(411)
                return
            target = self._target(request)
            if target is None:
                return
            upload = self._open(request, target)
            if upload is None:
                return
        assert isinstance(upload, TemporaryFileUpload)
        if upload.failed:
            return
        try:
            replaced = await upload.commit()
        except OSError as exc:
            request.error(507 if exc.errno in _FULL else 500)
            return
        error_logger.info(
            "%s stored %d bytes from %s", printable(request.path), upload.size, _client(request)
        )
        if replaced:
            request.respond(204, b"")
        else:
            request.set_header("Location", quote(request.path, errors="surrogateescape"))
            request.respond(201, b"Created.\n", content_type="text/plain")

    def _delete(self, request: Request) -> None:
        target = self._target(request)
        if target is None:
            return
        try:
            os.unlink(target)
        except FileNotFoundError:
            request.error(404)
            return
        except OSError as exc:
            error_logger.error(
                "DELETE %s from %s failed: %s",
                printable(request.path),
                _client(request),
                printable(str(exc)),
            )
            request.error(403 if exc.errno in (errno.EACCES, errno.EPERM) else 500)
            return
        error_logger.info("%s deleted by %s", printable(request.path), _client(request))
        request.respond(204, b"")
