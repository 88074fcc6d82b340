"""The file handler's cache of small files: their bytes and ready-made header fields, by
request path, dropped when the file changes (:mod:`medusa.http.filewatch`, else a
``stat`` per request)."""

from __future__ import annotations

import os

from medusa.http.compression import gzip_bytes
from medusa.http.conditional import entity_tag
from medusa.http.filewatch import FileWatch

__all__ = ["CachedFile", "SmallFileCache"]


class CachedFile:
    """A small file's bytes and validators, as last read through a checked open."""

    __slots__ = (
        "_gzip",
        "body",
        "content_type",
        "etag",
        "fields",
        "identity",
        "last_modified",
        "mtime",
        "real",
        "size",
        "watched",
    )

    def __init__(
        self, real: str, st: os.stat_result, body: bytes, content_type: str, last_modified: str
    ) -> None:
        self.real = real
        self.watched = False
        """True while a :class:`~medusa.http.filewatch.FileWatch` reports its changes."""
        self.content_type = content_type
        self._gzip: bytes | None = None
        self.identity = _identity(st)
        self.body = body
        self.size = st.st_size
        self.mtime = st.st_mtime
        self.etag = entity_tag(st)
        self.last_modified = last_modified
        self.fields = (
            f"Content-Type: {content_type}\r\nLast-Modified: {last_modified}\r\n"
            f"ETag: {self.etag}\r\nAccept-Ranges: bytes\r\n"
        ).encode("latin-1")

    @property
    def gzip_etag(self) -> str:
        """The entity tag of the gzip-coded variant (a different representation)."""
        return self.etag[:-1] + '-gzip"'

    def gzip_body(self) -> bytes | None:
        """Return the gzip-coded body (made once), or None when coding does not shrink it."""
        if self._gzip is None:
            self._gzip = gzip_bytes(self.body)
        return self._gzip if len(self._gzip) < len(self.body) else None

    def gzip_fields(self) -> bytes:
        """Header fields of the gzip-coded variant (no ranges over it)."""
        return (
            f"Content-Type: {self.content_type}\r\nLast-Modified: {self.last_modified}\r\n"
            f"ETag: {self.gzip_etag}\r\nContent-Encoding: gzip\r\nVary: Accept-Encoding\r\n"
        ).encode("latin-1")


def _identity(st: os.stat_result) -> tuple[int, int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class SmallFileCache:
    """Small files by request path, bounded in bytes (emptied when full: simple and
    enough for a hot set that fits).

    An entry is served only while the file at its real path is the one read: with
    ``root`` given, changes are reported by inotify (:class:`~medusa.http.filewatch.
    FileWatch`) and drop the entries they concern; otherwise, or where inotify is not
    available, each use checks ``stat`` (device, inode, size, modification and change
    times).

    Args:
        capacity: most body bytes held.
        root: the real path of the served root directory, to watch below; ``None``: no
            watch.
    """

    def __init__(self, capacity: int, root: str | None = None) -> None:
        self.capacity = capacity
        self.size = 0
        self.entries: dict[str, CachedFile] = {}
        self.watch = FileWatch(root, self.changed) if root is not None else None

    def get(self, path: str) -> CachedFile | None:
        """Return the entry for ``path`` if the file on disk is still the same one."""
        entry = self.entries.get(path)
        if entry is None:
            return None
        if entry.watched:
            watch = self.watch
            assert watch is not None
            if watch.asked or not watch.changes_waiting():
                return entry  # a change would have been reported, and have dropped it
            return self.entries.get(path)
        try:
            st = os.stat(entry.real)
        except OSError:
            st = None
        if st is not None and (
            (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) == entry.identity
        ):
            return entry
        self.size -= len(self.entries.pop(path).body)
        return None

    def put(self, path: str, entry: CachedFile) -> None:
        """Remember ``entry`` for ``path`` (called in the event loop)."""
        if len(entry.body) > self.capacity:
            return
        watch = self.watch
        if watch is not None and watch.watch(entry.real):
            # Watched from now on; the file must still be the one read (a change between
            # the read and the watch would otherwise go unreported).
            try:
                st = os.stat(entry.real)
            except OSError:
                return
            if _identity(st) != entry.identity:
                return
            entry.watched = True
        old = self.entries.pop(path, None)
        if old is not None:
            self.size -= len(old.body)
        if self.size + len(entry.body) > self.capacity:
            self.entries.clear()
            self.size = 0
        self.entries[path] = entry
        self.size += len(entry.body)

    def changed(self, real: str) -> None:
        """Drop the entries of the file at ``real``, or of everything below the directory
        ``real``; ``""``: every entry."""
        if not real:
            self.entries.clear()
            self.size = 0
            return
        below = real + "/"
        for path, entry in list(self.entries.items()):
            if entry.real == real or entry.real.startswith(below):
                del self.entries[path]
                self.size -= len(entry.body)
