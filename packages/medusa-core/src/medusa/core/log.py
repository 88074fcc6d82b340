"""The logger protocol that servers write through, and its default on :mod:`logging`.

The original Medusa had ``logger`` objects with a ``log(message)`` method (file, syslog,
socket, multi). medusa-logging provides non-blocking implementations under the
``medusa.loggers`` entry-point group; core's default hands lines to the standard library's
:mod:`logging`.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

__all__ = ["Logger", "StdlibLogger", "access_logger", "error_logger"]


@runtime_checkable
class Logger(Protocol):
    """Anything that accepts one log line (``str``, no trailing newline) and never blocks."""

    def log(self, message: str) -> None:
        """Record one line."""
        ...


class StdlibLogger:
    """A :class:`Logger` that forwards each line to a :class:`logging.Logger` at INFO.

    Args:
        name: the :mod:`logging` logger name, for example ``"medusa.http.access"``.
        level: the :mod:`logging` level used for each line.
    """

    __slots__ = ("_level", "_logger")

    def __init__(self, name: str, level: int = logging.INFO) -> None:
        self._logger = logging.getLogger(name)
        self._level = level

    @property
    def enabled(self) -> bool:
        """True when a line at this logger's level would be recorded (callers skip the
        formatting of lines nobody will see)."""
        return self._logger.isEnabledFor(self._level)

    def log(self, message: str) -> None:
        """Forward ``message`` to the wrapped :mod:`logging` logger."""
        if self._logger.isEnabledFor(self._level):
            self._logger.log(self._level, "%s", message)


def access_logger(protocol: str) -> Logger:
    """Return the default access logger of a protocol (``medusa.<protocol>.access``)."""
    return StdlibLogger(f"medusa.{protocol}.access")


error_logger = logging.getLogger("medusa")
"""The :mod:`logging` logger for errors and tracebacks (``medusa`` and its children)."""
