"""Listening addresses as written on the command line and in ``medusa.toml``.

Accepted forms: ``PORT`` (on 127.0.0.1), ``HOST:PORT``, ``[IPv6]:PORT``, ``*:PORT`` (every
interface, IPv4 and IPv6) and ``unix:/path/to/socket``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

__all__ = ["DEFAULT_HOST", "Address", "AddressError"]

DEFAULT_HOST = "127.0.0.1"
"""The host bound when none is given: the loopback interface, never the whole network."""


class AddressError(ValueError):
    """An address string that is none of the accepted forms."""


@dataclass(frozen=True, slots=True)
class Address:
    """A TCP endpoint (``host``, ``port``) or a Unix-domain socket ``path``.

    Attributes:
        host: IP address or name to bind; ``None`` binds every interface.
        port: TCP port (0 asks the system for a free one).
        path: file-system path of a Unix-domain socket (then host and port are unused).
    """

    host: str | None = DEFAULT_HOST
    port: int = 0
    path: str | None = None

    @classmethod
    def parse(cls, text: str | int, *, default_host: str = DEFAULT_HOST) -> Address:
        """Parse ``PORT``, ``HOST:PORT``, ``[IPv6]:PORT``, ``*:PORT`` or ``unix:/path``.

        Args:
            text: the address; an int is a port on ``default_host``.
            default_host: host used when only a port is given.

        Raises:
            AddressError: when ``text`` is none of those forms (a ``bool`` included), the
                port is not a decimal number in 0..65535, or the bracketed host is not an
                IPv6 address.
        """
        if isinstance(text, bool) or not isinstance(text, int | str):
            raise AddressError(f"{text!r}: expected a port number or an address string")
        if isinstance(text, int):
            return cls(default_host, _port(str(text), text))
        text = text.strip()
        if text.startswith("unix:"):
            path = text[5:]
            if not path:
                raise AddressError(f"{text!r}: empty Unix socket path")
            return cls(None, 0, path)
        if _is_decimal(text):
            return cls(default_host, _port(text, text))
        if text.startswith("["):
            end = text.find("]")
            if end == -1 or text[end + 1 : end + 2] != ":":
                raise AddressError(f"{text!r}: expected [IPv6]:PORT")
            host = text[1:end]
            try:
                ipaddress.IPv6Address(host)
            except ValueError:
                raise AddressError(f"{text!r}: {host!r} is not an IPv6 address") from None
            return cls(host, _port(text[end + 2 :], text))
        host, sep, port = text.rpartition(":")
        if not sep or not host or ":" in host:
            raise AddressError(
                f"{text!r}: expected PORT, HOST:PORT, [IPv6]:PORT, *:PORT or unix:/path"
            )
        return cls(None if host in ("*", "") else host, _port(port, text))

    def __str__(self) -> str:
        if self.path is not None:
            return f"unix:{self.path}"
        host = "*" if self.host is None else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"{host}:{self.port}"


def _is_decimal(text: str) -> bool:
    """True for ASCII digits only (``str.isdigit`` also accepts "²" and other scripts)."""
    return text.isascii() and text.isdigit()


def _port(text: str, whole: object) -> int:
    if not _is_decimal(text) or not 0 <= int(text) <= 65535:
        raise AddressError(f"{whole!r}: port must be a number from 0 to 65535")
    return int(text)
