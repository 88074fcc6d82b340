"""Temporary upload files left behind by a process that was killed (``SIGKILL``, a crash,
a power cut) in the middle of an upload: found by a walk of the served roots and removed.

A running upload holds an exclusive ``flock`` on its temporary file
(:class:`~medusa.ftp.transfers.UploadFile`); the kernel drops it when the process dies. A
file named like FTP's temporary files (:data:`~medusa.ftp.upload_names.FTP_TEMPORARY`) is
therefore stale when nobody holds its lock, whichever process (in whichever PID namespace,
on this machine) wrote it. Files created after the walk began are left alone: they belong
to an upload that is running now.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import stat
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from medusa.ftp.upload_names import FTP_TEMPORARY

__all__ = ["StaleUpload", "distinct_roots", "remove_stale_uploads"]

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY


@dataclass(frozen=True, slots=True)
class StaleUpload:
    """A temporary upload file that was removed.

    Attributes:
        path: its real path.
        size: its size, bytes (what had been received when the upload stopped).
        mtime: its last modification, seconds since the epoch.
    """

    path: str
    size: int
    mtime: float


def distinct_roots(roots: Iterable[str]) -> list[str]:
    """Return the real paths of ``roots`` without duplicates and without a root that lies
    inside another (it is walked with its parent)."""
    real = sorted({os.path.realpath(r) for r in roots})
    kept: list[str] = []
    for root in real:
        if not any(root == k or root.startswith(k.rstrip("/") + "/") for k in kept):
            kept.append(root)
    return kept


def remove_stale_uploads(
    roots: Iterable[str], *, before: float, stop: threading.Event | None = None
) -> list[StaleUpload]:
    """Walk ``roots`` (symbolic links are not followed) and remove the regular files named
    like FTP's temporary upload files that no process holds locked and whose status
    changed before ``before``.

    Directories that cannot be read are skipped; a file that cannot be examined or
    removed is left in place. Runs in a worker thread: it only uses the paths given.

    Args:
        roots: directories to walk (see :func:`distinct_roots`).
        before: :func:`time.time` when the walk began; files created since are kept.
        stop: set it to end the walk early (the server is stopping).

    Returns:
        The files removed.
    """
    removed: list[StaleUpload] = []
    for root in distinct_roots(roots):
        for directory, _dirs, files in os.walk(root):
            if stop is not None and stop.is_set():
                return removed
            for name in files:
                if name.endswith(".part") and FTP_TEMPORARY.match(name):
                    found = _remove_if_stale(os.path.join(directory, name), before)
                    if found is not None:
                        removed.append(found)
    return removed


def _remove_if_stale(path: str, before: float) -> StaleUpload | None:
    """Remove ``path`` when it is a regular file older than ``before`` that nobody holds
    locked; return what was removed, else None."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None  # gone, a link, or not readable: leave it
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_ctime >= before:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return None  # a live upload holds it (or locks are not supported: keep it)
        try:
            os.unlink(path)
        except OSError:
            return None
        return StaleUpload(path, st.st_size, st.st_mtime)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
