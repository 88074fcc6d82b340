"""The ``medusa`` command's default log: lines to standard error through a :class:`LogQueue`.

Every line, an access line or a :mod:`logging` record, is written as
``2026-12-06 10:30:18 medusa.http.access INFO <message>`` (local time, to the second, as
nginx's and gunicorn's logs), by a writer thread, in batches: a terminal, a pipe to
journald or a file that is slow, full or not read never stops the event loop. While standard
error cannot take more, lines wait in a bounded queue; beyond it they are dropped, counted,
and reported by a line ``medusa: N log lines dropped ...`` as soon as writing works again.

Two ways in:

* :class:`ConsoleHandler`, the root :mod:`logging` handler the command installs
  (:func:`install_console`): errors, warnings, start-up lines, libraries' records.
* :class:`ConsoleLogger`, a :class:`~medusa.core.log.Logger` for one logger name, which
  servers' default logs (the HTTP access log, FTP's session log and xferlog, the monitor's
  audit log) use when nothing else listens on that name (see
  :func:`medusa.core.log.default_logger`): the line goes straight to the queue, without a
  :class:`logging.LogRecord`, so a line costs a clock read, a concatenation and an append;
  its prefix (time, name, level) is made once a second. The HTTP server's access log goes
  one step further: it asks the logger once a second for that prefix and the queue
  (:meth:`ConsoleLogger.line_queue`, see :func:`medusa.core.log.line_queue`) and appends
  each whole line itself.

The queue holds whole lines (prefix and message, no newline); the writer joins a batch with
newlines and writes it with one ``write``.
"""

from __future__ import annotations

import logging
import os
import select
import sys
import time
from typing import Any, ClassVar

from medusa.core.log import StdlibLogger
from medusa.core.logqueue import LogQueue, PartialWriteError

__all__ = [
    "DEFAULT_BUFFER",
    "ConsoleHandler",
    "ConsoleLog",
    "ConsoleLogger",
    "console",
    "direct_route",
    "install_console",
    "line_prefix",
]

DEFAULT_BUFFER = 16384
"""Lines the console holds by default while standard error cannot take more (``medusa
--log-buffer``): about 2 MB of access lines."""

_now = time.time


def line_prefix(at: float, name: str, levelname: str) -> str:
    """``"2026-12-06 10:30:18 NAME LEVEL "``: the start of a console line logged at ``at``
    (seconds since the epoch; local time, as :mod:`logging`'s default)."""
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(at))} {name} {levelname} "


class ConsoleLog(LogQueue):
    """Lines written to a file descriptor (standard error by default) by a writer thread.

    Args:
        fd: the descriptor written to; it is not closed. Blocking or not: a full
            non-blocking pipe is waited on with :func:`select.select`.
        buffer: most lines held while the descriptor cannot take more; beyond it lines are
            dropped and counted.
        **kwargs: the other options of :class:`~medusa.core.logqueue.LogQueue`.
    """

    name: ClassVar[str] = "console"
    restart_after_fork: ClassVar[bool] = True

    def __init__(self, fd: int = 2, *, buffer: int = DEFAULT_BUFFER, **kwargs: Any) -> None:
        self.fd = fd
        super().__init__(buffer=buffer, **kwargs)

    def describe(self) -> str:
        """``console (fd N)``."""
        return f"console (fd {self.fd})"

    def open_sink(self) -> None:
        """Nothing to open: the descriptor is the process's own."""

    def close_sink(self) -> None:
        """Nothing to close: the descriptor stays the process's."""

    def drop_notice(self, count: int) -> str:
        """``medusa WARNING N log lines dropped (...)``, as a line of the log."""
        return (
            f"{line_prefix(time.time(), 'medusa', 'WARNING')}{count} log lines dropped "
            f"(standard error did not take them: queue of {self.buffer} lines full)"
        )

    def write_batch(self, records: list[str]) -> None:
        """Write the lines in one ``writev`` (the joined lines and the last newline, so the
        batch is not copied once more to append it; more calls when the descriptor takes
        part of it).

        Raises:
            PartialWriteError: after some lines were written completely.
            OSError: nothing was written (a closed pipe: ``EPIPE``).
        """
        data = "\n".join(records).encode("utf-8", "backslashreplace")
        size = len(data)
        view = memoryview(data)
        done = 0
        try:
            while done <= size:
                try:
                    done += os.writev(self.fd, (view[done:], b"\n"))
                except BlockingIOError:
                    select.select([], [self.fd], [], 1.0)
                except InterruptedError:
                    continue
        except OSError as exc:
            if done == 0:
                raise
            # Lines complete: the newlines among the bytes written.
            written = data.count(b"\n", 0, done) + (done > size)
            raise PartialWriteError(written, exc) from exc


class ConsoleHandler(logging.Handler):
    """A :mod:`logging` handler that queues each record on a :class:`ConsoleLog`.

    The line (its prefix, the message and any traceback) is made in the caller's thread:
    the objects a record names may change later.

    Args:
        target: the console queue.
        level: the handler's :mod:`logging` level.
    """

    def __init__(self, target: ConsoleLog, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.target = target
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        """Queue ``record`` (never blocks)."""
        try:
            message = self.format(record)
            self.target.put(line_prefix(record.created, record.name, record.levelname) + message)
        except Exception:
            self.handleError(record)

    def handle(self, record: logging.LogRecord) -> bool:
        """As :meth:`logging.Handler.handle`, without the handler lock (the queue is safe
        to append to from any thread)."""
        if not self.filter(record):
            return False
        self.emit(record)
        return True


class ConsoleLogger(StdlibLogger):
    """A :class:`~medusa.core.log.StdlibLogger` that takes a shortcut: its lines go straight
    to the console queue, as the root's :class:`ConsoleHandler` would have written them,
    without a :class:`logging.LogRecord`. Only for names whose records reach nothing else
    (:func:`direct_route`).

    Args:
        name: the :mod:`logging` logger name shown in each line (``medusa.http.access``);
            its level decides whether a line is kept (``--log-level warning`` drops access
            lines).
        target: the console queue.
    """

    __slots__ = ("_enabled", "_next", "_prefix", "_records", "_since", "name", "target")

    def __init__(self, name: str, target: ConsoleLog) -> None:
        super().__init__(name)
        self.name = name
        self.target = target
        self._records = target.records
        self._prefix = ""
        self._enabled = False
        self._since = self._next = 0.0  # the second the prefix and _enabled are for

    def log(self, message: str) -> None:
        """Queue ``message`` as one INFO line (never blocks): :meth:`ConsoleLog.put`,
        inlined (this is every access line's path). The prefix and whether the logger's
        level lets INFO lines through are found once a second (a level changed at run
        time applies within a second)."""
        now = _now()
        if now >= self._next or now < self._since:  # a new second, or the clock set back
            self._refresh(now)
        if self._enabled:
            records = self._records
            target = self.target
            if len(records) < target.limit:
                records.append(self._prefix + message)
                if target.writer_waiting:  # read after the append
                    target.wake_writer()
            else:
                target.refuse()

    def line_queue(self, second: int) -> tuple[str, ConsoleLog] | None:
        """``(prefix, console queue)`` for lines logged in ``second`` (seconds since the
        epoch), None when this logger's level drops INFO lines: see
        :func:`medusa.core.log.line_queue` (a server's access log appends its lines
        itself)."""
        if not self._logger.isEnabledFor(logging.INFO):
            return None
        return line_prefix(second, self.name, "INFO"), self.target

    def _refresh(self, now: float) -> None:
        """The prefix of lines logged at ``now`` (seconds since the epoch), and whether
        INFO lines are enabled, for the second ``now`` is in."""
        second = int(now)
        self._since, self._next = float(second), second + 1.0
        self._prefix = line_prefix(second, self.name, "INFO")
        self._enabled = self._logger.isEnabledFor(logging.INFO)


_console: ConsoleLog | None = None


def console() -> ConsoleLog | None:
    """The console queue :func:`install_console` made, or None."""
    return _console


def install_console(
    level: int = logging.INFO, fd: int | None = None, *, buffer: int = DEFAULT_BUFFER
) -> ConsoleLog:
    """Make standard error the non-blocking destination of :mod:`logging`'s root logger:
    a :class:`ConsoleHandler` on a :class:`ConsoleLog` replaces the root's handlers, and
    the root's level is set to ``level``. Called once by the ``medusa`` command; a second
    call changes the level and returns the same queue.

    Args:
        level: a :mod:`logging` level number.
        fd: the descriptor to write to (default: that of :data:`sys.stderr`, else 2).
        buffer: most lines held while the descriptor cannot take more (see
            :class:`ConsoleLog`).
    """
    global _console
    root = logging.getLogger()
    root.setLevel(level)
    if _console is None:
        if fd is None:
            try:
                fd = sys.stderr.fileno()
            except (AttributeError, OSError, ValueError):
                fd = 2
        _console = ConsoleLog(fd, buffer=buffer)
        for handler in list(root.handlers):
            root.removeHandler(handler)
        root.addHandler(ConsoleHandler(_console))
    return _console


def direct_route(name: str) -> ConsoleLog | None:
    """The console queue when it is the only place a record of logger ``name`` goes (no
    handler or filter on ``name`` or its parents but the root's console handler, none of
    them disabled or stopping propagation), else None: then lines must go through
    :mod:`logging` to reach what else is attached (medusa-logging's ``capture``, a
    script's own handlers)."""
    if _console is None:
        return None
    logger: logging.Logger | None = logging.getLogger(name)
    while logger is not None:
        if logger.disabled or logger.filters:
            return None
        if logger.parent is None:  # the root
            handlers = logger.handlers
            only = handlers[0] if len(handlers) == 1 else None
            if (
                isinstance(only, ConsoleHandler)
                and only.target is _console
                and not only.filters
                and only.level <= logging.INFO
            ):
                return _console
            return None
        if logger.handlers or not logger.propagate:
            return None
        logger = logger.parent
    return None
