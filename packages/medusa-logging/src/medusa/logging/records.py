"""Log records as the loggers queue them, with syslog's severities and facilities.

Severity and facility numbers are those of RFC 5424 §6.2.1 (Tables 1 and 2), which RFC 3164
§4.1.1 uses too.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Mapping

__all__ = [
    "Entry",
    "Facility",
    "Record",
    "Severity",
    "StructuredData",
    "as_entry",
    "parse_facility",
    "parse_severity",
]

StructuredData = Mapping[str, Mapping[str, str]]
"""RFC 5424 §6.3 structured data: SD-ID -> {PARAM-NAME: PARAM-VALUE}."""


class Severity(enum.IntEnum):
    """RFC 5424 §6.2.1 Table 2."""

    EMERG = 0
    ALERT = 1
    CRIT = 2
    ERR = 3
    WARNING = 4
    NOTICE = 5
    INFO = 6
    DEBUG = 7


class Facility(enum.IntEnum):
    """RFC 5424 §6.2.1 Table 1 (the names used by syslog.conf)."""

    KERN = 0
    USER = 1
    MAIL = 2
    DAEMON = 3
    AUTH = 4
    SYSLOG = 5
    LPR = 6
    NEWS = 7
    UUCP = 8
    CRON = 9
    AUTHPRIV = 10
    FTP = 11
    NTP = 12
    SECURITY = 13
    CONSOLE = 14
    SOLARIS_CRON = 15
    LOCAL0 = 16
    LOCAL1 = 17
    LOCAL2 = 18
    LOCAL3 = 19
    LOCAL4 = 20
    LOCAL5 = 21
    LOCAL6 = 22
    LOCAL7 = 23


_SEVERITY_ALIASES = {"error": "err", "warn": "warning", "critical": "crit", "panic": "emerg"}


def parse_severity(value: str | int | Severity) -> Severity:
    """Return the :class:`Severity` named by ``value`` (``"info"``, ``"error"``, ``6``).

    Raises:
        ValueError: for an unknown name or a number outside 0-7.
    """
    if isinstance(value, int):
        return Severity(value)
    name = value.strip().lower()
    name = _SEVERITY_ALIASES.get(name, name)
    try:
        return Severity[name.upper()]
    except KeyError:
        known = ", ".join(s.name.lower() for s in Severity)
        raise ValueError(f"unknown severity {value!r} (known: {known})") from None


def parse_facility(value: str | int | Facility) -> Facility:
    """Return the :class:`Facility` named by ``value`` (``"daemon"``, ``"local0"``, ``3``).

    Raises:
        ValueError: for an unknown name or a number outside 0-23.
    """
    if isinstance(value, int):
        return Facility(value)
    try:
        return Facility[value.strip().upper().replace("-", "_")]
    except KeyError:
        known = ", ".join(f.name.lower() for f in Facility)
        raise ValueError(f"unknown facility {value!r} (known: {known})") from None


class Entry:
    """One record waiting in a logger's buffer.

    Args:
        message: the text (``str``; may hold newlines, for example a traceback).
        severity: its :class:`Severity`.
        timestamp: seconds since the epoch (``time.time()`` when omitted).
        msgid: RFC 5424 MSGID (the stdlib logger name when bridged), or ``None``.
        structured_data: RFC 5424 structured data, or ``None``.
    """

    __slots__ = ("message", "msgid", "severity", "structured_data", "timestamp")

    def __init__(
        self,
        message: str,
        severity: Severity = Severity.INFO,
        timestamp: float | None = None,
        msgid: str | None = None,
        structured_data: StructuredData | None = None,
    ) -> None:
        self.message = message
        self.severity = severity
        self.timestamp = time.time() if timestamp is None else timestamp
        self.msgid = msgid
        self.structured_data = structured_data

    def __repr__(self) -> str:
        return f"Entry({self.message!r}, {self.severity.name}, {self.timestamp})"


Record = Entry | tuple[str, float] | str
"""What a logger's buffer holds: an :class:`Entry`, or for a plain ``log(message)`` line the
cheaper ``(message, timestamp)`` pair, which takes the logger's own severity and MSGID, or,
in a logger whose output has no time of its own (text lines: an access-log line carries its
time), the message alone."""


def as_entry(record: Record, severity: Severity, msgid: str | None) -> Entry:
    """``record`` as an :class:`Entry`: a plain ``(message, timestamp)`` pair or a bare
    message gets ``severity`` and ``msgid`` (a bare message the current time)."""
    if type(record) is tuple:
        return Entry(record[0], severity, record[1], msgid)
    if type(record) is str:
        return Entry(record, severity, None, msgid)
    return record  # type: ignore[return-value]
