"""The contents of ``LIST``, ``NLST``, ``MLSD`` and ``STAT path`` (RFC 959 §4.1.3, RFC 3659
§7), made from a session's :class:`~medusa.core.vfs.Filesystem`.

``LIST`` arguments may carry ``ls`` options (``-la``), which are ignored, and a final
component with shell wildcards (``*.txt``), which selects entries of its directory. Names
holding CR or LF are left out of listings sent on a data connection: they would break the
one-entry-per-line framing. The temporary files of uploads in progress
(:func:`medusa.core.uploads.is_upload_temporary`) are never listed, and naming one is
as naming a file that does not exist.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import posixpath
import stat
import time
from stat import S_ISLNK
from typing import Literal

from medusa.core.filesys import OSFilesystem
from medusa.core.listing import list_directory, msdos_line, unix_line
from medusa.core.uploads import is_upload_temporary
from medusa.core.vfs import Filesystem, PathEscapeError
from medusa.ftp.facts import mlsx_line
from medusa.ftp.replies import encode_text

__all__ = [
    "Listing",
    "ListingProducer",
    "check_not_hidden",
    "directory_lines",
    "directory_listing",
    "encode_lines",
    "list_lines",
    "list_listing",
    "mlsd_lines",
    "mlst_line",
    "nlst_lines",
    "split_list_arg",
]

_WILDCARDS = frozenset("*?[")
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_PROC_FD: bool = os.path.isdir("/proc/self/fd")


def split_list_arg(arg: str) -> str:
    """Return the path of a ``LIST``/``NLST`` argument without ``ls`` options: words that
    start with ``-`` before the path are dropped (``"-la pub"`` → ``"pub"``)."""
    words = arg.split(" ")
    while words and words[0].startswith("-"):
        words.pop(0)
    return " ".join(words).strip() if words else ""


def _pattern(fs: Filesystem, path: str) -> tuple[str, str | None]:
    """Split a path whose last component has wildcards and does not exist into
    ``(directory, pattern)``; other paths give ``(path, None)``."""
    name = posixpath.basename(path)
    if name and _WILDCARDS & set(name) and not fs.exists(path):
        return posixpath.dirname(path) or ".", name
    return path, None


def _framed(name: str) -> bool:
    return "\r" not in name and "\n" not in name


def _shown(name: str) -> bool:
    """A name that may appear in a listing: framed, and not an upload in progress."""
    return "\r" not in name and "\n" not in name and not is_upload_temporary(name)


def check_not_hidden(fs: Filesystem, path: str) -> None:
    """Raise :class:`FileNotFoundError` (with the virtual path) when ``path`` names the
    temporary file of an upload in progress, as if it did not exist.

    Raises:
        FileNotFoundError: for such a path.
        PathEscapeError: for a malformed path (NUL, backslash).
    """
    vpath = fs.normalize(path)
    if is_upload_temporary(vpath):
        raise FileNotFoundError(2, "No such file or directory", vpath)


class Listing:
    """The lines of a ``LIST``, possibly not yet formatted: a directory's entries are
    examined when the listing is made (each ``lstat``, so that its errors come before any
    reply), and formatted as ``ls -l`` (or MS-DOS) lines when :meth:`lines` is first
    called, which ``LIST`` does after its ``125``/``150`` reply has gone out, so that the
    client reads that reply while the lines are made.

    Args:
        entries: ``(shown name, stat_result)`` of each entry, in order (the shown name of
            a link in the Unix style is ``name -> target``; in the MS-DOS style a link's
            status is its target's); or ``None`` when ``made`` holds the lines already.
        style: ``"unix"`` or ``"msdos"``.
        now: the time the entries were examined, seconds since the epoch (the Unix
            date column shows ``HH:MM`` within six months of it).
        made: lines already made (a file's line, a wildcard's selection).
    """

    __slots__ = ("_entries", "_lines", "now", "style")

    def __init__(
        self,
        entries: list[tuple[str, os.stat_result]] | None,
        style: Literal["unix", "msdos"] = "unix",
        now: float = 0.0,
        made: list[str] | None = None,
    ) -> None:
        self._entries = entries
        self._lines = made
        self.style: Literal["unix", "msdos"] = style
        self.now = now

    def lines(self) -> list[str]:
        """Return the lines (without line ends), made on the first call; lines whose
        name holds CR or LF are left out (they would break the one-entry-per-line
        framing of a data connection)."""
        lines = self._lines
        if lines is None:
            entries, self._entries = self._entries or [], None
            if self.style == "unix":
                now = self.now
                lines = [unix_line(shown, st, now=now) for shown, st in entries]
            else:
                lines = [msdos_line(name, st) for name, st in entries]
            self._lines = lines
        text = "".join(lines)  # one search for the rare CR or LF, instead of one per line
        if "\r" in text or "\n" in text:
            lines = self._lines = [line for line in lines if _framed(line)]
        return lines


class ListingProducer:
    """A producer (see :mod:`medusa.core.producers`) of a :class:`Listing`'s bytes: the
    lines, each followed by CRLF (:func:`encode_lines`), made when first pulled."""

    __slots__ = ("_listing",)

    def __init__(self, listing: Listing) -> None:
        self._listing: Listing | None = listing

    def more(self) -> bytes:
        """Return the whole listing on the first call, ``b""`` afterwards."""
        listing, self._listing = self._listing, None
        return encode_lines(listing.lines()) if listing is not None else b""


def list_lines(fs: Filesystem, arg: str, style: Literal["unix", "msdos"] = "unix") -> list[str]:
    """Return the lines of ``LIST arg``: ``ls -l`` (or MS-DOS) lines of a directory's
    entries, or the one line of a file (see :func:`list_listing`).

    Raises:
        OSError: for a path that does not exist or cannot be read (virtual names only).
    """
    return list_listing(fs, arg, style).lines()


def list_listing(fs: Filesystem, arg: str, style: Literal["unix", "msdos"] = "unix") -> Listing:
    """Return the :class:`Listing` of ``LIST arg``: a directory's entries, examined and
    not yet formatted, or the one line of a file; a last component with wildcards selects
    entries of its directory.

    Raises:
        OSError: for a path that does not exist or cannot be read (virtual names only).
    """
    path, pattern = _pattern(fs, split_list_arg(arg) or ".")
    check_not_hidden(fs, path)
    try:
        listing = directory_listing(fs, path, style)
    except NotADirectoryError:
        if pattern is not None:
            raise
        name = posixpath.basename(fs.normalize(path))
        st = fs.lstat(path)
        line = unix_line(name, st, now=time.time()) if style == "unix" else msdos_line(name, st)
        return Listing(None, style, made=[line])
    if pattern is not None:
        names = {n for n in fs.listdir(path) if fnmatch.fnmatchcase(n, pattern)}
        lines = [line for line in listing.lines() if _line_name(line, style) in names]
        return Listing(None, style, made=lines)
    return listing


def directory_lines(fs: Filesystem, path: str, style: Literal["unix", "msdos"]) -> list[str]:
    """Return the listing lines of directory ``path``, as core's
    :func:`~medusa.core.listing.list_directory` makes them (see
    :func:`directory_listing`).

    Raises:
        FileNotFoundError, NotADirectoryError, PermissionError: with the virtual path.
        PathEscapeError: when ``path`` resolves outside the root.
    """
    return directory_listing(fs, path, style).lines()


def directory_listing(fs: Filesystem, path: str, style: Literal["unix", "msdos"]) -> Listing:
    """Return the :class:`Listing` of directory ``path``, whose lines are what core's
    :func:`~medusa.core.listing.list_directory` makes (sorted names, ``lstat`` of each
    entry, links shown as ``name -> target`` inside the root); every entry is examined
    here, the lines are formatted when asked for.

    On an :class:`~medusa.core.filesys.OSFilesystem` the directory is resolved and opened
    once and its entries are examined relative to that descriptor (``fstatat``), instead of
    resolving the directory again for each entry: a listing then costs one system call per
    entry. Other filesystems (a Unix user's persona) go through ``list_directory``.

    Raises:
        FileNotFoundError, NotADirectoryError, PermissionError: with the virtual path.
        PathEscapeError: when ``path`` resolves outside the root.
    """
    if type(fs) is not OSFilesystem:
        listed = list_directory(fs, path, style)
        hidden = {n for n in fs.listdir(path) if is_upload_temporary(n)}
        if hidden:
            listed = [line for line in listed if _line_name(line, style) not in hidden]
        return Listing(None, style, made=listed)
    base = fs.normalize(path)
    fd = _open_directory(fs, base)
    try:
        # Through /proc, the listing costs one open instead of a dup, fcntl and lseek.
        names = sorted(os.listdir(f"/proc/self/fd/{fd}" if _PROC_FD else fd))
        prefix = base.rstrip("/") + "/"
        now = time.time()
        unix = style == "unix"
        lstat = os.lstat  # called directly: through functools.partial, 20% more per entry
        entries: list[tuple[str, os.stat_result]] = []
        for name in names:
            # Only dot names can be uploads in progress: the others skip the call.
            if name[0] == "." and is_upload_temporary(name):
                continue
            try:
                st = lstat(name, dir_fd=fd)
            except FileNotFoundError:
                continue  # removed meanwhile
            except OSError as exc:
                raise OSError(exc.errno, exc.strerror, prefix + name) from None
            shown = name
            if S_ISLNK(st.st_mode):
                with contextlib.suppress(OSError):  # outside the root or dangling
                    if unix:
                        shown = f"{name} -> {fs.readlink(prefix + name)}"
                    else:
                        st = fs.stat(prefix + name)
            entries.append((shown, st))
        return Listing(entries, style, now)
    finally:
        os.close(fd)


def _open_directory(fs: OSFilesystem, base: str) -> int:
    """Open directory ``base`` (a normalized virtual path) of ``fs`` and return the
    descriptor, refusing a directory outside the root as ``fs.translate`` would.

    On Linux the path is opened first and the check is made on what was opened (the
    kernel's name for the descriptor, ``/proc/self/fd/N``), as core's ``open_read`` does:
    two system calls, where ``realpath`` makes one per component, and no race between the
    check and the use. A failed open is checked with ``translate`` first, so that a path
    leading outside the root gives the same ``PathEscapeError`` as before.

    Raises:
        FileNotFoundError, NotADirectoryError, PermissionError: with the virtual path.
        PathEscapeError: when ``base`` resolves outside the root.
    """
    if not _PROC_FD:
        real = fs.translate(base)
    else:
        root = fs.root
        real = root.rstrip("/") + base if base != "/" else root
    try:
        fd = os.open(real, _DIRECTORY_FLAGS)
    except OSError as exc:
        if _PROC_FD:
            fs.translate(base)  # a path leading outside the root: PathEscapeError
        raise OSError(exc.errno, exc.strerror, base) from None
    if _PROC_FD:
        try:
            opened = os.readlink(f"/proc/self/fd/{fd}")
            root = fs.root
            if opened != root and not opened.startswith(root.rstrip("/") + "/"):
                raise PathEscapeError(base)
        except BaseException:
            os.close(fd)
            raise
    return fd


def _line_name(line: str, style: str) -> str:
    """The name in a listing line (for wildcard filtering)."""
    if style == "unix":
        name = line.split(None, 8)[-1]
        return name.split(" -> ", 1)[0]
    return line[39:]


def nlst_lines(fs: Filesystem, arg: str) -> list[str]:
    """Return the names of ``NLST arg`` (RFC 959 §4.1.3): the entries of a directory, or
    the argument itself for a file.

    Raises:
        OSError: for a path that does not exist or cannot be read.
    """
    path, pattern = _pattern(fs, split_list_arg(arg) or ".")
    check_not_hidden(fs, path)
    if pattern is None and not fs.isdir(path):
        fs.lstat(path)  # raises for a missing path
        return [path]
    names = fs.listdir(path)
    if pattern is not None:
        prefix = "" if path == "." else path.rstrip("/") + "/"
        return [prefix + n for n in names if fnmatch.fnmatchcase(n, pattern) and _shown(n)]
    return [n for n in names if _shown(n)]


def mlsd_lines(
    fs: Filesystem, path: str, facts: frozenset[str], perms: frozenset[str]
) -> list[str]:
    """Return the entries of directory ``path`` in ``MLSD`` form (RFC 3659 §7.2).

    Symbolic links are shown as what they lead to when that is inside the root, else as
    links (``OS.unix=slink``).

    Raises:
        NotADirectoryError: when ``path`` is not a directory.
        OSError: when it cannot be read.
    """
    check_not_hidden(fs, path)
    base = fs.normalize(path)
    if not stat.S_ISDIR(fs.stat(base).st_mode):
        raise NotADirectoryError(20, "Not a directory", base)
    prefix = base.rstrip("/") + "/"
    lines = []
    for name in fs.listdir(base):
        if not _shown(name):
            continue
        try:
            st = fs.stat(prefix + name)
        except OSError:
            try:
                st = fs.lstat(prefix + name)
            except OSError:
                continue  # removed meanwhile
        lines.append(mlsx_line(name, st, facts, perms))
    return lines


def mlst_line(fs: Filesystem, path: str, facts: frozenset[str], perms: frozenset[str]) -> str:
    """Return the facts of one entry for ``MLST`` (RFC 3659 §7.2), named by its absolute
    virtual path.

    Raises:
        OSError: for a path that does not exist.
    """
    check_not_hidden(fs, path)
    vpath = fs.normalize(path)
    return mlsx_line(vpath, fs.stat(vpath), facts, perms)


def encode_lines(lines: list[str]) -> bytes:
    """Return listing lines as the bytes of a data transfer: CRLF after each, UTF-8 with
    undecodable names restored (RFC 2640)."""
    if not lines:
        return b""
    return encode_text("\r\n".join(lines) + "\r\n")
