"""The socket logger: newline-delimited text or JSON Lines to a TCP or Unix-socket listener
(``nc -lk 9000``, Logstash's ``tcp`` input, Fluent Bit, Vector ...)."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any, ClassVar

from medusa.core.address import Address, AddressError
from medusa.core.options import Option, positive
from medusa.logging.lines import LINE_FORMATS, LineFormatter
from medusa.logging.queued import QueuedLogger, common_options
from medusa.logging.records import Record
from medusa.logging.transport import connect_stream, peer_closed, send_stream

__all__ = ["SocketLogger"]


def _check_address(value: Any) -> str | None:
    try:
        Address.parse(value)
    except AddressError as exc:
        return str(exc)
    return None


def _check_format(value: Any) -> str | None:
    return None if value in LINE_FORMATS else "must be text or json"


class SocketLogger(QueuedLogger):
    """Write one line per record to a stream listener, reconnecting with backoff.

    Args:
        address: ``HOST:PORT``, ``PORT`` (on 127.0.0.1), ``[IPv6]:PORT`` or ``unix:/path``.
        format: ``"text"`` (the message; newlines inside it written as ``\\n``) or
            ``"json"`` (JSON Lines, see :class:`~medusa.logging.lines.LineFormatter`).
        hostname: the ``host`` of JSON records (``None``: this machine's name).
        app_name: the ``app`` of JSON records.
        connect_timeout: seconds for a connect and for each send (writer thread only).
        **kwargs: the options of :class:`~medusa.logging.queued.QueuedLogger`.

    Raises:
        AddressError: for an address of no accepted form.
        ValueError: for an unknown format.
    """

    name: ClassVar[str] = "socket"
    options: ClassVar[Mapping[str, Option]] = {
        **common_options(),
        **{
            o.name: o
            for o in (
                Option("address", (str, int), "HOST:PORT or unix:/path", _check_address),
                Option("format", (str,), "text or json", _check_format),
                Option("hostname", (str,), "host of JSON records"),
                Option("app_name", (str,), "app of JSON records"),
                Option("connect_timeout", (int, float), "connect/send timeout, seconds", positive),
            )
        },
    }

    def __init__(
        self,
        address: Address | str | int = "127.0.0.1:5170",
        *,
        format: str = "text",
        hostname: str | None = None,
        app_name: str = "medusa",
        connect_timeout: float = 5.0,
        **kwargs: Any,
    ) -> None:
        self.address = address if isinstance(address, Address) else Address.parse(address)
        self.formatter = LineFormatter(format, one_line=True, hostname=hostname, app_name=app_name)
        self.connect_timeout = float(connect_timeout)
        self._sock: socket.socket | None = None
        super().__init__(**kwargs)

    def describe(self) -> str:
        """``socket ADDRESS``."""
        return f"socket {self.address}"

    def open_sink(self) -> None:
        self._sock = connect_stream(self.address, self.connect_timeout)

    def close_sink(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def lines_timed(self) -> bool:
        return self.formatter.timed

    def write_batch(self, records: list[Record]) -> None:
        sock = self._sock
        assert sock is not None
        if peer_closed(sock):
            raise ConnectionResetError("the listener closed the connection")
        fmt, severity, msgid = self.formatter, self.severity, self.msgid
        data = fmt.encode(records, severity, msgid)
        send_stream(sock, data, lambda: map(len, fmt.lines(records, severity, msgid)))

    @classmethod
    def resolve_paths(cls, kwargs: dict[str, Any], base_dir: str) -> dict[str, Any]:
        """A relative ``unix:`` path is taken from ``base_dir``."""
        address = kwargs.get("address")
        if address is not None:
            parsed = Address.parse(address)
            if parsed.path is not None and not os.path.isabs(parsed.path):
                kwargs["address"] = Address(None, 0, os.path.join(base_dir, parsed.path))
        return kwargs
