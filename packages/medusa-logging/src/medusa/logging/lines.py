"""Records as lines of text or JSON (JSON Lines), for the socket and file loggers (sans-IO)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Sequence

from medusa.logging.records import Entry, Record, Severity, as_entry
from medusa.logging.syslog_format import rfc3339

__all__ = ["LINE_FORMATS", "LineFormatter"]

LINE_FORMATS = ("text", "json")


class LineFormatter:
    """Turns records into newline-terminated UTF-8 lines.

    ``text`` is the message itself (an access log line stays a Common Log Format line);
    ``json`` is one JSON object per line with the keys ``time`` (RFC 3339, UTC), ``severity``
    (RFC 5424 name), ``host``, ``app``, ``pid``, ``msgid`` (or null), ``message`` and, when
    the record has structured data, ``data``.

    Args:
        format: ``"text"`` or ``"json"``.
        one_line: in ``text``, write a newline inside a message as the two characters
            ``\\n`` so that every record is exactly one line (stream consumers split on
            newlines); files keep multi-line messages such as tracebacks as they are.
        hostname: the ``host`` value (``None``: this machine's name).
        app_name: the ``app`` value.

    Raises:
        ValueError: for an unknown format.
    """

    def __init__(
        self,
        format: str = "text",
        *,
        one_line: bool = False,
        hostname: str | None = None,
        app_name: str = "medusa",
    ) -> None:
        if format not in LINE_FORMATS:
            raise ValueError(f"unknown line format {format!r} (text or json)")
        self.json = format == "json"
        self.one_line = one_line
        self.hostname = socket.gethostname() if hostname is None else hostname
        self.app_name = app_name
        self.pid = os.getpid()

    def encode(self, records: Sequence[Record], severity: Severity, msgid: str | None) -> bytes:
        """Return ``records`` as consecutive lines, in one piece (one encoding for the whole
        batch in ``text``); a plain ``(message, timestamp)`` record takes ``severity`` and
        ``msgid``. The same bytes as joining :meth:`lines`."""
        return b"".join(self.encode_pieces(records, severity, msgid))

    def encode_pieces(
        self, records: Sequence[Record], severity: Severity, msgid: str | None
    ) -> list[bytes]:
        """:meth:`encode`'s bytes in a few pieces, to be written with one ``writev``
        (``text``: the joined lines and the last newline, so the batch is not copied once
        more to append it)."""
        if not records:
            return []
        if self.json:
            return [b"".join(self.format(as_entry(r, severity, msgid)) for r in records)]
        try:
            joined = "\n".join(records)  # type: ignore[arg-type]  # bare messages: the usual batch
            texts: Sequence[str] = records  # type: ignore[assignment]
        except TypeError:
            texts = [
                r if type(r) is str else r[0] if type(r) is tuple else r.message  # type: ignore[union-attr]
                for r in records
            ]
            joined = "\n".join(texts)
        if self.one_line and joined.count("\n") != len(texts) - 1:
            joined = "\n".join(t.replace("\n", "\\n") for t in texts)
        return [joined.encode("utf-8", "replace"), b"\n"]

    def lines(
        self, records: Sequence[Record], severity: Severity, msgid: str | None
    ) -> list[bytes]:
        """Return each of ``records`` as its own line (see :meth:`encode`)."""
        return [self.format(as_entry(r, severity, msgid)) for r in records]

    @property
    def timed(self) -> bool:
        """Whether the lines carry the records' times (``json``): when not, a logger may
        queue a plain message without reading the clock."""
        return self.json

    def format(self, entry: Entry) -> bytes:
        """Return ``entry`` as one line, ending in ``\\n``."""
        if not self.json:
            text = entry.message
            if self.one_line and "\n" in text:
                text = text.replace("\n", "\\n")
            return (text + "\n").encode("utf-8", "replace")
        record: dict[str, object] = {
            "time": rfc3339(entry.timestamp),
            "severity": entry.severity.name.lower(),
            "host": self.hostname,
            "app": self.app_name,
            "pid": self.pid,
            "msgid": entry.msgid,
            "message": entry.message,
        }
        if entry.structured_data:
            record["data"] = {k: dict(v) for k, v in entry.structured_data.items()}
        return (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8", "replace")
