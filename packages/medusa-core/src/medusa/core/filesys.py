"""A :class:`~medusa.core.vfs.Filesystem` over one directory of the local file system,
kept inside it: :class:`OSFilesystem`. Virtual paths are described in :mod:`medusa.core.vfs`.

Confinement (:class:`OSFilesystem`)
    Several checks stand between a client and the rest of the machine:

    1. NUL characters are refused (:class:`PathEscapeError`): the OS would cut the path short
       there, so the name checked would not be the name used.
    2. Backslashes are refused (:class:`PathEscapeError`): on Windows they are path separators,
       so ``..\\..\\`` would slip through the ``..`` clamping above.  On POSIX a backslash is a
       legal file-name character, but refusing it everywhere keeps behaviour identical on every
       platform and costs nothing that a web or FTP client needs.
    3. ``..`` is clamped at the virtual root (see above).
    4. Symbolic links: after the virtual path is joined to the root, its ``os.path.realpath``
       must be the root itself or lie under it.  The root is resolved once, at construction, so
       a check is one ``realpath`` and a string comparison.  The comparison is the one
       ``os.path.commonpath([root, p]) == root`` makes for two normalized absolute paths, done as
       a prefix test on ``root + os.sep`` so that a sibling such as ``/srv/www-private`` never
       passes for ``/srv/www``.

    Operations that follow the last component (stat, open, listdir, chdir, ...) resolve the
    whole path.  Operations that act on a directory *entry* rather than on what it points to
    (lstat, readlink, remove, rmdir, rename, mkdir) resolve only the parent directory and append
    the final name: the entry itself lives in that parent, so if the parent is inside the root,
    the entry is too, even when the entry is a symbolic link whose target is outside.  Removing
    or renaming such a link changes nothing outside the root (the kernel acts on the link, not
    its target), while resolving the full path would refuse to let anyone clean it up.

    Errors raised by the OS carry the *virtual* path in ``filename``, never the real one, so a
    server that echoes an error to a client does not reveal where the root is.

    Limits: the checks run before the OS call, so a local user who can swap a directory for a
    symbolic link inside the root between check and use could still win a race (Python offers no
    portable ``openat2(RESOLVE_BENEATH)``).  :meth:`OSFilesystem.open` adds ``O_NOFOLLOW`` on the
    resolved path, which closes the race for the final component.  Neither HTTP nor FTP lets a
    client create symbolic links, so only local users could try.

All methods block on the file system; they are meant for fast local disks, called directly from
the event loop (as the original Medusa did) or from a thread when the disk may be slow.
"""

from __future__ import annotations

import errno
import os
import stat as _stat
from typing import BinaryIO, cast

from medusa.core.vfs import Filesystem, OpenFile, PathEscapeError

__all__ = ["Filesystem", "OSFilesystem", "OpenFile", "PathEscapeError"]

_O_NOFOLLOW: int = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC: int = getattr(os, "O_CLOEXEC", 0)
_O_NONBLOCK: int = getattr(os, "O_NONBLOCK", 0)
_O_PATH: int = getattr(os, "O_PATH", 0)
_PROC_FD: bool = os.path.isdir("/proc/self/fd")


def _virtual(exc: OSError, path: str, path2: str | None = None) -> OSError:
    """Replace the real path(s) in an OS error by the virtual one(s); return the error."""
    exc.filename = path
    if path2 is not None:
        exc.filename2 = path2
    return exc


class OSFilesystem:
    """A :class:`Filesystem` over one directory of the local file system, confined to it.

    See the module documentation for how paths are confined.  Methods other than
    :meth:`exists`, :meth:`isdir` and :meth:`isfile` raise :class:`PathEscapeError` for a path
    that is malformed or leaves the root, and let the OS's own errors through with the virtual
    path in ``filename``.

    Args:
        root: the directory to serve.  It is resolved with ``os.path.realpath`` once, here; later
            changes to symbolic links on the way to it have no effect.
        cwd: the initial current directory, a virtual path.

    Raises:
        FileNotFoundError: ``root`` or ``cwd`` does not exist.
        NotADirectoryError: ``root`` or ``cwd`` is not a directory.
        PathEscapeError: ``cwd`` is malformed or resolves outside the root.
    """

    __slots__ = ("_cwd", "_root", "_root_base", "_root_prefix")

    def __init__(self, root: str | os.PathLike[str], cwd: str = "/") -> None:
        real, st = _resolve(os.fspath(root))
        if not _stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), os.fspath(root))
        self._root = real
        # _root_base + "/a/b" is the real path of "/a/b"; _root_prefix is what every real path
        # strictly below the root starts with.  For root "/" they are "" and "/".
        self._root_base = real.rstrip(os.sep)
        self._root_prefix = self._root_base + os.sep
        self._cwd = "/"
        if self.normalize(cwd) != "/":
            # The root itself was resolved and found to be a directory just above.
            self.chdir(cwd)

    def __repr__(self) -> str:
        return f"OSFilesystem({self._root!r}, cwd={self._cwd!r})"

    @property
    def root(self) -> str:
        """The real, resolved path of the root directory."""
        return self._root

    # -- paths --------------------------------------------------------------------------------

    def cwd(self) -> str:
        """Return the current directory as a normalized virtual absolute path."""
        return self._cwd

    def normalize(self, path: str) -> str:
        """Return ``path`` as a normalized virtual absolute path (no file system access).

        Args:
            path: a virtual path; relative paths are taken from the current directory.

        Returns:
            A path starting with ``/``, without ``.``, ``..``, empty segments or a trailing
            ``/`` (except for ``/`` itself).  ``..`` at ``/`` stays at ``/``.

        Raises:
            PathEscapeError: ``path`` contains a NUL character or a backslash.
        """
        if "\x00" in path:
            raise PathEscapeError(path.replace("\x00", "\\x00"), "NUL character in path")
        if "\\" in path:
            raise PathEscapeError(path, "backslash in path")
        if not path.startswith("/"):
            path = self._cwd.rstrip("/") + "/" + path
        if "/." not in path and "//" not in path:
            # The common case (already normal, maybe a trailing "/"): no segment work needed.
            return path.rstrip("/") or "/"
        parts: list[str] = []
        for segment in path.split("/"):
            if segment == "..":
                if parts:
                    parts.pop()
            elif segment and segment != ".":
                parts.append(segment)
        return "/" + "/".join(parts)

    def _check(self, real: str, path: str) -> str:
        """Return ``real`` if it is the root or below it, else raise :class:`PathEscapeError`."""
        if real == self._root or real.startswith(self._root_prefix):
            return real
        raise PathEscapeError(path)

    def translate(self, path: str) -> str:
        """Return the real OS path of ``path``, with every symbolic link resolved.

        One ``os.path.realpath`` call and no other system call: this is the HTTP hot path.
        The file need not exist (a file about to be created is translated too); then the
        existing part of the path is resolved and the rest appended.

        Args:
            path: a virtual path.

        Returns:
            An absolute real path, the root or below it.

        Raises:
            PathEscapeError: ``path`` contains a NUL character or a backslash, or it (or a
                symbolic link on the way) resolves outside the root.
        """
        vpath = self.normalize(path)
        return self._check(os.path.realpath(self._root_base + vpath), path)

    def _entry(self, path: str, *, allow_root: bool = True) -> tuple[str, str]:
        """Return ``(vpath, real)`` for a directory entry, the last component not followed.

        Only the parent directory is resolved: the entry lives in it, so a parent inside the
        root means an entry inside the root, even if the entry is a link pointing elsewhere.

        Raises:
            PathEscapeError: the path is malformed or its parent resolves outside the root.
            PermissionError: ``path`` is the root and ``allow_root`` is false.
        """
        vpath = self.normalize(path)
        if vpath == "/":
            if not allow_root:
                raise PermissionError(errno.EPERM, "operation not permitted on the root", "/")
            return vpath, self._root
        head, _, name = vpath.rpartition("/")
        parent = self._check(os.path.realpath(self._root_base + (head or "/")), path)
        return vpath, os.path.join(parent, name)

    # -- directories --------------------------------------------------------------------------

    def chdir(self, path: str) -> None:
        """Make ``path`` the current directory.

        The current directory is kept as a virtual path, so ``..`` from a directory reached
        through a symbolic link goes back to where the link is, as in a shell.

        Args:
            path: a virtual path.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            NotADirectoryError: ``path`` is not a directory.
            PathEscapeError: ``path`` is malformed or resolves outside the root.
        """
        vpath = self.normalize(path)
        real = self.translate(vpath)
        try:
            st = os.stat(real)
        except OSError as exc:
            raise _virtual(exc, vpath) from None
        if not _stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), vpath)
        self._cwd = vpath

    def cdup(self) -> None:
        """Go to the parent of the current directory; at ``/``, stay at ``/``.

        Raises:
            FileNotFoundError: the parent has disappeared meanwhile.
            PathEscapeError: the parent now resolves outside the root.
        """
        self.chdir("..")

    def listdir(self, path: str = ".") -> list[str]:
        """Return the names in directory ``path``, sorted, without ``.`` and ``..``.

        Entries are listed as they are; one that is a symbolic link leading outside the root
        is listed, but any later operation that follows it is refused.

        Args:
            path: a virtual path, the current directory by default.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            NotADirectoryError: ``path`` is not a directory.
            PathEscapeError: ``path`` is malformed or resolves outside the root.
        """
        real = self.translate(path)
        try:
            names = os.listdir(real)
        except OSError as exc:
            raise _virtual(exc, self.normalize(path)) from None
        names.sort()
        return names

    def mkdir(self, path: str) -> None:
        """Create the directory ``path`` (not its parents).

        Args:
            path: a virtual path.

        Raises:
            FileExistsError: something (a file, a directory, a link) is already at ``path``.
            FileNotFoundError: the parent directory does not exist.
            PathEscapeError: ``path`` is malformed or its parent resolves outside the root.
        """
        vpath, real = self._entry(path)
        try:
            os.mkdir(real)
        except OSError as exc:
            raise _virtual(exc, vpath) from None

    def rmdir(self, path: str) -> None:
        """Remove the empty directory ``path``.

        Args:
            path: a virtual path.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            NotADirectoryError: ``path`` is not a directory (a link to one included).
            OSError: the directory is not empty (``ENOTEMPTY``).
            PermissionError: ``path`` is the root.
            PathEscapeError: ``path`` is malformed or its parent resolves outside the root.
        """
        vpath, real = self._entry(path, allow_root=False)
        try:
            os.rmdir(real)
        except OSError as exc:
            raise _virtual(exc, vpath) from None

    # -- files --------------------------------------------------------------------------------

    def open(self, path: str, mode: str = "rb") -> BinaryIO:
        """Open ``path`` in a binary mode.

        The path is resolved and checked, then the resolved path is opened with ``O_NOFOLLOW``
        so that a link put in place of the file after the check is not followed.

        Args:
            path: a virtual path.
            mode: a binary mode for :func:`open`: ``"rb"``, ``"wb"``, ``"ab"``, ``"xb"``,
                ``"r+b"``, ``"w+b"``, ``"a+b"``, ``"x+b"``.

        Returns:
            A buffered binary file; the caller closes it.

        Raises:
            ValueError: ``mode`` is not a binary mode.
            FileNotFoundError: reading a file that does not exist, or writing into a missing
                directory.
            FileExistsError: mode ``"x"`` and the file exists.
            IsADirectoryError: ``path`` is a directory.
            PathEscapeError: ``path`` is malformed or resolves outside the root.
        """
        if "b" not in mode or "t" in mode:
            raise ValueError(f"binary mode required, not {mode!r}")
        real = self.translate(path)
        try:
            return cast(BinaryIO, open(real, mode, opener=_nofollow_opener))
        except OSError as exc:
            raise _virtual(exc, self.normalize(path)) from None

    def open_read(self, path: str) -> OpenFile:
        """Open ``path`` for reading and return ``(fd, stat, real)``: the HTTP hot path.

        On Linux the file is opened first and the check is made on what was opened (the
        kernel's name for the descriptor, ``/proc/self/fd/N``), which is both cheaper than
        ``realpath`` (three system calls, whatever the depth) and free of the
        check-then-use race described in the module documentation. Elsewhere the path is
        translated first, then opened with ``O_NOFOLLOW``. ``O_NONBLOCK`` keeps a FIFO in the
        tree from blocking the loop; the caller gets the stat to refuse what is neither a
        regular file nor a directory.

        Args:
            path: a virtual path.

        Returns:
            An :class:`OpenFile`: the open read-only descriptor (the caller closes it), its
            ``fstat``, and the real path that was checked.

        Raises:
            PathEscapeError: ``path`` is malformed or the opened file lies outside the root.
            FileNotFoundError, PermissionError, NotADirectoryError: from the OS, with the
                virtual path in ``filename``.
        """
        vpath = self.normalize(path)
        flags = os.O_RDONLY | _O_CLOEXEC | _O_NONBLOCK
        if _PROC_FD:
            try:
                fd = os.open(self._root_base + vpath, flags)
            except OSError as exc:
                raise _virtual(exc, vpath) from None
            try:
                real = self._check(os.readlink(f"/proc/self/fd/{fd}"), path)
                return OpenFile(fd, os.fstat(fd), real)
            except BaseException:
                os.close(fd)
                raise
        real = self.translate(vpath)
        try:
            fd = os.open(real, flags | _O_NOFOLLOW)
        except OSError as exc:
            raise _virtual(exc, vpath) from None
        try:
            return OpenFile(fd, os.fstat(fd), real)
        except BaseException:
            os.close(fd)
            raise

    def remove(self, path: str) -> None:
        """Remove the file ``path``; a symbolic link is removed itself, not its target.

        A link inside the root may be removed even when its target is outside: only the link's
        directory is checked (see the module documentation).

        Args:
            path: a virtual path.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            IsADirectoryError: ``path`` is a directory (use :meth:`rmdir`).
            PermissionError: ``path`` is the root.
            PathEscapeError: ``path`` is malformed or its parent resolves outside the root.
        """
        vpath, real = self._entry(path, allow_root=False)
        try:
            os.remove(real)
        except OSError as exc:
            raise _virtual(exc, vpath) from None

    def rename(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst``; neither final component is followed.

        A file at ``dst`` is replaced (as :func:`os.rename` does on POSIX); a link at ``dst``
        is replaced itself, its target is untouched.

        Args:
            src: the virtual path of an existing entry.
            dst: its new virtual path.

        Raises:
            FileNotFoundError: ``src`` or the directory of ``dst`` does not exist.
            IsADirectoryError, NotADirectoryError, OSError: as :func:`os.rename` for mismatched
                or non-empty targets, or a directory moved into itself.
            PermissionError: ``src`` or ``dst`` is the root.
            PathEscapeError: either path is malformed or its parent resolves outside the root.
        """
        vsrc, real_src = self._entry(src, allow_root=False)
        vdst, real_dst = self._entry(dst, allow_root=False)
        try:
            os.rename(real_src, real_dst)
        except OSError as exc:
            raise _virtual(exc, vsrc, vdst) from None

    # -- status -------------------------------------------------------------------------------

    def stat(self, path: str) -> os.stat_result:
        """Return the status of ``path``, following symbolic links.

        Raises:
            FileNotFoundError: ``path`` does not exist (or is a dangling link).
            PathEscapeError: ``path`` is malformed or resolves outside the root.
        """
        real = self.translate(path)
        try:
            return os.stat(real)
        except OSError as exc:
            raise _virtual(exc, self.normalize(path)) from None

    def lstat(self, path: str) -> os.stat_result:
        """Return the status of ``path`` itself; a final symbolic link is not followed.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            PathEscapeError: ``path`` is malformed or its parent resolves outside the root.
        """
        vpath, real = self._entry(path)
        try:
            return os.lstat(real)
        except OSError as exc:
            raise _virtual(exc, vpath) from None

    def readlink(self, path: str) -> str:
        """Return the virtual absolute path that the symbolic link ``path`` finally leads to.

        The link (and any chain of links) is resolved; the result is where it lands, as a
        virtual path, which need not exist (a dangling link).  The link's own text is not
        returned: it may name the real root.

        Raises:
            FileNotFoundError: ``path`` does not exist.
            OSError: ``path`` is not a symbolic link (``errno.EINVAL``).
            PathEscapeError: ``path`` is malformed or the link leads outside the root.
        """
        vpath, real = self._entry(path)
        try:
            os.readlink(real)
        except OSError as exc:
            raise _virtual(exc, vpath) from None
        target = self._check(os.path.realpath(real), path)
        return "/" + target[len(self._root_prefix) :] if target != self._root else "/"

    def exists(self, path: str) -> bool:
        """Return whether ``path`` exists and resolves inside the root.

        Never raises: malformed paths, paths outside the root and dangling links give False,
        as :func:`os.path.exists` does for errors.
        """
        try:
            self.stat(path)
        except (OSError, ValueError):
            return False
        return True

    def isdir(self, path: str) -> bool:
        """Return whether ``path`` is a directory inside the root (links followed).

        Never raises, as :meth:`exists`.
        """
        try:
            return _stat.S_ISDIR(self.stat(path).st_mode)
        except (OSError, ValueError):
            return False

    def isfile(self, path: str) -> bool:
        """Return whether ``path`` is a regular file inside the root (links followed).

        Never raises, as :meth:`exists`.
        """
        try:
            return _stat.S_ISREG(self.stat(path).st_mode)
        except (OSError, ValueError):
            return False

    def getsize(self, path: str) -> int:
        """Return the size of ``path`` in bytes, following links; raises as :meth:`stat`."""
        return self.stat(path).st_size

    def getmtime(self, path: str) -> float:
        """Return the modification time of ``path``, following links; raises as :meth:`stat`."""
        return self.stat(path).st_mtime


def _resolve(path: str) -> tuple[str, os.stat_result]:
    """Return ``(os.path.realpath(path), os.stat(path))``.

    On Linux the path is opened with ``O_PATH`` (no permission on the file itself needed,
    nothing read) and its resolved name read from ``/proc/self/fd/N``: four system calls,
    where ``realpath`` makes one per component. Anything unusual (an error, a name the
    kernel marks as deleted) goes the portable way, with its errors.

    Raises:
        OSError: from ``os.stat``, as ``realpath`` + ``stat`` would raise it.
    """
    if _PROC_FD and _O_PATH:
        try:
            fd = os.open(path, _O_PATH | _O_CLOEXEC)
        except OSError:
            pass
        else:
            try:
                real = os.readlink(f"/proc/self/fd/{fd}")
                st = os.fstat(fd)
            except OSError:
                real = ""
            finally:
                os.close(fd)
            if real.startswith("/") and not real.endswith(" (deleted)"):
                return real, st
    real = os.path.realpath(path)
    return real, os.stat(real)


def _nofollow_opener(path: str, flags: int) -> int:
    return os.open(path, flags | _O_NOFOLLOW, 0o666)
