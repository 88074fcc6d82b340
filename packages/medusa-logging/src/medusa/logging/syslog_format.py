"""Syslog messages as bytes, without any I/O (sans-IO): RFC 5424, RFC 3164 and RFC 6587 framing.

* RFC 5424 §6: ``<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [BOM]MSG``.
* RFC 3164 §4.1: ``<PRI>Mmm dd hh:mm:ss HOSTNAME TAG[PID]: MSG`` (the form glibc's
  ``syslog(3)`` writes to ``/dev/log`` omits HOSTNAME).
* RFC 6587 §3.4.1: octet counting, ``MSG-LEN SP SYSLOG-MSG``, for syslog over TCP.

Formatting never raises for odd input: header fields are reduced to the characters their
grammar allows and over-long messages are truncated, so a log call can never fail here.
"""

from __future__ import annotations

import datetime as _dt
import os
import socket
import time
from collections.abc import Sequence
from itertools import repeat

from medusa.logging.records import Entry, Facility, Record, Severity, StructuredData, as_entry

__all__ = [
    "RFC3164_MAX",
    "SyslogFormatter",
    "frame_octet_counting",
    "header_field",
    "rfc3339",
    "structured_data",
]

NILVALUE = "-"
BOM = b"\xef\xbb\xbf"
RFC3164_MAX = 1024
"""RFC 3164 §4.1: the total length of a packet MUST be 1024 bytes or less."""

_MICRO = 1e6
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_PRINTUSASCII = frozenset(range(33, 127))
_SD_NAME_FORBIDDEN = frozenset('= ]"')


def header_field(value: str | None, max_length: int) -> str:
    """Return ``value`` as an RFC 5424 §6.2 header field: PRINTUSASCII (33-126) only, at most
    ``max_length`` characters, NILVALUE ``-`` when empty. Other characters become ``_``."""
    if not value:
        return NILVALUE
    cleaned = "".join(c if ord(c) in _PRINTUSASCII else "_" for c in value[:max_length])
    return cleaned


def _sd_name(value: str) -> str:
    """SD-NAME (RFC 5424 §6.3.2/§6.3.3): 1-32 PRINTUSASCII except ``= ] "`` and space."""
    cleaned = "".join(
        c if ord(c) in _PRINTUSASCII and c not in _SD_NAME_FORBIDDEN else "_" for c in value[:32]
    )
    return cleaned or "_"


def _param_value(value: str) -> str:
    """PARAM-VALUE (RFC 5424 §6.3.3): ``"``, ``\\`` and ``]`` escaped with a backslash."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def structured_data(data: StructuredData | None) -> str:
    """Return STRUCTURED-DATA (RFC 5424 §6.3) for ``{SD-ID: {PARAM-NAME: value}}``, or ``-``.

    SD-IDs without ``@`` are reserved for IANA-registered names (``timeQuality``,
    ``origin``, ``meta``); private ones take the form ``name@enterprise-number``.
    """
    if not data:
        return NILVALUE
    parts: list[str] = []
    for sd_id, params in data.items():
        body = "".join(f' {_sd_name(k)}="{_param_value(str(v))}"' for k, v in params.items())
        parts.append(f"[{_sd_name(sd_id)}{body}]")
    return "".join(parts)


_second_cache: dict[tuple[int, bool], str] = {}


def rfc3339(timestamp: float, utc: bool = True) -> str:
    """RFC 5424 §6.2.3 TIMESTAMP: RFC 3339 with microseconds, ``Z`` in UTC or the local offset.

    The part down to the second is computed once per second and reused.
    """
    second = int(timestamp // 1)
    micro = int((timestamp - second) * 1e6)
    if micro > 999999:
        micro = 999999
    key = (second, utc)
    cached = _second_cache.get(key)
    if cached is None:
        if len(_second_cache) > 64:
            _second_cache.clear()
        if utc:
            moment = _dt.datetime.fromtimestamp(second, _dt.UTC)
            cached = moment.strftime("%Y-%m-%dT%H:%M:%S.{}Z")
        else:
            moment = _dt.datetime.fromtimestamp(second).astimezone()
            text = moment.isoformat(timespec="seconds")
            cached = f"{text[:19]}.{{}}{text[19:]}"
        _second_cache[key] = cached
    return cached.replace("{}", f"{micro:06d}", 1)


def _bsd_time(timestamp: float) -> str:
    """RFC 3164 §4.1.2 TIMESTAMP: ``Mmm dd hh:mm:ss`` in local time, day padded with a space."""
    t = time.localtime(timestamp)
    return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d}"


def _truncate(head: bytes, message: bytes, limit: int) -> bytes:
    """``head + message`` cut to ``limit`` bytes without splitting a UTF-8 sequence."""
    if len(head) + len(message) <= limit:
        return head + message
    room = max(0, limit - len(head))
    return head + message[:room].decode("utf-8", "ignore").encode("utf-8")


def frame_octet_counting(message: bytes) -> bytes:
    """RFC 6587 §3.4.1 octet-counting frame: ``MSG-LEN SP SYSLOG-MSG``."""
    return b"%d %s" % (len(message), message)


class SyslogFormatter:
    """Turns :class:`~medusa.logging.records.Entry` records into syslog messages.

    Args:
        rfc: ``"5424"`` or ``"3164"``.
        facility: the facility of every message.
        hostname: HOSTNAME (``None``: :func:`socket.gethostname`); ``""`` omits it from RFC
            3164 messages, as glibc does on ``/dev/log``.
        app_name: APP-NAME (RFC 5424, at most 48 characters) and the RFC 3164 TAG (at most
            32 alphanumeric characters).
        procid: PROCID (``None``: this process's id).
        max_message: largest message in bytes (at most 1024 for RFC 3164); longer MSG parts
            are truncated.
        bom: start an RFC 5424 MSG with the UTF-8 byte order mark (§6.4 SHOULD).
        utc: RFC 5424 timestamps in UTC (``Z``) rather than local time with its offset.
    """

    def __init__(
        self,
        rfc: str = "5424",
        *,
        facility: Facility = Facility.DAEMON,
        hostname: str | None = None,
        app_name: str = "medusa",
        procid: str | None = None,
        max_message: int = 8192,
        bom: bool = False,
        utc: bool = True,
    ) -> None:
        if rfc not in ("5424", "3164"):
            raise ValueError(f"unknown syslog format {rfc!r} (5424 or 3164)")
        self.rfc = rfc
        self.facility = facility
        host = socket.gethostname() if hostname is None else hostname
        pid = str(os.getpid()) if procid is None else procid
        self.max_message = min(max_message, RFC3164_MAX) if rfc == "3164" else max_message
        self.bom = bom
        self.utc = utc
        self._msgids: dict[str | None, str] = {}
        self._second = -1
        self._cached_heads: dict[tuple[Severity, str | None], tuple[str, str]] = {}
        if rfc == "5424":
            self._middle = " ".join(
                (header_field(host, 255), header_field(app_name, 48), header_field(pid, 128))
            )
        else:
            tag = "".join(c for c in app_name if c.isascii() and c.isalnum())[:32] or "medusa"
            hostpart = f" {header_field(host, 255)}" if host else ""
            self._middle = f"{hostpart} {tag}[{header_field(pid, 128)}]:"

    def format(self, entry: Entry) -> bytes:
        """Return ``entry`` as one syslog message (no framing, no trailing newline)."""
        pri = self.facility * 8 + entry.severity
        message = entry.message.encode("utf-8", "replace")
        if self.rfc == "5424":
            msgid = self._msgids.get(entry.msgid)
            if msgid is None:
                msgid = header_field(entry.msgid, 32)
                if len(self._msgids) < 1024:
                    self._msgids[entry.msgid] = msgid
            data = structured_data(entry.structured_data) if entry.structured_data else NILVALUE
            head = (
                f"<{pri}>1 {rfc3339(entry.timestamp, self.utc)} {self._middle} {msgid} {data}"
            ).encode()
            if message:
                head += b" " + BOM if self.bom else b" "
        else:
            head = f"<{pri}>{_bsd_time(entry.timestamp)}{self._middle} ".encode("ascii")
        return _truncate(head, message, self.max_message)

    def messages(
        self, records: Sequence[Record], severity: Severity, msgid: str | None
    ) -> list[bytes]:
        """Return each of ``records`` as a syslog message, exactly as :meth:`format` does; a
        plain ``(message, timestamp)`` record takes ``severity`` and ``msgid``.

        A batch of plain records with non-empty messages from within one second, the bulk
        of an access log, is made without a Python-level loop per record: the header around
        the fraction of the second is made once, and the messages are assembled, encoded and
        measured by C-level iteration (``map``, ``zip``).
        """
        if records and all(type(r) is tuple for r in records):
            messages: list[str] = [r[0] for r in records]  # type: ignore[index]
            stamps: list[float] = [r[1] for r in records]  # type: ignore[index,misc]
            second = int(min(stamps))
            if all(messages) and int(max(stamps)) == second:
                before, after = self._heads(second, severity, msgid)
                if self.rfc == "5424":
                    offsets = map(float.__sub__, stamps, repeat(float(second)))
                    micros = list(map(int, map(_MICRO.__mul__, offsets)))
                    if max(micros) > 999999:
                        micros = [min(m, 999999) for m in micros]
                    fractions = map("%06d".__mod__, micros)
                    texts = map("".join, zip(repeat(before), fractions, repeat(after), messages))
                else:
                    texts = map((before + after).__add__, messages)
                out = list(map(str.encode, texts, repeat("utf-8"), repeat("replace")))
                limit = self.max_message
                if max(map(len, out)) > limit:
                    return [
                        m if len(m) <= limit else self.format(as_entry(r, severity, msgid))
                        for m, r in zip(out, records, strict=True)
                    ]
                return out
        return [self.format(as_entry(r, severity, msgid)) for r in records]

    def _heads(self, second: int, severity: Severity, msgid: str | None) -> tuple[str, str]:
        """The header of a plain message of ``second`` before and after the fraction of the
        second (RFC 5424; RFC 3164 has none: the whole header is the two together). Cached
        per second."""
        key = (severity, msgid)
        if second != self._second:
            self._second = second
            self._cached_heads = {}
        heads = self._cached_heads.get(key)
        if heads is None:
            start, rest = self._plain_heads(severity, msgid)
            if self.rfc == "5424":
                before, _, after = rfc3339(float(second), self.utc).partition("000000")
                heads = (start + before, after + rest)
            else:
                heads = (start + _bsd_time(second), rest)
            self._cached_heads[key] = heads
        return heads

    def _plain_heads(self, severity: Severity, msgid: str | None) -> tuple[str, str]:
        """The header around the timestamp of a non-empty message without structured
        data: ``("<PRI>1 ", " HOSTNAME APP-NAME PROCID MSGID - ")`` (RFC 5424) or
        ``("<PRI>", " HOSTNAME TAG[PID]: ")`` (RFC 3164)."""
        pri = int(self.facility) * 8 + int(severity)
        if self.rfc == "5424":
            bom = "\ufeff" if self.bom else ""  # U+FEFF is the BOM's UTF-8 bytes
            return f"<{pri}>1 ", f" {self._middle} {header_field(msgid, 32)} - {bom}"
        return f"<{pri}>", f"{self._middle} "
