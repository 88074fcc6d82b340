"""The multi logger: one record fanned out to several loggers (the original's
``multi_logger``)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from medusa.core.log import Logger
from medusa.core.options import ConfigError, Option, validate_options
from medusa.logging.records import Entry

__all__ = ["MultiLogger"]


def _check_tables(value: Any) -> str | None:
    if not value or not all(isinstance(t, Mapping) and "type" in t for t in value):
        return 'must be a non-empty array of tables, each with a type (type = "file", ...)'
    return None


def _check_names(value: Any) -> str | None:
    if not all(isinstance(v, str) for v in value):
        return "must be a list of logging logger names (strings)"
    return None


def _describe(logger: Logger) -> str:
    describe = getattr(logger, "describe", None)
    return str(describe()) if describe is not None else type(logger).__name__


class MultiLogger:
    """Hand every record to each of ``loggers`` in turn. Each of them queues it on its own
    (see :class:`~medusa.logging.queued.QueuedLogger`), so a slow or dead destination
    delays none of the others and never the loop.

    Args:
        loggers: the destinations: any :class:`medusa.core.log.Logger`; those with an
            ``emit(entry)`` method (the medusa-logging loggers) get the whole record with its
            severity and time, the others its message.
        capture: names of :mod:`logging` loggers whose records go to all of them.
        propagate: when false, the captured loggers stop passing records to their parents.

    Raises:
        ValueError: when ``loggers`` is empty.
    """

    name: ClassVar[str] = "multi"
    options: ClassVar[Mapping[str, Option]] = {
        o.name: o
        for o in (
            Option("loggers", (list,), "the loggers, as tables with a type", _check_tables),
            Option("capture", (list,), "logging logger names whose records go here", _check_names),
            Option("propagate", (bool,), "captured loggers also pass records to their parents"),
        )
    }

    def __init__(
        self,
        loggers: Sequence[Logger],
        *,
        capture: Sequence[str] = (),
        propagate: bool = True,
    ) -> None:
        if not loggers:
            raise ValueError("a multi logger needs at least one logger")
        self.loggers = list(loggers)
        self._captured: list[tuple[logging.Logger, logging.Handler, bool]] = []
        if capture:
            self.capture(capture, propagate=propagate)

    @classmethod
    def from_config(
        cls,
        table: Mapping[str, Any],
        *,
        source: str = "medusa.toml",
        prefix: str = "logger",
        base_dir: str = ".",
    ) -> MultiLogger:
        """Build from ``{"loggers": [{"type": "file", ...}, ...], "capture": [...]}``.

        Raises:
            ConfigError: for unknown keys, wrong types, or a bad inner logger table.
        """
        from medusa.logging.config import logger_from_config

        settings = {k: v for k, v in table.items() if k != "type"}
        kwargs = validate_options(settings, cls.options, source=source, prefix=prefix)
        if "loggers" not in kwargs:
            raise ConfigError(source, f"{prefix}.loggers", "missing: the loggers to fan out to")
        children = [
            logger_from_config(t, source=source, prefix=f"{prefix}.loggers[{i}]", base_dir=base_dir)
            for i, t in enumerate(kwargs.pop("loggers"))
        ]
        return cls(children, **kwargs)

    def capture(self, names: Iterable[str], *, propagate: bool = True) -> None:
        """Attach a :class:`~medusa.logging.bridge.LoggingHandler` for this logger to each
        named :mod:`logging` logger; :meth:`close` detaches them."""
        from medusa.logging.bridge import LoggingHandler

        for name in names:
            target = logging.getLogger(name)
            handler = LoggingHandler(self)
            target.addHandler(handler)
            self._captured.append((target, handler, target.propagate))
            if not propagate:
                target.propagate = False

    def describe(self) -> str:
        """``multi (DESTINATION, ...)``."""
        inner = ", ".join(_describe(lg) for lg in self.loggers)
        return f"multi ({inner})"

    def log(self, message: str) -> None:
        """Give ``message`` to every logger."""
        for logger in self.loggers:
            logger.log(message)

    def emit(self, entry: Entry) -> None:
        """Give ``entry`` to every logger (its message to those without ``emit``)."""
        for logger in self.loggers:
            emit = getattr(logger, "emit", None)
            if emit is not None:
                emit(entry)
            else:
                logger.log(entry.message)

    def reopen(self) -> None:
        """Reopen every logger's destination that can be reopened."""
        for logger in self.loggers:
            reopen = getattr(logger, "reopen", None)
            if reopen is not None:
                reopen()

    def flush(self, timeout: float = 5.0) -> bool:
        """Flush each logger (``timeout`` seconds each); True when all were flushed."""
        results = [lg.flush(timeout) for lg in self.loggers if hasattr(lg, "flush")]
        return all(results)

    def stats(self) -> dict[str, dict[str, int]]:
        """Each logger's counters, by its description."""
        out: dict[str, dict[str, int]] = {}
        for index, logger in enumerate(self.loggers):
            stats = getattr(logger, "stats", None)
            key = f"{index} {_describe(logger)}"
            out[key] = stats() if stats is not None else {}
        return out

    def close(self, timeout: float = 5.0) -> None:
        """Detach captured loggers and close every logger that can be closed."""
        for target, handler, propagate in self._captured:
            target.removeHandler(handler)
            target.propagate = propagate
        self._captured.clear()
        for logger in self.loggers:
            close = getattr(logger, "close", None)
            if close is not None:
                close(timeout)
