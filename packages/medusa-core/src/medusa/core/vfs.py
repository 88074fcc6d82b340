"""The filesystem abstraction that HTTP and FTP both serve from: virtual paths, the
:class:`Filesystem` protocol and its errors (:class:`OSFilesystem` is in
:mod:`medusa.core.filesys`).

Protocol handlers never touch OS paths that came from a client.  They speak *virtual paths*:
POSIX strings rooted at ``/``, where ``/`` is the root of whatever is being served.  A
:class:`Filesystem` turns those into real files, and :class:`OSFilesystem` does so for one
directory of the local file system while keeping every operation inside it.

Virtual paths
    * ``/`` separates segments; an absolute virtual path is relative to the served root (so
      ``/etc/passwd`` means ``<root>/etc/passwd``), a relative one is relative to the current
      directory (:meth:`Filesystem.cwd`).
    * ``.`` and empty segments are dropped; ``..`` removes the previous segment and is clamped
      at ``/``, so no amount of ``..`` ever climbs above the root.  This is *logical* resolution,
      done on the string before any symbolic link is looked at (as a shell's ``cd -L`` does):
      ``/link/..`` is ``/`` whatever ``link`` points to.
    * Percent-decoding is the caller's job: HTTP decodes the request target once, before calling
      in, so ``%2e%2e`` arrives here as ``..`` and is clamped like any other ``..``.  Nothing
      here decodes again (decoding twice is how ``%252e`` attacks work).
"""

from __future__ import annotations

import errno
import os
from typing import BinaryIO, NamedTuple, Protocol, runtime_checkable

__all__ = ["Filesystem", "OpenFile", "PathEscapeError"]


class PathEscapeError(PermissionError):
    """A virtual path was refused because it would reach outside the filesystem's root.

    Raised for ``NUL`` characters and backslashes in a path, and for paths whose real location
    (after following symbolic links) is not the root or below it.  It is a
    :class:`PermissionError` (and so an :class:`OSError`, with ``errno`` ``EACCES``), so code that
    maps OS errors to replies (HTTP 403, FTP 550) handles it without a special case.  Its
    ``filename`` is the virtual path the caller gave, never a real one.
    """

    def __init__(self, path: str, reason: str = "path escapes the filesystem root") -> None:
        super().__init__(errno.EACCES, reason, path)


@runtime_checkable
class Filesystem(Protocol):
    """What HTTP and FTP need from a tree of files.

    Every ``path`` argument is a virtual path (see the module documentation): a POSIX string,
    absolute paths relative to the filesystem's root, relative ones to :meth:`cwd`.  Errors are
    :class:`OSError` subclasses, as the ``os`` module raises them: :class:`PathEscapeError` for a
    path that leaves the root, :class:`FileNotFoundError`, :class:`NotADirectoryError`,
    :class:`IsADirectoryError`, :class:`FileExistsError`, :class:`PermissionError`, ...

    An implementation keeps one current directory, so a session that changes directory (an FTP
    login) needs its own instance; one instance with the current directory left at ``/`` can be
    shared by any number of HTTP requests.
    """

    def cwd(self) -> str:
        """Return the current directory as a normalized virtual absolute path."""
        ...

    def chdir(self, path: str) -> None:
        """Make ``path`` the current directory.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            NotADirectoryError: ``path`` is not a directory.
            PathEscapeError: ``path`` is outside the root.
        """
        ...

    def cdup(self) -> None:
        """Go to the parent of the current directory; at ``/``, stay at ``/``."""
        ...

    def normalize(self, path: str) -> str:
        """Return ``path`` as a normalized virtual absolute path (no file system access).

        The result starts with ``/``, has no ``.``, ``..`` or empty segments and no trailing
        ``/`` (except ``/`` itself).  ``..`` never climbs above ``/``.

        Raises:
            PathEscapeError: ``path`` contains a NUL character or a backslash.
        """
        ...

    def translate(self, path: str) -> str:
        """Return the real OS path for ``path``, with symbolic links resolved.

        Raises:
            PathEscapeError: ``path`` is malformed or resolves outside the root.
        """
        ...

    def stat(self, path: str) -> os.stat_result:
        """Return the status of ``path``, following symbolic links."""
        ...

    def lstat(self, path: str) -> os.stat_result:
        """Return the status of ``path`` itself, not following a final symbolic link."""
        ...

    def readlink(self, path: str) -> str:
        """Return the virtual absolute path that the symbolic link ``path`` leads to.

        Raises:
            OSError: ``path`` is not a symbolic link (``EINVAL``).
            PathEscapeError: the link leads outside the root.
        """
        ...

    def exists(self, path: str) -> bool:
        """Return whether ``path`` exists inside the root; never raises."""
        ...

    def isdir(self, path: str) -> bool:
        """Return whether ``path`` is a directory inside the root; never raises."""
        ...

    def isfile(self, path: str) -> bool:
        """Return whether ``path`` is a regular file inside the root; never raises."""
        ...

    def listdir(self, path: str) -> list[str]:
        """Return the names in directory ``path``, sorted, without ``.`` and ``..``."""
        ...

    def open(self, path: str, mode: str = "rb") -> BinaryIO:
        """Open ``path`` in a binary ``mode``: ``"rb"``, ``"wb"``, ``"ab"``, ``"r+b"``, ``"xb"``."""
        ...

    def mkdir(self, path: str) -> None:
        """Create directory ``path`` (its parent must exist)."""
        ...

    def rmdir(self, path: str) -> None:
        """Remove the empty directory ``path``."""
        ...

    def remove(self, path: str) -> None:
        """Remove the file (or symbolic link) ``path``."""
        ...

    def rename(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst``, replacing a file at ``dst``."""
        ...

    def open_read(self, path: str) -> OpenFile:
        """Open ``path`` read-only; return ``(fd, stat, real)``; the caller closes ``fd``."""
        ...

    def getsize(self, path: str) -> int:
        """Return the size of ``path`` in bytes, following symbolic links."""
        ...

    def getmtime(self, path: str) -> float:
        """Return the modification time of ``path`` (seconds since the epoch)."""
        ...


class OpenFile(NamedTuple):
    """A file opened by :meth:`Filesystem.open_read`.

    Attributes:
        fd: the open read-only descriptor; the caller closes it.
        stat: its ``os.fstat``.
        real: the real path that was checked to lie inside the root (a cache can re-``stat``
            it to see whether the file changed).
    """

    fd: int
    stat: os.stat_result
    real: str
