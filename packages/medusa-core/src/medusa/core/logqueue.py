"""The bounded queue and writer thread that every non-blocking logger is built on.

:meth:`LogQueue.put` only appends a record to a bounded in-memory queue and, when the writer
sleeps, wakes it: it never touches a file, a pipe or a socket, so it never blocks the event
loop, whatever the disk, the terminal or the network does. The writer thread does the blocking
part (opening, formatting, writing, reconnecting) in batches, and keeps records in the queue
until they were written, so a failed write loses nothing that is still queued: the writer
opens the destination again with exponential backoff and writes them then. Under load it
lingers a few milliseconds after each batch so that the next one is large (one system call
for hundreds of records, few thread wake-ups and little contention for the GIL with the event
loop). When the queue is full a new record is dropped and counted in
:attr:`LogCounters.dropped`; a notice (:meth:`LogQueue.drop_notice`) is written into the log
itself as soon as writing works again, and a warning goes to the standard library's
``medusa.log`` logger. Nothing is dropped silently.

Core's default console log (:mod:`medusa.core.console`) and every medusa-logging logger (file,
syslog, socket) are subclasses; a subclass implements :meth:`LogQueue.open_sink`,
:meth:`LogQueue.write_batch`, :meth:`LogQueue.close_sink` and :meth:`LogQueue.drop_notice`.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from dataclasses import asdict, dataclass
from itertools import islice, repeat, starmap
from typing import Any, ClassVar

__all__ = [
    "LogCounters",
    "LogQueue",
    "PartialWriteError",
    "close_log_queues",
    "open_log_queues",
]

warnings_log = logging.getLogger("medusa.log")
"""Where the queues report their own trouble (outages, drops)."""

_OPEN: weakref.WeakSet[LogQueue] = weakref.WeakSet()


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
    """Counters of one queue since it was made.

    Attributes:
        received: records accepted into the queue (brought up to date by
            :meth:`LogQueue.stats`: :meth:`LogQueue.put` itself counts nothing, to stay
            lock-free).
        written: records handed to the operating system (file, pipe or socket).
        dropped: records lost: the queue was full, the logger was closed, or they were still
            queued when :meth:`LogQueue.close` gave up.
        errors: failed opens and writes.
        opens: successful opens of the destination (the first one and every reopen).
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


class LogQueue:
    """A bounded queue of log records drained by a writer thread.

    Args:
        buffer: most records held at once (waiting to be written); beyond it new records are
            dropped and counted.
        retry_min: seconds before the first reopen after a failure; doubled after each
            further failure up to ``retry_max`` seconds.
        max_batch: most records written in one go (one system call for a stream or a file).
        linger: seconds the writer waits after a batch smaller than ``max_batch`` before
            looking for more, so that under load records go out in batches; it delays a
            record by at most about this much. When records come slower than one per
            ``linger``, each is written at once.

    Raises:
        ValueError: for non-positive sizes and delays.

    A forked child (a worker of ``medusa serve --workers``) inherits the queue but not its
    writer thread: when :attr:`restart_after_fork` is true (the console) the child starts a
    writer of its own with an empty queue; otherwise the child's copy is closed at once
    (records refused and counted) and the child builds its own loggers.
    """

    name: ClassVar[str] = "queue"
    restart_after_fork: ClassVar[bool] = False
    warnings: ClassVar[logging.Logger] = warnings_log
    """Where this queue reports outages and drops."""

    def __init__(
        self,
        *,
        buffer: int = 65536,
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
        self.retry_min = float(retry_min)
        self.retry_max = float(retry_max)
        self.max_batch = max_batch
        self.linger = linger
        self.counters = LogCounters()
        self.records: deque[Any] = deque()
        """The queued records, oldest first. They stay here until they were written; only
        the writer removes them (popleft); :meth:`put` appends without the lock (deque
        operations are atomic)."""
        self._reset_thread_state()
        _OPEN.add(self)
        self._thread.start()

    def _reset_thread_state(self) -> None:
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.writer_waiting = False
        """True while the writer thread sleeps until a record comes (see :meth:`put`)."""
        self.limit = self.buffer
        """Records are accepted while fewer than this many are queued: :attr:`buffer`, or 0
        once closed (see :meth:`put`)."""
        self._closed = False  # no more records accepted
        self._close_deadline = 0.0
        self._reopen = False
        self._unreported = 0  # drops not yet written as a notice
        self._left_at_close = 0  # accepted, then dropped because still queued at close
        self._open_now = False
        self._down_since: float | None = None
        self._thread = threading.Thread(target=self._run, name=f"medusa-{self.name}", daemon=True)

    # -- the producer side (any thread, never blocks) --------------------------------------

    def put(self, record: Any) -> None:
        """Queue one record for :meth:`write_batch`; when the queue is full or closed, count
        it as dropped. Never blocks, never raises.

        The record is appended without the lock (a ``deque`` append is atomic); the lock is
        taken only to wake a writer that waits for work, and to count a drop. With several
        threads putting at once the queue can hold a record or so more than ``buffer`` per
        thread. A producer on a hot path may do the same inline, in this order::

            if len(log_queue.records) < log_queue.limit:
                log_queue.records.append(record)
                if log_queue.writer_waiting:  # read after the append
                    log_queue.wake_writer()
            else:
                log_queue.refuse()
        """
        queue = self.records
        if len(queue) < self.limit:
            queue.append(record)
            if self.writer_waiting:  # read after the append: see _wait_for_work
                self.wake_writer()
        else:
            self.refuse()

    def wake_writer(self) -> None:
        """Wake the writer thread when it sleeps for want of records (after an append that
        saw :attr:`writer_waiting` true)."""
        with self._lock:
            if self.writer_waiting:
                self.writer_waiting = False
                self._cond.notify()

    def refuse(self) -> None:
        """Count one record dropped (the queue was full or closed): it is reported in the
        log's next drop notice and in :attr:`counters`."""
        with self._lock:
            self.counters.dropped += 1
            self._unreported += 1

    @property
    def queued(self) -> int:
        """Records waiting to be written."""
        return len(self.records)

    def stats(self) -> dict[str, int]:
        """The counters (:class:`LogCounters`) and ``queued``, the current queue length."""
        with self._lock:
            counters = self.counters
            counters.received = counters.written + len(self.records) + self._left_at_close
            return {**counters.as_dict(), "queued": self.queued}

    def reopen(self) -> None:
        """Ask the writer to close and reopen the destination (a log file after logrotate
        moved it; a connection, to resolve a name again). Returns at once."""
        with self._cond:
            self._reopen = True
            self._cond.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued record was written; True when it was within ``timeout``
        seconds. Meant for shutdown and tests, not for the event loop's thread."""
        with self._cond:
            return self._cond.wait_for(lambda: not self.records, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting records, write what is queued within ``timeout`` seconds, count
        what is left as dropped (with a warning) and end the writer thread. Idempotent."""
        with self._cond:
            if not self._closed:
                self._closed = True
                self.limit = 0
                self._close_deadline = time.monotonic() + timeout
            self._cond.notify_all()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout + 1.0)
        if not self._thread.is_alive():
            with self._cond:  # a record another thread appended as the writer ended
                late = len(self.records)
                if late:
                    self.records.clear()
                    self._left_at_close += late
                    self.counters.dropped += late
        _OPEN.discard(self)

    def describe(self) -> str:
        """A short description of the destination for messages (``syslog udp 10.0.0.1:514``)."""
        return self.name

    # -- subclass hooks (writer thread only) ------------------------------------------------

    def open_sink(self) -> None:
        """Open the destination.

        Raises:
            OSError: it cannot be opened (retried with backoff).
        """
        raise NotImplementedError

    def write_batch(self, records: list[Any]) -> None:
        """Write every record of ``records`` (oldest first).

        Raises:
            PartialWriteError: the first ``written`` records were written, then it failed.
            OSError: nothing was written.
        """
        raise NotImplementedError

    def close_sink(self) -> None:
        """Close the destination (raises nothing)."""
        raise NotImplementedError

    def drop_notice(self, count: int) -> Any:
        """The record written into the log, before the next batch, when ``count`` records
        were dropped since the last notice."""
        raise NotImplementedError

    # -- the writer thread -----------------------------------------------------------------

    def _wait_for_work(self) -> list[Any] | None:
        """Under the lock: the next batch (the oldest records, still in the queue), or None
        when the writer should end."""
        cond = self._cond
        while not (self.records or self._reopen or self._closed or self._unreported):
            # Announce the wait, then look again: put() appends before it reads writer_waiting,
            # so a record appended meanwhile is either seen here or wakes the writer.
            self.writer_waiting = True
            if self.records:
                break
            cond.wait()
        self.writer_waiting = False
        if self._closed and (not self.records or time.monotonic() > self._close_deadline):
            return None
        queue = self.records
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
                    self.close_sink()
                    self._open_now = False
                if not self._open_now:
                    self.open_sink()
                    self._open_now = True
                    self._opened()
                if drops:
                    self.write_batch([self.drop_notice(drops)])
                    with self._cond:
                        self._unreported -= drops
                        self.counters.notices += 1
                if batch:
                    self.write_batch(batch)
                written = len(batch)
                delay = self.retry_min
            except PartialWriteError as exc:
                written, failure = exc.written, exc
            except OSError as exc:
                failure = exc
            with self._cond:
                if written:
                    # popleft() ``written`` times, iterated in C (the "consume" recipe).
                    deque(starmap(self.records.popleft, repeat((), written)), maxlen=0)
                    self.counters.written += written
                if not self.records:
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
            self.warnings.warning(
                "%s: writing again after %.1f s", self.describe(), time.time() - self._down_since
            )
            self._down_since = None

    def _failed(self, failure: OSError, delay: float) -> float:
        """After a failed open or write: close, warn once per outage, wait ``delay`` seconds
        (or until closed). Returns the next delay, or -1 when closing (give up)."""
        self.counters.errors += 1
        if self._open_now:
            self.close_sink()
            self._open_now = False
        if self._down_since is None:
            self._down_since = time.time()
            cause = failure.cause if isinstance(failure, PartialWriteError) else failure
            self.warnings.warning(
                "%s: %s; records are kept (buffer %d) and written once it works again",
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

    def _finish(self) -> None:
        """End of the writer: count what is still queued as dropped, report, close."""
        with self._cond:
            left = len(self.records)
            self.records.clear()
            self._left_at_close += left
            self.counters.dropped += left
            self._cond.notify_all()
        if self._open_now:
            self.close_sink()
            self._open_now = False
        if self.counters.dropped:
            self.warnings.warning(
                "%s: %d records dropped in all (%d still queued at close)",
                self.describe(),
                self.counters.dropped,
                left,
            )

    def _forked(self) -> None:
        """In a child just forked: new locks, and either a new writer (records queued in the
        parent are the parent's to write) or closed."""
        self.records.clear()
        self._reset_thread_state()
        self.counters = LogCounters()
        if self.restart_after_fork:
            self._thread.start()
        else:
            self._closed = True
            self.limit = 0
            _OPEN.discard(self)


def _after_fork_in_child() -> None:
    for queue in list(_OPEN):
        queue._forked()


os.register_at_fork(after_in_child=_after_fork_in_child)


def open_log_queues() -> list[LogQueue]:
    """The queues of this process that are open (not closed yet)."""
    return list(_OPEN)


def close_log_queues(timeout: float = 5.0) -> None:
    """Close every open queue (at interpreter exit), each within ``timeout`` seconds: the
    other loggers first, then the console, so that their reports reach it."""
    queues = sorted(_OPEN, key=lambda queue: queue.restart_after_fork)
    for queue in queues:
        queue.close(timeout)


atexit.register(close_log_queues)
