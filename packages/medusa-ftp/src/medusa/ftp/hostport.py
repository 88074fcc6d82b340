"""Data-connection addresses, sans-IO: the arguments of ``PORT`` (RFC 959 §4.1.2) and
``EPRT`` (RFC 2428 §2), the replies of ``PASV`` (RFC 959 §4.1.2) and ``EPSV`` (RFC 2428 §3),
and the bounce check of RFC 2577 §3.
"""

from __future__ import annotations

import functools
import ipaddress

from medusa.ftp.arguments import parse_decimal

__all__ = [
    "AddressSyntaxError",
    "canonical_host",
    "epsv_reply",
    "parse_eprt",
    "parse_port",
    "pasv_reply",
]


class AddressSyntaxError(ValueError):
    """A malformed ``PORT``/``EPRT`` argument.

    Attributes:
        code: the reply code: 501 for bad syntax, 522 for an unsupported network protocol
            (RFC 2428 §2).
    """

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code


@functools.lru_cache(maxsize=1024)
def canonical_host(host: str) -> str:
    """Return ``host`` in one canonical text form: IPv4-mapped IPv6 addresses
    (``::ffff:1.2.3.4``) as plain IPv4, IPv6 compressed, zone ids removed; a name is
    returned unchanged. (Cached: a session asks for its addresses several times.)"""
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def parse_port(arg: str) -> tuple[str, int]:
    """Parse a ``PORT`` argument ``h1,h2,h3,h4,p1,p2`` (RFC 959 §4.1.2).

    Args:
        arg: the argument text.

    Returns:
        ``(ipv4_address, port)``.

    Raises:
        AddressSyntaxError: 501 for anything but six decimal numbers of 0-255 (ASCII digits,
            at most three each).
    """
    parts = arg.strip().split(",")
    if len(parts) != 6:
        raise AddressSyntaxError(501, "Invalid PORT format.")
    numbers: list[int] = []
    for part in parts:
        number = parse_decimal(part.strip(), 255)
        if number is None:
            raise AddressSyntaxError(501, "Invalid PORT format.")
        numbers.append(number)
    host = ".".join(str(n) for n in numbers[:4])
    return host, numbers[4] * 256 + numbers[5]


def parse_eprt(arg: str) -> tuple[str, int]:
    """Parse an ``EPRT`` argument ``<d>proto<d>address<d>port<d>`` (RFC 2428 §2).

    Args:
        arg: the argument text; the delimiter is its first character.

    Returns:
        ``(address, port)`` with the address in canonical form.

    Raises:
        AddressSyntaxError: 522 for a protocol other than 1 (IPv4) or 2 (IPv6); 501 for
            any other mistake.
    """
    arg = arg.strip()
    if len(arg) < 4:
        raise AddressSyntaxError(501, "Invalid EPRT format.")
    delimiter = arg[0]
    if not 33 <= ord(delimiter) <= 126:
        raise AddressSyntaxError(501, "Invalid EPRT delimiter.")
    fields = arg.split(delimiter)
    if len(fields) != 5 or fields[0] or fields[4]:
        raise AddressSyntaxError(501, "Invalid EPRT format.")
    proto, host, port_text = fields[1], fields[2], fields[3]
    if proto not in ("1", "2"):
        raise AddressSyntaxError(522, "Network protocol not supported, use (1,2)")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise AddressSyntaxError(501, "Invalid EPRT address.") from None
    if (proto == "1") != (address.version == 4):
        raise AddressSyntaxError(501, "EPRT address does not match its protocol.")
    port = parse_decimal(port_text, 65535)
    if not port:
        raise AddressSyntaxError(501, "Invalid EPRT port.")
    return canonical_host(str(address)), port


def pasv_reply(host: str, port: int) -> str:
    """Return the text of the ``227`` reply to ``PASV`` (RFC 959 §4.1.2, RFC 1123 §4.1.2.6):
    ``Entering Passive Mode (h1,h2,h3,h4,p1,p2).``

    Args:
        host: an IPv4 address.
        port: the listening port.

    Raises:
        ValueError: when ``host`` is not an IPv4 address.
    """
    return f"Entering Passive Mode ({_pasv_host(host)},{port >> 8},{port & 0xFF})."


@functools.lru_cache(maxsize=64)
def _pasv_host(host: str) -> str:
    """``h1,h2,h3,h4`` for an IPv4 address (cached: one per server address).

    Raises:
        ValueError: when ``host`` is not an IPv4 address.
    """
    return str(ipaddress.IPv4Address(canonical_host(host))).replace(".", ",")


def epsv_reply(port: int) -> str:
    """Return the text of the ``229`` reply to ``EPSV`` (RFC 2428 §3):
    ``Entering Extended Passive Mode (|||port|)``."""
    return f"Entering Extended Passive Mode (|||{port}|)"
