"""medusa-logging: loggers that never block the loop (syslog RFC 3164/5424, socket, file,
multi), and a bridge from the standard library's :mod:`logging`.

Every logger implements core's :class:`medusa.core.log.Logger` protocol (``log(message)``),
so it can be any server's access log, and has ``from_config(table)`` for ``medusa.toml``.
"""

from __future__ import annotations

from medusa.logging.bridge import LoggingHandler
from medusa.logging.config import logger_from_config, logger_types
from medusa.logging.file import FileLogger
from medusa.logging.multi import MultiLogger
from medusa.logging.queued import LogCounters, QueuedLogger
from medusa.logging.records import Entry, Facility, Severity
from medusa.logging.stream import SocketLogger
from medusa.logging.syslog import SyslogLogger

__version__ = "0.1.0"

__all__ = [
    "Entry",
    "Facility",
    "FileLogger",
    "LogCounters",
    "LoggingHandler",
    "MultiLogger",
    "QueuedLogger",
    "Severity",
    "SocketLogger",
    "SyslogLogger",
    "logger_from_config",
    "logger_types",
]
