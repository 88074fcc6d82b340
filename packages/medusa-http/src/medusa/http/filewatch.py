"""Change notices for the file handler's small-file cache, from Linux's inotify.

A cached small file must not be served once the file at its path changed. Checking with
``os.stat`` on every request costs about 6,700 instructions (the ``stat_result`` and its
times), an eighth of a small file's whole request. Instead, :class:`FileWatch` asks the
kernel (inotify(7), through the ``inotify_simple`` library) to report every change in the
directories from the served root down to each cached file: a file written, truncated,
renamed, replaced, deleted or its attributes changed, and a directory on the way renamed
or removed. The event loop reads the reports as they come (``loop.add_reader``). The loop
may handle a client's ready socket before the inotify descriptor that became ready in the
same turn, so before the cache answers from a watched entry it asks
:meth:`FileWatch.changes_waiting`: the first time in each turn of the event loop, that is
one ``poll`` system call (about 1,100 instructions and a kernel entry), and a waiting
report is read at once; later answers in the same turn are not asked again (a busy server
answers dozens of requests per turn, and a system call each would cost more than the
rest of a cached answer's kernel work but the socket's). So a change completed before
the loop's turn began is seen by every request read in that turn or later; a change made
while a turn runs is seen from the next turn (microseconds to a few milliseconds later).
A client that waits for a change to be done before asking (an FTP upload's ``226``, a
command that returned) always sends its request after that turn, and gets the new file.

Where inotify is not available (another system, the library missing, the watch limit
``fs.inotify.max_user_watches`` reached), :meth:`FileWatch.watch` returns False and the
cache checks such an entry with ``stat`` on every request, as before.
"""

from __future__ import annotations

import asyncio
import os
import select
import weakref
from collections.abc import Callable

from medusa.core.log import error_logger

try:
    from inotify_simple import INotify, flags
except ImportError:  # not Linux, or the library is not installed: stat on every request
    INotify = None

__all__ = ["FileWatch"]

if INotify is not None:
    _MASK = (
        flags.MODIFY
        | flags.ATTRIB
        | flags.CLOSE_WRITE
        | flags.MOVED_FROM
        | flags.MOVED_TO
        | flags.CREATE
        | flags.DELETE
        | flags.DELETE_SELF
        | flags.MOVE_SELF
    )
    _SELF = flags.DELETE_SELF | flags.MOVE_SELF | flags.IGNORED | flags.UNMOUNT
    _OVERFLOW = flags.Q_OVERFLOW


def _nothing() -> None:
    pass


def _no_reports(timeout: int) -> list[tuple[int, int]]:
    return []


class FileWatch:
    """Watches the directories that lead from ``root`` to cached files, in the running
    event loop, and reports changes to ``on_change``.

    Args:
        root: the real (resolved) path of the served root directory.
        on_change: called with a real path whose cached entries must be dropped: the
            changed file, or a directory (everything below it); ``""`` means everything
            (the kernel's queue overflowed, or the watch moved to another event loop).
    """

    def __init__(self, root: str, on_change: Callable[[str], None]) -> None:
        self.root = root.rstrip("/") or "/"
        self.on_change = on_change
        self.loop: asyncio.AbstractEventLoop | None = None
        self._inotify: INotify | None = None
        self._closer: Callable[[], object] = _nothing
        self.poll: Callable[[int], list[tuple[int, int]]] = _no_reports
        """``poll(0)`` is non-empty when a report waits: then call :meth:`read`."""
        self.asked = False
        """True when :meth:`changes_waiting` polled in this turn of the event loop."""
        self._pid = 0
        self._paths: dict[int, str] = {}  # watch descriptor -> directory
        self._watched: set[str] = set()
        self.failed = INotify is None

    def watch(self, real: str) -> bool:
        """Watch the directories from the root to ``real``'s directory (once each);
        call it before checking that the file read is still the one at ``real``.

        Returns:
            True when every change to ``real`` will be reported to ``on_change``; False
            when inotify is unavailable (the caller must then check the file itself).
        """
        if self.failed:
            return False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not in the event loop: nothing would read the reports
            return False
        if (loop is not self.loop or os.getpid() != self._pid) and not self._start(loop):
            return False
        directory = os.path.dirname(real)
        if directory in self._watched:
            return True
        root = self.root
        if directory != root and not directory.startswith(root + "/"):
            return False
        parts = directory[len(root) :].split("/")
        path = root
        for part in parts:
            if part:
                path = f"{path}/{part}" if path != "/" else f"/{part}"
            if path in self._watched:
                continue
            assert self._inotify is not None
            try:
                wd = self._inotify.add_watch(path, _MASK)
            except OSError as exc:  # ENOSPC: the watch limit; ENOENT: gone meanwhile
                if exc.errno == 28:
                    error_logger.warning(
                        "file cache: inotify watch limit reached (fs.inotify."
                        "max_user_watches); further small files are checked with stat"
                    )
                    self.failed = True
                return False
            self._paths[wd] = path
            self._watched.add(path)
        return True

    def _start(self, loop: asyncio.AbstractEventLoop) -> bool:
        """A new inotify instance read by ``loop`` (first use, another loop, or a forked
        process); whatever the old one watched is dropped."""
        self.close()
        self.on_change("")
        try:
            # The descriptor is closed by close(), or when this watch is collected (the
            # loop holds its reader until the loop is closed), without a ResourceWarning.
            inotify = INotify(nonblocking=True, closefd=False)
            self._closer = weakref.finalize(self, os.close, inotify.fileno())
            loop.add_reader(inotify.fileno(), self.read)
            poller = select.poll()
            poller.register(inotify.fileno(), select.POLLIN)
        except (OSError, RuntimeError, NotImplementedError) as exc:
            error_logger.warning(
                "file cache: no inotify (%s); small files are checked with stat", exc
            )
            self.failed = True
            return False
        self._inotify, self.loop, self._pid = inotify, loop, os.getpid()
        self.poll = poller.poll
        self.asked = False  # (a turn of an earlier loop may not have ended it)
        return True

    def changes_waiting(self) -> bool:
        """Read the reports waiting, once per turn of the event loop (see the module
        docstring), and return True when some were read (entries may have been dropped:
        look again); False when none waited, or the kernel was already asked in this
        turn. Called in the event loop."""
        if self.asked:
            return False
        loop = self.loop
        if loop is None:
            return False
        self.asked = True
        loop.call_soon(self._next_turn)
        if not self.poll(0):
            return False
        self.read()
        return True

    def _next_turn(self) -> None:
        self.asked = False

    def read(self) -> None:
        """Read the waiting reports and drop what they name (the loop's reader)."""
        inotify = self._inotify
        if inotify is None:
            return
        try:
            events = inotify.read(timeout=0)
        except OSError:
            events = []
        on_change, paths = self.on_change, self._paths
        for event in events:
            if event.mask & _OVERFLOW:
                on_change("")
                continue
            directory = paths.get(event.wd)
            if directory is None:
                continue
            if event.mask & _SELF:
                on_change(directory)
                if event.mask & flags.IGNORED:  # the kernel removed the watch
                    del paths[event.wd]
                    self._watched.discard(directory)
            elif event.name:
                on_change(f"{directory}/{event.name}" if directory != "/" else f"/{event.name}")

    def close(self) -> None:
        """Stop watching (the loop's reader removed, the descriptor closed)."""
        inotify = self._inotify
        if inotify is None:
            return
        self._inotify = None
        if self._pid == os.getpid() and self.loop is not None and not self.loop.is_closed():
            self.loop.remove_reader(inotify.fileno())
        self._closer()
        self.poll = _no_reports
        self._paths.clear()
        self._watched.clear()
        self.loop = None
