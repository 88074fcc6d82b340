"""Name-server addresses: ``/etc/resolv.conf`` and the ``HOST``/``HOST:PORT`` forms of the
configuration.

Only what a stub resolver that sends every query to a known server needs is read from
``resolv.conf`` (resolv.conf(5)): the ``nameserver`` lines and the ``timeout:`` and
``attempts:`` options. ``search``/``domain`` lines are ignored: names are looked up as
absolute names.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_PORT",
    "ResolvConf",
    "parse_nameserver",
    "parse_resolv_conf",
    "read_resolv_conf",
]

DEFAULT_PORT = 53
"""The DNS port (RFC 1035 §4.2)."""


@dataclass(frozen=True, slots=True)
class ResolvConf:
    """What ``resolv.conf`` says.

    Attributes:
        nameservers: ``(address, port)`` pairs in file order; the port is always 53 there.
        timeout: seconds to wait for one server's reply (``options timeout:N``), or None.
        attempts: rounds over the servers (``options attempts:N``), or None.
    """

    nameservers: list[tuple[str, int]] = field(default_factory=list)
    timeout: float | None = None
    attempts: int | None = None


def parse_nameserver(text: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """Return ``(address, port)`` from ``"192.0.2.1"``, ``"192.0.2.1:5353"``, ``"2001:db8::1"``,
    ``"[2001:db8::1]:5353"`` or ``"fe80::1%eth0"``.

    Args:
        text: an IP address literal with an optional port; host names are refused (a
            resolver cannot look up its own name server).
        default_port: the port when ``text`` has none.

    Raises:
        ValueError: ``text`` is not an IP address, or the port is not in 1..65535.
    """
    text = text.strip()
    host, port = text, default_port
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"name server {text!r}: missing ']'")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"name server {text!r}: expected ':PORT' after ']'")
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, port_text = text.split(":")
        port = _port(port_text, text)
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        raise ValueError(f"name server {text!r} is not an IP address") from None
    return host, port


def _port(text: str, whole: str) -> int:
    if not (text.isascii() and text.isdigit()) or not 0 < int(text) <= 65535:
        raise ValueError(f"name server {whole!r}: bad port {text!r}")
    return int(text)


def parse_resolv_conf(text: str) -> ResolvConf:
    """Parse the text of a ``resolv.conf`` file; unknown or malformed lines are skipped, as
    the C library does.

    Args:
        text: the file's contents.
    """
    servers: list[tuple[str, int]] = []
    timeout: float | None = None
    attempts: int | None = None
    for raw in text.splitlines():
        words = raw.split()
        if not words or words[0].startswith(("#", ";")):
            continue
        if words[0] == "nameserver" and len(words) > 1:
            try:
                ipaddress.ip_address(words[1].split("%", 1)[0])
            except ValueError:
                continue
            servers.append((words[1], DEFAULT_PORT))
        elif words[0] == "options":
            for option in words[1:]:
                key, _, value = option.partition(":")
                if key in ("timeout", "attempts") and value.isascii() and value.isdigit():
                    if key == "timeout" and int(value) > 0:
                        timeout = float(value)
                    elif key == "attempts" and int(value) > 0:
                        attempts = int(value)
    return ResolvConf(servers, timeout, attempts)


def read_resolv_conf(path: str = "/etc/resolv.conf") -> ResolvConf:
    """Read and parse ``path``; a missing or unreadable file reads as empty.

    Args:
        path: the file (resolv.conf(5) syntax).
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return parse_resolv_conf(f.read())
    except OSError:
        return ResolvConf()
