"""A :class:`logging.Handler` that hands standard-library records to a medusa logger, so
libraries that use :mod:`logging` (and core's default access log, which writes to the
``medusa.<protocol>.access`` loggers) reach syslog, a socket or a file without blocking.

Levels map to RFC 5424 severities: DEBUG -> debug, INFO -> info, WARNING -> warning,
ERROR -> err, CRITICAL -> crit (levels in between take the next lower severity).
A record's ``structured_data`` attribute (``logger.info("...", extra={"structured_data":
{"origin@32473": {"ip": "10.0.0.1"}}})``) becomes RFC 5424 structured data; the logger's name
is the MSGID.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from medusa.core.log import Logger
from medusa.logging.records import Entry, Severity

__all__ = ["LoggingHandler", "severity_of"]


def severity_of(levelno: int) -> Severity:
    """The RFC 5424 severity of a :mod:`logging` level number."""
    if levelno >= logging.CRITICAL:
        return Severity.CRIT
    if levelno >= logging.ERROR:
        return Severity.ERR
    if levelno >= logging.WARNING:
        return Severity.WARNING
    if levelno >= logging.INFO:
        return Severity.INFO
    return Severity.DEBUG


class LoggingHandler(logging.Handler):
    """Forward :class:`logging.LogRecord` objects to ``target`` without blocking.

    Args:
        target: a medusa-logging logger (with ``emit(entry)``), or any
            :class:`medusa.core.log.Logger` (given the formatted message only).
        level: the handler's :mod:`logging` level.

    The message is ``self.format(record)``: by default the message with its traceback, if
    any; set a :class:`logging.Formatter` for more. Never raises into the caller: a failure
    goes to :meth:`logging.Handler.handleError`.
    """

    def __init__(self, target: Logger, level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.target = target
        self._emit = getattr(target, "emit", None)

    def emit(self, record: logging.LogRecord) -> None:
        """Queue ``record`` on the target."""
        try:
            message = self.format(record)
            if self._emit is None:
                self.target.log(message)
                return
            data: Any = getattr(record, "structured_data", None)
            self._emit(
                Entry(
                    message,
                    severity_of(record.levelno),
                    record.created,
                    record.name,
                    data if isinstance(data, Mapping) else None,
                )
            )
        except Exception:
            self.handleError(record)

    def handle(self, record: logging.LogRecord) -> bool:
        """As :meth:`logging.Handler.handle`, without the handler lock: the target's queue
        has its own, and taking a second one per record costs the loop time."""
        if not self.filter(record):
            return False
        self.emit(record)
        return True
