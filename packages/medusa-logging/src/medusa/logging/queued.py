"""The base of every medusa-logging logger: core's bounded queue and writer thread
(:class:`medusa.core.logqueue.LogQueue`) with RFC 5424 records, severities, MSGIDs, the
capture of :mod:`logging` loggers and ``medusa.toml`` options.

``log()`` (the :class:`medusa.core.log.Logger` protocol) and :meth:`QueuedLogger.emit` only
append to the bounded queue: they never touch a socket or a file, so they never block the
event loop, whatever the disk or the network does. ``log()`` queues the line with its time as
a plain pair; everything else (syslog headers, timestamps, JSON, encoding) is done by the
writer thread, in batches. Records stay queued until written, so a broken connection loses
nothing still queued: the writer reconnects with exponential backoff and sends them then.
When the queue is full a new record is dropped, counted in :attr:`LogCounters.dropped`, and
reported: a notice (``N records dropped``) is written into the log itself as soon as writing
works again, and a warning goes to the standard library's ``medusa.logging`` logger. Nothing is
dropped silently.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Iterable, Mapping, Sequence
from time import time as _now
from typing import Any, ClassVar

from medusa.core.logqueue import LogCounters, LogQueue, PartialWriteError
from medusa.core.options import ConfigError, Option, positive, validate_options
from medusa.logging.records import Entry, Record, Severity, as_entry, parse_severity

__all__ = ["LogCounters", "PartialWriteError", "QueuedLogger", "common_options", "warnings_log"]

warnings_log = logging.getLogger("medusa.logging")
"""Where the loggers report their own trouble (outages, drops)."""

_CAPTURING: weakref.WeakSet[QueuedLogger] = weakref.WeakSet()


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


class QueuedLogger(LogQueue):
    """Base of the loggers: core's :class:`~medusa.core.logqueue.LogQueue` holding RFC 5424
    records (:class:`~medusa.logging.records.Entry`, or a plain ``log()`` line).

    Subclasses implement :meth:`open_sink`, :meth:`write_batch`, :meth:`close_sink` and
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
        linger: seconds the writer waits after a batch smaller than ``max_batch`` (see
            :class:`~medusa.core.logqueue.LogQueue`).

    Raises:
        ValueError: for a bad severity or non-positive sizes and delays.
    """

    name: ClassVar[str] = "queued"
    options: ClassVar[Mapping[str, Option]] = common_options()
    warnings: ClassVar[logging.Logger] = warnings_log

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
        self.severity: Severity = parse_severity(severity)
        self.msgid = msgid
        self._timed = self.lines_timed()
        self._captured: list[tuple[logging.Logger, logging.Handler, bool]] = []
        super().__init__(
            buffer=buffer,
            retry_min=retry_min,
            retry_max=retry_max,
            max_batch=max_batch,
            linger=linger,
        )
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
        _CAPTURING.add(self)

    def detach(self) -> None:
        """Detach the :mod:`logging` handlers :meth:`capture` attached, restoring each
        logger's ``propagate``."""
        for target, handler, propagate in self._captured:
            target.removeHandler(handler)
            target.propagate = propagate
        self._captured.clear()
        _CAPTURING.discard(self)

    # -- the Logger protocol (any thread, never blocks) -------------------------------------

    def log(self, message: str) -> None:
        """Queue one line at the logger's :attr:`severity` and :attr:`msgid` (the
        :class:`medusa.core.log.Logger` protocol). Never blocks, never raises.

        The fast path of every access log: the line and its time are queued as a plain pair
        (the line alone when the output has no time of its own: see :meth:`lines_timed`),
        as :meth:`~medusa.core.logqueue.LogQueue.put` does, inlined.
        """
        records = self.records
        if len(records) < self.limit:
            records.append((message, _now()) if self._timed else message)
            if self.writer_waiting:  # read after the append
                self.wake_writer()
        else:
            self.refuse()

    def line_queue(self, second: int) -> tuple[str, QueuedLogger] | None:
        """``("", self)`` when :meth:`log` queues bare messages (:meth:`lines_timed` false):
        a server's access log may then append its lines to :attr:`records` itself (see
        :func:`medusa.core.log.line_queue`); None otherwise."""
        return None if self._timed else ("", self)

    def emit(self, entry: Entry) -> None:
        """Queue one record; when the buffer is full or the logger closed, count it as
        dropped (as :meth:`log`)."""
        self.put(entry)

    def close(self, timeout: float = 5.0) -> None:
        """Detach captured loggers, stop accepting records, write what is queued within
        ``timeout`` seconds, count what is left as dropped (with a warning) and end the
        writer thread. Idempotent."""
        self.detach()
        super().close(timeout)

    # -- subclass hooks (writer thread only) ------------------------------------------------

    def write_batch(self, records: list[Record]) -> None:
        """Write every record (an :class:`Entry`, or a ``(message, timestamp)`` pair or bare
        message of a plain :meth:`log` line: see :meth:`entry`). Raises
        :class:`PartialWriteError` (or OSError: nothing written)."""
        raise NotImplementedError

    def lines_timed(self) -> bool:
        """Whether what this logger writes shows each record's time (syslog headers, JSON):
        when not, :meth:`log` queues the bare message (no clock read, no pair made)."""
        return True

    def entry(self, record: Record) -> Entry:
        """``record`` as an :class:`Entry` (a plain line gets this logger's severity and
        MSGID)."""
        return as_entry(record, self.severity, self.msgid)

    def drop_notice(self, count: int) -> Entry:
        """``medusa.logging: N records dropped (...)`` at WARNING."""
        return Entry(
            f"medusa.logging: {count} records dropped (buffer of {self.buffer} full "
            "or destination unavailable)",
            Severity.WARNING,
            None,
            "medusa.logging",
        )


def _detach_in_child() -> None:
    """A worker process forked from one with loggers inherits them closed (core's
    :mod:`~medusa.core.logqueue` sees to that) and their captures: detach those, so the
    child's :mod:`logging` records go where the child decides."""
    for logger in list(_CAPTURING):
        logger.detach()


os.register_at_fork(after_in_child=_detach_in_child)
