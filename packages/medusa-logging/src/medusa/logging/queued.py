"""The bounded buffer and writer thread every medusa-logging logger is built on.

``log()`` (the :class:`medusa.core.log.Logger` protocol) and :meth:`QueuedLogger.emit` only
append to a bounded in-memory queue under a lock and, when the writer sleeps, wake it: they
never touch a socket or a file, so they never block the event loop, whatever the disk or the
network does. ``log()`` queues the line with its time as a plain pair; everything else
(syslog headers, timestamps, JSON, encoding) is done by the writer thread. Each logger's writer
thread does the blocking part (connecting, writing, rotating), in batches, and keeps records in
the queue until they were written, so a broken connection loses nothing that is still queued:
the writer reconnects with exponential backoff and sends them then. Under load the writer
lingers a few milliseconds after each batch so that the next one is large (one system call for
hundreds of records, few thread wake-ups and little contention for the GIL with the event
loop). When the queue is full a new record is dropped, counted in :attr:`LogCounters.dropped`,
and reported: a notice (``N records dropped``) is written into the log itself as soon as
writing works again, and a warning goes to the standard library's ``medusa.logging`` logger.
Nothing is dropped silently.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import islice, repeat, starmap
from time import time as _now
from typing import Any, ClassVar

from medusa.core.options import ConfigError, Option, positive, validate_options
from medusa.logging.records import Entry, Record, Severity, as_entry, parse_severity

__all__ = ["LogCounters", "PartialWriteError", "QueuedLogger", "common_options"]

warnings_log = logging.getLogger("medusa.logging")
"""Where the loggers report their own trouble (outages, drops)."""

_OPEN: weakref.WeakSet[QueuedLogger] = weakref.WeakSet()


class PartialWriteError(OSError):
    """A write failed after the first ``written`` records of the batch were fully written.

    Args:
        written: records written completely before the failure.
        cause: the underlying error.
    """

    def __init__(self, written: int, cause: BaseException) -> None:
        super().__init__(f"{written} records written, then: {cause}")
        self.written = written
        self.cause = cause


@dataclass(slots=True)
class LogCounters:
    """Counters of one logger since it was made.

    Attributes:
        received: records accepted into the buffer (brought up to date by
            :meth:`QueuedLogger.stats`: ``log()`` itself counts nothing, to stay lock-free).
        written: records handed to the operating system (socket or file).
        dropped: records lost: the buffer was full, the logger was closed, or they were still
            queued when :meth:`QueuedLogger.close` gave up.
        errors: failed connects and writes.
        opens: successful opens of the destination (the first one and every reconnect).
        notices: drop notices written into the log.
    """

    received: int = 0
    written: int = 0
    dropped: int = 0
    errors: int = 0
    opens: int = 0
    notices: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a plain dict."""
        return asdict(self)


def _check_names(value: Any) -> str | None:
    if not all(isinstance(v, str) and v for v in value):
        return "must be a list of logging logger names (strings)"
    return None


def _check_severity(value: Any) -> str | None:
    try:
        parse_severity(value)
    except ValueError as exc:
        return str(exc)
    return None


def common_options() -> dict[str, Option]:
    """The ``medusa.toml`` options every queued logger accepts."""
    return {
        o.name: o
        for o in (
            Option(
                "buffer", (int,), "records held while the destination is slow or away", positive
            ),
            Option("severity", (str,), "severity of plain log() lines", _check_severity),
            Option("msgid", (str,), "RFC 5424 MSGID of plain log() lines"),
            Option("capture", (list,), "logging logger names whose records go here", _check_names),
            Option("propagate", (bool,), "captured loggers also pass records to their parents"),
            Option("retry_min", (int, float), "first reconnect delay, seconds", positive),
            Option("retry_max", (int, float), "longest reconnect delay, seconds", positive),
        )
    }


class QueuedLogger:
    """Base of the loggers: a bounded buffer drained by a writer thread.

    Subclasses implement :meth:`_open`, :meth:`_write`, :meth:`_close_sink` and
    :meth:`describe`.

    Args:
        buffer: most records held at once (waiting to be written); beyond it new records are
            dropped and counted.
        severity: severity of lines given to :meth:`log` (a name such as ``"info"``).
        msgid: RFC 5424 MSGID of lines given to :meth:`log` (``"access"``, say), or None.
        capture: names of :mod:`logging` loggers to attach a
            :class:`~medusa.logging.bridge.LoggingHandler` to, so their records come here.
        propagate: when false, the captured loggers stop passing records to their parents
            (the console).
        retry_min: seconds before the first reconnect after a failure; doubled after each
            further failure up to ``retry_max`` seconds.
        max_batch: most records written in one go (one system call for a stream or a file).
        linger: seconds the writer waits after a batch smaller than ``max_batch`` before
            looking for more, so that under load records go out in batches (fewer system
            calls, thread wake-ups and GIL hand-overs, which the event loop pays for too); it
            delays a record by at most about this much. When records come slower than one per
            ``linger``, each is written at once.

    Raises:
        ValueError: for a bad severity or non-positive sizes and delays.
    """

    name: ClassVar[str] = "queued"
    options: ClassVar[Mapping[str, Option]] = common_options()

    def __init__(
        self,
        *,
        buffer: int = 65536,
        severity: str | int = "info",
        msgid: str | None = None,
        capture: Sequence[str] = (),
        propagate: bool = True,
        retry_min: float = 0.1,
        retry_max: float = 30.0,
        max_batch: int = 1024,
        linger: float = 0.01,
    ) -> None:
        if buffer <= 0 or max_batch <= 0:
            raise ValueError("buffer and max_batch must be greater than 0")
        if not 0 < retry_min <= retry_max:
            raise ValueError("retry delays must satisfy 0 < retry_min <= retry_max")
        self.buffer = buffer
        self.severity: Severity = parse_severity(severity)
        self.msgid = msgid
        self.retry_min = float(retry_min)
        self.retry_max = float(retry_max)
        self.max_batch = max_batch
        self.linger = linger
        self.counters = LogCounters()
        self._timed = self._lines_timed()
        # Records stay in the queue until they were written. Only the writer removes them
        # (popleft); log() and emit() append without the lock (deque operations are atomic).
        self._queue: deque[Record] = deque()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._waiting = False
        self._closed = False  # no more records accepted
        self._close_deadline = 0.0
        self._reopen = False
        self._unreported = 0  # drops not yet written as a notice
        self._left_at_close = 0  # accepted, then dropped because still queued at close
        self._open_now = False
        self._down_since: float | None = None
        self._captured: list[tuple[logging.Logger, logging.Handler, bool]] = []
        self._thread = threading.Thread(
            target=self._run, name=f"medusa-logging-{self.name}", daemon=True
        )
        _OPEN.add(self)
        self._thread.start()
        if capture:
            self.capture(capture, propagate=propagate)

    # -- configuration ---------------------------------------------------------------------

    @classmethod
    def from_config(
        cls,
        table: Mapping[str, Any],
        *,
        source: str = "medusa.toml",
        prefix: str = "logger",
        base_dir: str = ".",
    ) -> QueuedLogger:
        """Build a logger from a ``medusa.toml`` table (a ``type`` key is ignored).

        Args:
            table: the options; every key must be in :attr:`options`.
            source: the file name, for error messages.
            prefix: the table's dotted key, for error messages.
            base_dir: directory against which relative paths are resolved.

        Raises:
            ConfigError: for unknown keys, wrong types or bad values.
        """
        settings = {k: v for k, v in table.items() if k != "type"}
        kwargs = validate_options(settings, cls.options, source=source, prefix=prefix)
        kwargs = cls.resolve_paths(kwargs, base_dir)
        try:
            return cls(**kwargs)
        except (ValueError, OSError) as exc:
            raise ConfigError(source, prefix, str(exc)) from exc

    @classmethod
    def resolve_paths(cls, kwargs: dict[str, Any], base_dir: str) -> dict[str, Any]:
        """Make path options absolute against ``base_dir`` (subclasses with paths override)."""
        return kwargs

    def describe(self) -> str:
        """A short description of the destination for messages (``syslog udp 10.0.0.1:514``)."""
        return self.name

    def capture(self, names: Iterable[str], *, propagate: bool = True) -> None:
        """Attach a :class:`~medusa.logging.bridge.LoggingHandler` for this logger to each
        named :mod:`logging` logger (``""`` is the root logger); :meth:`close` detaches them.
        """
        from medusa.logging.bridge import LoggingHandler

        for name in names:
            target = logging.getLogger(name)
            handler = LoggingHandler(self)
            target.addHandler(handler)
            self._captured.append((target, handler, target.propagate))
            if not propagate:
                target.propagate = False

    # -- the Logger protocol (any thread, never blocks) -------------------------------------

    def log(self, message: str) -> None:
        """Queue one line at the logger's :attr:`severity` and :attr:`msgid` (the
        :class:`medusa.core.log.Logger` protocol). Never blocks, never raises.

        The fast path of every access log: the line and its time are appended to the queue as
        a plain pair (the line alone when the output has no time of its own: see
        :meth:`_lines_timed`), without taking the lock (a ``deque`` append is atomic); the
        lock is taken only to wake a writer that waits for work, and to count a drop. With
        several threads logging at once the buffer can hold a record or so more than
        ``buffer`` per thread.
        """
        queue = self._queue
        if len(queue) < self.buffer and not self._closed:
            queue.append((message, _now()) if self._timed else message)
            if self._waiting:  # read after the append: see _wait_for_work
                self._wake()
        else:
            self._drop()

    def emit(self, entry: Entry) -> None:
        """Queue one record; when the buffer is full or the logger closed, count it as dropped
        (as :meth:`log`)."""
        queue = self._queue
        if len(queue) < self.buffer and not self._closed:
            queue.append(entry)
            if self._waiting:
                self._wake()
        else:
            self._drop()

    def _wake(self) -> None:
        with self._lock:
            if self._waiting:
                self._waiting = False
                self._cond.notify()

    def _drop(self) -> None:
        """Count a refused record."""
        with self._lock:
            self.counters.dropped += 1
            self._unreported += 1

    @property
    def queued(self) -> int:
        """Records waiting to be written."""
        return len(self._queue)

    def stats(self) -> dict[str, int]:
        """The counters and the current queue length."""
        with self._lock:
            self._count_received()
            return {**self.counters.as_dict(), "queued": self.queued}

    def reopen(self) -> None:
        """Ask the writer to close and reopen the destination (a log file after logrotate
        moved it: SIGHUP; a connection, to resolve a name again). Returns at once."""
        with self._cond:
            self._reopen = True
            self._cond.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued record was written; True when it was within ``timeout``
        seconds. Meant for shutdown and tests, not for the event loop's thread."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting records, write what is queued within ``timeout`` seconds, count
        what is left as dropped (with a warning), detach captured loggers and end the
        writer thread. Idempotent."""
        for target, handler, propagate in self._captured:
            target.removeHandler(handler)
            target.propagate = propagate
        self._captured.clear()
        with self._cond:
            if not self._closed:
                self._closed = True
                self._close_deadline = time.monotonic() + timeout
            self._cond.notify_all()
        self._thread.join(timeout + 1.0)
        if not self._thread.is_alive():
            with self._cond:  # a record another thread appended as the writer ended
                late = len(self._queue)
                if late:
                    self._queue.clear()
                    self._left_at_close += late
                    self.counters.dropped += late
        _OPEN.discard(self)

    # -- subclass hooks (writer thread only) ------------------------------------------------

    def _open(self) -> None:
        """Open the destination. Raises OSError on failure."""
        raise NotImplementedError

    def _write(self, records: list[Record]) -> None:
        """Write every record (an :class:`Entry`, or a ``(message, timestamp)`` pair of a
        plain :meth:`log` line: see :meth:`_entry`). Raises :class:`PartialWriteError` (or
        OSError: nothing written)."""
        raise NotImplementedError

    def _close_sink(self) -> None:
        """Close the destination (no error raised)."""
        raise NotImplementedError

    def _lines_timed(self) -> bool:
        """Whether what this logger writes shows each record's time (syslog headers, JSON):
        when not, :meth:`log` queues the bare message (no clock read, no pair made)."""
        return True

    def _entry(self, record: Record) -> Entry:
        """``record`` as an :class:`Entry` (a plain line gets this logger's severity and
        MSGID)."""
        return as_entry(record, self.severity, self.msgid)

    # -- the writer thread -----------------------------------------------------------------

    def _count_received(self) -> None:
        """Under the lock: bring :attr:`LogCounters.received` up to date (log() does not
        count, to stay lock-free: what was accepted is what was written, what is queued,
        and what was still queued at close)."""
        counters = self.counters
        counters.received = counters.written + len(self._queue) + self._left_at_close

    def _wait_for_work(self) -> list[Record] | None:
        """Under the lock: the next batch (the oldest records, still in the queue), or None
        when the writer should end."""
        cond = self._cond
        while not (self._queue or self._reopen or self._closed or self._unreported):
            # Announce the wait, then look again: log() appends before it reads _waiting,
            # so a record appended meanwhile is either seen here or wakes the writer.
            self._waiting = True
            if self._queue:
                break
            cond.wait()
        self._waiting = False
        if self._closed and (not self._queue or time.monotonic() > self._close_deadline):
            return None
        queue = self._queue
        if len(queue) <= self.max_batch:
            return list(queue)
        return list(islice(queue, 0, self.max_batch))

    def _run(self) -> None:
        delay = self.retry_min
        while True:
            with self._cond:
                batch = self._wait_for_work()
                if batch is None:
                    break
                reopen, self._reopen = self._reopen, False
                drops = self._unreported
            written = 0
            failure: OSError | None = None
            try:
                if reopen and self._open_now:
                    self._close_sink()
                    self._open_now = False
                if not self._open_now:
                    self._open()
                    self._open_now = True
                    self._opened()
                if drops:
                    self._write([self._drop_notice(drops)])
                    with self._cond:
                        self._unreported -= drops
                        self.counters.notices += 1
                if batch:
                    self._write(batch)
                written = len(batch)
                delay = self.retry_min
            except PartialWriteError as exc:
                written, failure = exc.written, exc
            except OSError as exc:
                failure = exc
            with self._cond:
                if written:
                    # popleft() ``written`` times, iterated in C (the "consume" recipe).
                    deque(starmap(self._queue.popleft, repeat((), written)), maxlen=0)
                    self.counters.written += written
                if not self._queue:
                    self._cond.notify_all()  # flush() waiters
            if failure is not None:
                delay = self._failed(failure, delay)
                if delay < 0:
                    break
            elif self.linger and 0 < written < self.max_batch and not self._closed:
                time.sleep(self.linger)  # let the next records gather into one batch
        self._finish()

    def _opened(self) -> None:
        self.counters.opens += 1
        if self._down_since is not None:
            warnings_log.warning(
                "%s: reconnected after %.1f s", self.describe(), time.time() - self._down_since
            )
            self._down_since = None

    def _failed(self, failure: OSError, delay: float) -> float:
        """After a failed open or write: close, warn once per outage, wait ``delay`` seconds
        (or until closed). Returns the next delay, or -1 when closing (give up)."""
        self.counters.errors += 1
        if self._open_now:
            self._close_sink()
            self._open_now = False
        if self._down_since is None:
            self._down_since = time.time()
            cause = failure.cause if isinstance(failure, PartialWriteError) else failure
            warnings_log.warning(
                "%s: %s; records are kept (buffer %d) and sent after a reconnect",
                self.describe(),
                cause,
                self.buffer,
            )
        with self._cond:
            if self._closed:
                return -1.0
            self._cond.wait_for(lambda: self._closed, delay)
            if self._closed and time.monotonic() > self._close_deadline:
                return -1.0
        return min(delay * 2, self.retry_max)

    def _drop_notice(self, count: int) -> Entry:
        return Entry(
            f"medusa.logging: {count} records dropped (buffer of {self.buffer} full "
            "or destination unavailable)",
            Severity.WARNING,
            None,
            "medusa.logging",
        )

    def _finish(self) -> None:
        """End of the writer: count what is still queued as dropped, report, close."""
        with self._cond:
            left = len(self._queue)
            self._queue.clear()
            self._left_at_close += left
            self.counters.dropped += left
            self._cond.notify_all()
        if self._open_now:
            self._close_sink()
            self._open_now = False
        if self.counters.dropped:
            warnings_log.warning(
                "%s: %d records dropped in all (%d still queued at close)",
                self.describe(),
                self.counters.dropped,
                left,
            )


def _after_fork_in_child() -> None:
    """A process forked from one with loggers (a worker of ``medusa serve --workers``)
    inherits them but not their writer threads: in the child each one is closed at once
    (records refused and counted as dropped, captured :mod:`logging` loggers detached, its
    locks new), so nothing piles up for a thread that does not exist; the child builds its
    own loggers."""
    for logger in list(_OPEN):
        logger._lock = threading.Lock()
        logger._cond = threading.Condition(logger._lock)
        logger._waiting = False
        logger._closed = True
        logger._queue.clear()
        for target, handler, propagate in logger._captured:
            target.removeHandler(handler)
            target.propagate = propagate
        logger._captured.clear()
    _OPEN.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


def close_all(timeout: float = 5.0) -> None:
    """Close every open logger (at interpreter exit), each within ``timeout`` seconds."""
    for logger in list(_OPEN):
        logger.close(timeout)


atexit.register(close_all)
