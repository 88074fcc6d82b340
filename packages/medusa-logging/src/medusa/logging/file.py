"""The file logger: appends lines, rotates by size or time, reopens on SIGHUP for logrotate."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any, ClassVar

from medusa.core.options import Option, non_negative
from medusa.logging.lines import LINE_FORMATS, LineFormatter
from medusa.logging.queued import PartialWriteError, QueuedLogger, common_options, warnings_log
from medusa.logging.records import Record

__all__ = ["FileLogger", "install_sighup", "next_rollover"]

ROTATE_WHEN = ("", "hourly", "daily")

_HUP: weakref.WeakSet[FileLogger] = weakref.WeakSet()
_hup_installed = False
_hup_lock = threading.Lock()


def _on_sighup(signum: int, frame: FrameType | None) -> None:
    for logger in list(_HUP):
        logger.reopen()
    previous = _previous_hup
    if callable(previous):
        previous(signum, frame)


_previous_hup: Callable[[int, FrameType | None], Any] | int | None = None


def install_sighup() -> bool:
    """Install (once) a SIGHUP handler that makes every file logger with
    ``reopen_on_sighup`` reopen its file, chaining to a handler installed before. Only the
    main thread can install signal handlers; elsewhere this returns False and does nothing.
    """
    global _hup_installed, _previous_hup
    with _hup_lock:
        if _hup_installed:
            return True
        if threading.current_thread() is not threading.main_thread():
            return False
        _previous_hup = signal.getsignal(signal.SIGHUP)
        signal.signal(signal.SIGHUP, _on_sighup)
        _hup_installed = True
        return True


def next_rollover(now: float, when: str) -> float:
    """The next local-time boundary after ``now`` (seconds since the epoch): the start of the
    next hour (``"hourly"``) or the next local midnight (``"daily"``); ``inf`` for ``""``."""
    if not when:
        return float("inf")
    t = time.localtime(now)
    if when == "hourly":
        return time.mktime((t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour + 1, 0, 0, 0, 0, -1))
    return time.mktime((t.tm_year, t.tm_mon, t.tm_mday + 1, 0, 0, 0, 0, 0, -1))


def _check_when(value: Any) -> str | None:
    return None if value in ROTATE_WHEN else 'must be "", "hourly" or "daily"'


def _check_format(value: Any) -> str | None:
    return None if value in LINE_FORMATS else "must be text or json"


class FileLogger(QueuedLogger):
    """Append one line per record to a file.

    Rotation renames ``PATH`` to ``PATH.1`` (``PATH.1`` to ``PATH.2`` and so on, keeping
    ``backups`` old files) and starts a new ``PATH``; it happens at a record boundary, before
    a write that would make the file larger than ``rotate_bytes``, and, with
    ``rotate_when``, before the first batch written after each hour or local midnight (a
    batch holds the records of the last few milliseconds). For logrotate instead, leave
    rotation off and send SIGHUP after moving the file (``postrotate``): the writer reopens
    ``PATH``.

    Args:
        path: the log file (its directory must exist: see ``check_directory``).
        format: ``"text"`` (the message as it is) or ``"json"`` (JSON Lines).
        rotate_bytes: rotate before the file would exceed this many bytes (0: never).
        rotate_when: ``"hourly"``, ``"daily"`` or ``""`` (never).
        backups: rotated files kept (``PATH.1`` newest).
        reopen_on_sighup: reopen the file on SIGHUP (the handler is installed from the main
            thread only).
        fsync: flush each batch to disk with ``fsync`` (slower; survives a machine crash).
        check_directory: refuse, at construction, a ``path`` whose directory does not exist
            or is not a directory (a typo in a configuration would otherwise lose every
            record); ``False`` lets the writer wait for the directory to appear, keeping
            records up to the queue's bound.
        clock: the wall clock for time rotation (tests pass their own).
        **kwargs: the options of :class:`~medusa.logging.queued.QueuedLogger`.

    Raises:
        ValueError: for an unknown format or rotation period, or ``backups`` < 1 with
            rotation on.
        FileNotFoundError: with ``check_directory``, the directory of ``path`` does not
            exist (or is not a directory).
    """

    name: ClassVar[str] = "file"
    options: ClassVar[Mapping[str, Option]] = {
        **common_options(),
        **{
            o.name: o
            for o in (
                Option("path", (str,), "the log file"),
                Option("format", (str,), "text or json", _check_format),
                Option(
                    "rotate_bytes", (int,), "rotate above this size, bytes (0: never)", non_negative
                ),
                Option("rotate_when", (str,), '"hourly", "daily" or ""', _check_when),
                Option("backups", (int,), "rotated files kept", non_negative),
                Option("reopen_on_sighup", (bool,), "reopen the file on SIGHUP"),
                Option("fsync", (bool,), "fsync after each batch"),
            )
        },
    }

    def __init__(
        self,
        path: str | os.PathLike[str] = "medusa.log",
        *,
        format: str = "text",
        rotate_bytes: int = 0,
        rotate_when: str = "",
        backups: int = 5,
        reopen_on_sighup: bool = True,
        fsync: bool = False,
        check_directory: bool = True,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        if rotate_when not in ROTATE_WHEN:
            raise ValueError(f"unknown rotate_when {rotate_when!r} (hourly, daily or empty)")
        if (rotate_bytes or rotate_when) and backups < 1:
            raise ValueError("rotation needs backups >= 1")
        self.path = os.fspath(path)
        directory = os.path.dirname(os.path.abspath(self.path))
        if check_directory and not os.path.isdir(directory):
            raise FileNotFoundError(
                f"path {self.path}: the directory {directory} does not exist"
                if not os.path.exists(directory)
                else f"path {self.path}: {directory} is not a directory"
            )
        self.formatter = LineFormatter(format)
        self.rotate_bytes = rotate_bytes
        self.rotate_when = rotate_when
        self.backups = backups
        self.fsync = fsync
        self.clock = clock
        self.rotations = 0
        self._fd = -1
        self._size = 0
        self._rollover = next_rollover(clock(), rotate_when)
        super().__init__(**kwargs)
        if reopen_on_sighup:
            _HUP.add(self)
            if not install_sighup():
                warnings_log.warning(
                    "%s: SIGHUP reopening needs the logger made in the main thread first",
                    self.describe(),
                )

    def describe(self) -> str:
        """``file PATH``."""
        return f"file {self.path}"

    def open_sink(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._size = os.fstat(self._fd).st_size

    def close_sink(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1

    def _moved(self) -> bool:
        """True when ``path`` no longer names the file this logger has open: another
        process writing the same file (a worker of ``medusa serve --workers N``) rotated
        it, or it was moved away."""
        try:
            here = os.stat(self.path)
        except FileNotFoundError:
            return True
        mine = os.fstat(self._fd)
        return (here.st_dev, here.st_ino) != (mine.st_dev, mine.st_ino)

    def _follow(self) -> None:
        """Close the moved file and open ``path`` (the file the other process started)."""
        self.close_sink()
        self.open_sink()

    def _rotate(self) -> None:
        """Rotate the files, or only follow when another process did it a moment ago.

        Several processes may append to one file (each worker of ``--workers N`` has its
        own logger): the rotation holds an exclusive ``flock`` on the file being rotated,
        so of two processes that decide to rotate at once, one renames the files and the
        other, once it gets the lock, sees that ``path`` names a new file and opens it
        instead of rotating again (which would push a fresh file to ``PATH.1`` and lose
        the backups' count; a file still written by one process could be deleted as the
        oldest backup by the other)."""
        if self._fd >= 0:
            with contextlib.suppress(OSError):  # no flock on this file system: rotate
                fcntl.flock(self._fd, fcntl.LOCK_EX)
            if self._moved():
                self._follow()  # closing the descriptor releases the lock
                return
        for n in range(self.backups - 1, 0, -1):
            older = f"{self.path}.{n}"
            if os.path.exists(older):
                os.replace(older, f"{self.path}.{n + 1}")
        if os.path.exists(self.path):
            os.replace(self.path, f"{self.path}.1")
        self.close_sink()  # after the renames: releases the lock
        self.rotations += 1
        self.open_sink()

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self._fd, view)
            view = view[n:]
        self._size += len(data)

    def _write_pieces(self, pieces: list[bytes]) -> None:
        """Write ``pieces`` in order, with one ``writev`` when the file takes them all."""
        size = sum(map(len, pieces))
        done = os.writev(self._fd, pieces) if pieces else 0
        self._size += done
        if done < size:
            self._write_all(b"".join(pieces)[done:])

    def lines_timed(self) -> bool:
        return self.formatter.timed

    def write_batch(self, records: list[Record]) -> None:
        if (self.rotate_bytes or self.rotate_when) and self._fd >= 0:
            # Another process appending to the same file may have rotated it, and it grows
            # with that process's lines too: follow the file, and count its real size.
            try:
                if self._moved():
                    self._follow()
                    now = self.clock()
                    if now >= self._rollover:  # that was this period's rotation
                        self._rollover = next_rollover(now, self.rotate_when)
                self._size = os.fstat(self._fd).st_size
            except OSError as exc:
                raise PartialWriteError(0, exc) from exc
        if self.rotate_when:
            now = self.clock()
            if now >= self._rollover:
                try:
                    self._rotate()
                except OSError as exc:
                    raise PartialWriteError(0, exc) from exc
                self._rollover = next_rollover(now, self.rotate_when)
        if not self.rotate_bytes:
            # The common case: the whole batch encoded and written in one piece.
            try:
                self._write_pieces(self.formatter.encode_pieces(records, self.severity, self.msgid))
                if self.fsync:
                    os.fsync(self._fd)
            except OSError as exc:
                raise PartialWriteError(0, exc) from exc
            return
        lines = self.formatter.lines(records, self.severity, self.msgid)
        done = 0
        try:
            start = 0
            pending = 0
            for index, line in enumerate(lines):
                too_big = self._size + pending + len(line) > self.rotate_bytes
                if too_big and self._size + pending > 0:
                    if pending:
                        self._write_all(b"".join(lines[start:index]))
                        done = index
                    self._rotate()
                    start, pending = index, 0
                pending += len(line)
            self._write_all(b"".join(lines[start:]))
            done = len(lines)
            if self.fsync:
                os.fsync(self._fd)
        except OSError as exc:
            raise PartialWriteError(done, exc) from exc

    @classmethod
    def resolve_paths(cls, kwargs: dict[str, Any], base_dir: str) -> dict[str, Any]:
        """A relative ``path`` is taken from ``base_dir``."""
        path = kwargs.get("path")
        if path is not None and not os.path.isabs(path):
            kwargs["path"] = os.path.join(base_dir, path)
        return kwargs

    def close(self, timeout: float = 5.0) -> None:
        """As :meth:`QueuedLogger.close`; also stops reopening on SIGHUP."""
        _HUP.discard(self)
        super().close(timeout)
