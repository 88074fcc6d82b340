"""Temporary upload files: their names, the lock that marks them live, and the removal of
those left behind.

An upload is written to a hidden temporary file beside its target and renamed over the
target once complete, so that nobody ever reads half a file under the real name:

* medusa-http's ``PUT``: ``.NAME.XXXXXXXX.upload`` (``XXXXXXXX``: eight characters of
  ``a-z``, ``0-9`` and ``_``, as :func:`tempfile.mkstemp` makes them);
* medusa-ftp's ``STOR``/``STOU``: ``.NAME.XXXXXXXX.part`` (eight random lower-case
  hexadecimal digits, made by :func:`ftp_temporary_name`).

A target name so long that its temporary name would pass ``NAME_MAX`` (255 bytes) gets a
temporary name with ``NAME`` cut short, on a UTF-8 character boundary
(:func:`http_temporary_prefix`, :func:`ftp_temporary_name`): the rename still gives the
target its whole name, and the patterns still match.

Both protocols may serve one tree, so each treats a name of either pattern as absent: never
served, listed or overwritten (:func:`is_upload_temporary`). While an upload runs, its
process holds an exclusive :func:`fcntl.flock` on the temporary file (:func:`lock_upload`);
the kernel drops the lock when the process ends, however it ends (``SIGKILL``, a crash). A
file of the pattern that nobody holds locked, and that existed before the search began, is
therefore left over from a dead process, whatever process (or PID namespace) wrote it on
this machine: :func:`remove_stale_uploads` removes those. (``flock`` locks are local: two
machines writing one network file system do not see each other's.)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import posixpath
import re
import secrets
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "FTP_TEMPORARY",
    "HTTP_TEMPORARY",
    "NAME_MAX",
    "StaleUpload",
    "ftp_temporary_name",
    "http_temporary_prefix",
    "is_upload_temporary",
    "lock_upload",
    "remove_stale_uploads",
]

HTTP_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.upload\Z", re.DOTALL)
"""A base name of HTTP's temporary upload files (``.NAME.XXXXXXXX.upload``)."""

FTP_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{8}\.part\Z", re.DOTALL)
"""A base name of FTP's temporary upload files (``.NAME.XXXXXXXX.part``)."""

NAME_MAX = 255
"""Longest file name (one path component) the usual file systems take, bytes of its
UTF-8 form (Linux's ``NAME_MAX``: ext4, XFS, Btrfs, tmpfs)."""

_HTTP_EXTRA = len("..XXXXXXXX.upload")
_FTP_EXTRA = len("..XXXXXXXX.part")

_SUFFIXES = (".upload", ".part")

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOCTTY", 0)
)


def _shorten(name: str, limit: int) -> str:
    """``name`` cut to at most ``limit`` bytes of its UTF-8 form (bytes that were not UTF-8
    kept by ``surrogateescape`` count one each), never inside a character."""
    if len(name.encode("utf-8", "surrogateescape")) <= limit:
        return name
    size = 0
    for index, char in enumerate(name):
        size += len(char.encode("utf-8", "surrogateescape"))
        if size > limit:
            return name[:index]
    return name


def http_temporary_prefix(name: str) -> str:
    """Return the prefix of the temporary file of an HTTP upload to the file ``name`` (a
    base name), ``.name.``, for :func:`tempfile.mkstemp` with the suffix ``.upload``: the
    whole name, ``.name.XXXXXXXX.upload``, fits :data:`NAME_MAX` bytes (``name`` is cut
    short when needed, on a character boundary)."""
    return f".{_shorten(name, NAME_MAX - _HTTP_EXTRA)}."


def ftp_temporary_name(path: str) -> str:
    """Return a hidden name beside ``path`` (a ``/``-separated path, real or virtual) for
    its upload in progress: ``dir/.name.XXXXXXXX.part``, with eight random lower-case
    hexadecimal digits (:data:`FTP_TEMPORARY`); ``name`` is cut short, on a character
    boundary, when the whole would pass :data:`NAME_MAX` bytes. The caller creates it
    exclusively (the name may exist, however unlikely)."""
    head, tail = posixpath.split(path)
    tail = _shorten(tail, NAME_MAX - _FTP_EXTRA)
    return posixpath.join(head, f".{tail}.{secrets.token_hex(4)}.part")


def is_upload_temporary(name: str) -> bool:
    """Return True when ``name`` (a base name, or a path: its last component counts) is
    the name of an upload in progress, HTTP's or FTP's (see the module documentation).

    A cheap test first (the suffix), so a caller may use it on every request."""
    if not name.endswith(_SUFFIXES):
        return False
    name = name[name.rfind("/") + 1 :]
    if not name.startswith("."):
        return False
    pattern = HTTP_TEMPORARY if name.endswith(".upload") else FTP_TEMPORARY
    return pattern.match(name) is not None


def lock_upload(fd: int) -> bool:
    """Mark the temporary file open on ``fd`` as a live upload: an exclusive ``flock``,
    held until the descriptor is closed (or the process ends).

    Returns:
        False when the file system refuses locks; the upload goes on, and
        :func:`remove_stale_uploads`, which cannot lock it either, leaves it alone.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class StaleUpload:
    """A temporary upload file that :func:`remove_stale_uploads` removed.

    Attributes:
        path: its real path.
        size: its size, bytes (what had been received when its upload stopped).
        mtime: its last modification, seconds since the epoch.
    """

    path: str
    size: int
    mtime: float


def remove_stale_uploads(
    roots: Iterable[str | os.PathLike[str]],
    pattern: re.Pattern[str],
    *,
    before: float,
    stop: threading.Event | None = None,
) -> list[StaleUpload]:
    """Walk ``roots`` (symbolic links are not followed) and remove the regular files whose
    base name matches ``pattern`` (:data:`HTTP_TEMPORARY` or :data:`FTP_TEMPORARY`), that
    no process holds locked, and whose status changed before ``before``.

    A directory that cannot be read is skipped; a file that cannot be examined, locked or
    removed is left in place. Blocking: run it before serving, or in a worker thread (it
    touches only the paths given).

    Args:
        roots: directories to walk (one inside another is walked once).
        pattern: the names to consider.
        before: :func:`time.time` when the search began: files made since are kept.
        stop: when given, the walk ends early (before its next directory) once it is set,
            e.g. by a server that is stopping.

    Returns:
        The files removed, for the caller to log.
    """
    removed: list[StaleUpload] = []
    seen: list[str] = []
    for root in sorted({os.path.realpath(r) for r in roots}):
        if any(root == s or root.startswith(s.rstrip("/") + "/") for s in seen):
            continue
        seen.append(root)
        for directory, _dirs, files in os.walk(root):
            if stop is not None and stop.is_set():
                return removed
            for name in files:
                if pattern.match(name):
                    found = _remove_if_stale(os.path.join(directory, name), before)
                    if found is not None:
                        removed.append(found)
    return removed


def _remove_if_stale(path: str, before: float) -> StaleUpload | None:
    """Remove ``path`` when it is a regular file, older than ``before``, that nobody holds
    locked; return what was removed, else None."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None  # gone, a link, or unreadable: leave it
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_ctime >= before:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None  # a live upload holds it
        try:
            os.unlink(path)
        except OSError:
            return None
        return StaleUpload(path, st.st_size, st.st_mtime)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
