"""The syslog logger: RFC 5424 or RFC 3164 messages over UDP, TCP or a local Unix socket.

* UDP (RFC 5426): one message per datagram.
* TCP (RFC 6587 §3.4.1): octet-counting framing, ``MSG-LEN SP SYSLOG-MSG``.
* Unix (``/dev/log``, the local syslog daemon): one message per datagram.

The original Medusa's ``syslog_logger`` spoke syslog itself (no ``syslog(3)``), so it could log
to another host; so does this one, without ever blocking the loop (see
:mod:`medusa.logging.queued`).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any, ClassVar

from medusa.core.address import Address
from medusa.core.options import Option, positive
from medusa.logging.queued import PartialWriteError, QueuedLogger, common_options
from medusa.logging.records import Entry, Record, parse_facility
from medusa.logging.syslog_format import SyslogFormatter
from medusa.logging.transport import (
    connect_datagram,
    connect_stream,
    peer_closed,
    send_datagrams,
    send_stream,
)

__all__ = ["SyslogLogger"]

TRANSPORTS = ("udp", "tcp", "unix")


def _check_facility(value: Any) -> str | None:
    try:
        parse_facility(value)
    except ValueError as exc:
        return str(exc)
    return None


def _one_of(*choices: str) -> Any:
    def check(value: Any) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}"

    return check


def _port(value: Any) -> str | None:
    return None if 0 < value < 65536 else "must be a port number (1-65535)"


class SyslogLogger(QueuedLogger):
    """Send records to a syslog receiver, local or remote.

    Args:
        transport: ``"udp"``, ``"tcp"`` (octet counting, RFC 6587) or ``"unix"``.
        host: the receiver's name or address (UDP and TCP).
        port: its port (514 for both).
        path: the Unix datagram socket of the local daemon (``"unix"``).
        format: ``"rfc5424"`` or ``"rfc3164"``; ``None`` chooses RFC 5424 for UDP and TCP and
            RFC 3164 without HOSTNAME (what glibc's ``syslog(3)`` sends) for ``/dev/log``.
        facility: RFC 5424 §6.2.1 facility name (``"daemon"``, ``"local0"`` ...).
        hostname: HOSTNAME field (``None``: this machine's name).
        app_name: APP-NAME (RFC 5424) or TAG (RFC 3164).
        procid: PROCID (``None``: this process's id).
        max_message: largest message in bytes, before framing (RFC 3164: at most 1024).
        bom: start RFC 5424 MSG parts with the UTF-8 BOM (RFC 5424 §6.4).
        utc: RFC 5424 timestamps in UTC (else local time with its offset).
        sequence_id: add ``[meta sequenceId="N"]`` (RFC 5424 §7.3.1) to every RFC 5424
            message, so receivers can see gaps.
        connect_timeout: seconds for a connect and for each send (writer thread only).
        **kwargs: the options of :class:`~medusa.logging.queued.QueuedLogger` (``buffer``,
            ``severity``, ``msgid``, ``capture``, ``propagate``, ``retry_min``, ``retry_max``).

    Raises:
        ValueError: for an unknown transport, format or facility.
    """

    name: ClassVar[str] = "syslog"
    options: ClassVar[Mapping[str, Option]] = {
        **common_options(),
        **{
            o.name: o
            for o in (
                Option("transport", (str,), "udp, tcp or unix", _one_of(*TRANSPORTS)),
                Option("host", (str,), "receiver host name or address"),
                Option("port", (int,), "receiver port", _port),
                Option("path", (str,), "local syslog socket (transport unix)"),
                Option("format", (str,), "rfc5424 or rfc3164", _one_of("rfc5424", "rfc3164")),
                Option(
                    "facility", (str, int), "facility name (daemon, local0...)", _check_facility
                ),
                Option("hostname", (str,), "HOSTNAME field"),
                Option("app_name", (str,), "APP-NAME / TAG field"),
                Option("procid", (str,), "PROCID field"),
                Option("max_message", (int,), "largest message, bytes", positive),
                Option("bom", (bool,), "UTF-8 BOM before RFC 5424 messages"),
                Option("utc", (bool,), "RFC 5424 timestamps in UTC"),
                Option("sequence_id", (bool,), 'add [meta sequenceId="N"]'),
                Option("connect_timeout", (int, float), "connect/send timeout, seconds", positive),
            )
        },
    }

    def __init__(
        self,
        *,
        transport: str = "unix",
        host: str = "127.0.0.1",
        port: int = 514,
        path: str = "/dev/log",
        format: str | None = None,
        facility: str | int = "daemon",
        hostname: str | None = None,
        app_name: str = "medusa",
        procid: str | None = None,
        max_message: int = 8192,
        bom: bool = False,
        utc: bool = True,
        sequence_id: bool = False,
        connect_timeout: float = 5.0,
        **kwargs: Any,
    ) -> None:
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown syslog transport {transport!r} (udp, tcp or unix)")
        if format is None:
            format = "rfc3164" if transport == "unix" else "rfc5424"
        if format not in ("rfc5424", "rfc3164"):
            raise ValueError(f"unknown syslog format {format!r} (rfc5424 or rfc3164)")
        self.transport = transport
        self.address = Address(None, 0, path) if transport == "unix" else Address(host, port)
        self.format = format
        self.sequence_id = sequence_id and format == "rfc5424"
        self.connect_timeout = float(connect_timeout)
        if hostname is None and transport == "unix" and format == "rfc3164":
            hostname = ""
        self.formatter = SyslogFormatter(
            format[3:],
            facility=parse_facility(facility),
            hostname=hostname,
            app_name=app_name,
            procid=procid,
            max_message=max_message,
            bom=bom,
            utc=utc,
        )
        self._sequence = 0
        self._sock: socket.socket | None = None
        super().__init__(**kwargs)

    def describe(self) -> str:
        """``syslog TRANSPORT ADDRESS``."""
        return f"syslog {self.transport} {self.address}"

    def open_sink(self) -> None:
        if self.transport == "tcp":
            self._sock = connect_stream(self.address, self.connect_timeout)
        else:
            self._sock = connect_datagram(self.address, self.connect_timeout)

    def close_sink(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _message(self, entry: Entry) -> bytes:
        if self.sequence_id:
            # RFC 5424 §7.3.1: 1 to 2147483647, then back to 1.
            self._sequence = self._sequence % 2147483647 + 1
            meta = {"meta": {"sequenceId": str(self._sequence)}}
            data = {**entry.structured_data, **meta} if entry.structured_data else meta
            entry = Entry(entry.message, entry.severity, entry.timestamp, entry.msgid, data)
        return self.formatter.format(entry)

    def _messages(self, records: list[Record]) -> list[bytes]:
        if self.sequence_id:
            return [self._message(self.entry(r)) for r in records]
        return self.formatter.messages(records, self.severity, self.msgid)

    def write_batch(self, records: list[Record]) -> None:
        sock = self._sock
        assert sock is not None
        start = self._sequence
        try:
            if self.transport == "tcp":
                if peer_closed(sock):
                    raise ConnectionResetError("the syslog receiver closed the connection")
                messages = self._messages(records)
                frames = list(map(b"%d %s".__mod__, zip(map(len, messages), messages, strict=True)))
                send_stream(sock, b"".join(frames), lambda: map(len, frames))
            else:
                send_datagrams(sock, self._messages(records))
        except PartialWriteError as exc:
            self._sequence = start + exc.written  # resent records keep their numbers
            raise
        except OSError:
            self._sequence = start
            raise

    @classmethod
    def resolve_paths(cls, kwargs: dict[str, Any], base_dir: str) -> dict[str, Any]:
        """A relative ``path`` is taken from ``base_dir``."""
        path = kwargs.get("path")
        if path is not None and not os.path.isabs(path):
            kwargs["path"] = os.path.join(base_dir, path)
        return kwargs
