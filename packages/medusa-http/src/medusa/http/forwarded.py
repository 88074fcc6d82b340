"""The client behind a trusted reverse proxy: ``Forwarded`` (RFC 7239) and
``X-Forwarded-For``/``X-Forwarded-Proto`` (the de facto headers), sans-IO.

A request's headers say who the client was only when the connection comes from a proxy
the server trusts (``proxy_trusted``; uvicorn's ``--forwarded-allow-ips``); anyone else
could write them. Proxies append: the right-most entry was added by the proxy next to the
server. The client is found as nginx's ``real_ip_recursive on`` finds it: walk the list from
the right, skipping entries that are themselves trusted proxies; the first one that is not
is the client (when every entry is trusted, the left-most). The scheme comes from the same
hop: ``proto=`` of the chosen ``Forwarded`` element (RFC 7239 §5.4), or the
``X-Forwarded-Proto`` entry at the same position from the right (the right-most when that
list is shorter).

``Forwarded``, when present, is used alone (RFC 7239 is the standard form); otherwise
``X-Forwarded-For`` and ``X-Forwarded-Proto``. A header that cannot be parsed (a bad element,
an address that is not one) is ignored as a whole: the connection's peer stays the client.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass

from medusa.core.trusted import TrustedNetworks

__all__ = ["ForwardedClient", "forwarded_client", "parse_forwarded", "parse_node"]

_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"  # noqa: S105 (RFC 9110 §5.6.2 token, not a password)
_PAIR = re.compile(
    rf"\s*({_TOKEN})=({_TOKEN}|\"(?:[^\"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t\x20-\x7e\x80-\xff])*\")\s*"
)
_SCHEMES = frozenset({"http", "https"})


@dataclass(frozen=True, slots=True)
class ForwardedClient:
    """What the trusted proxies said about the client.

    Attributes:
        peer: the client's ``(host, port)`` (port 0 when the proxy gave none), or None
            when the chosen hop's node is ``unknown`` or obfuscated (RFC 7239 §6.2, §6.3):
            the connection's peer stays.
        scheme: ``"http"`` or ``"https"`` as the client used it, or None when not given
            (or another scheme).
    """

    peer: tuple[str, int] | None
    scheme: str | None


def parse_forwarded(value: str) -> list[dict[str, str]] | None:
    """Parse a ``Forwarded`` field value (RFC 7239 §4): elements separated by commas, each
    ``name=value`` pairs separated by semicolons, a value a token or a quoted-string.

    Args:
        value: the field value (repeated fields joined by ``", "``).

    Returns:
        One dict per element, parameter names lower-cased, quoted values unquoted; None
        when the value does not follow the grammar (or repeats a parameter in an element,
        §4).
    """
    elements: list[dict[str, str]] = []
    position = 0
    length = len(value)
    current: dict[str, str] = {}
    while True:
        match = _PAIR.match(value, position)
        if match is None:
            return None
        name = match.group(1).lower()
        raw = match.group(2)
        if raw.startswith('"'):
            raw = re.sub(r"\\(.)", r"\1", raw[1:-1])
        if name in current:
            return None
        current[name] = raw
        position = match.end()
        if position == length:
            elements.append(current)
            return elements
        separator = value[position]
        position += 1
        if separator == ",":
            elements.append(current)
            current = {}
            while position < length and value[position] in " \t,":  # empty list elements
                position += 1
            if position == length:
                return elements
        elif separator != ";":
            return None


def parse_node(node: str) -> tuple[str, int] | None:
    """An RFC 7239 §6 node (``192.0.2.43``, ``192.0.2.43:47011``, ``[2001:db8::17]``,
    ``[2001:db8::17]:4711``) or an ``X-Forwarded-For`` entry (also a bare IPv6 address) as
    ``(host, port)``, port 0 when absent.

    Returns:
        None for ``unknown``, an obfuscated identifier (``_hidden``), or an obfuscated port.

    Raises:
        ValueError: for anything else that is not an address (a host name, a bad port, an
            IPv6 zone identifier such as ``fe80::1%eth0``, whose text could be anything).
    """
    node = node.strip()
    if node.lower() == "unknown" or node.startswith("_"):
        return None
    if "%" in node:  # ipaddress accepts any text after a zone "%": never a client's
        raise ValueError(f"zone identifier in node {node[:60]!r}")
    port_text = ""
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    if node.startswith("["):
        host, bracket, rest = node[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"bad node {node[:60]!r}")
        port_text = rest[1:]
        address = ipaddress.IPv6Address(host)
    elif node.count(":") == 1:
        host, _, port_text = node.partition(":")
        address = ipaddress.IPv4Address(host)
    else:
        address = ipaddress.ip_address(node)
    port = 0
    if port_text:
        if port_text.startswith("_"):
            return None
        if not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5):
            raise ValueError(f"bad port in node {node[:60]!r}")
        port = int(port_text)
        if port > 65535:
            raise ValueError(f"bad port in node {node[:60]!r}")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:192.0.2.1 is the IPv4 client 192.0.2.1
    return str(address), port


def _scheme(text: str | None) -> str | None:
    if text is None:
        return None
    text = text.strip().lower()
    return text if text in _SCHEMES else None


def _walk(nodes: list[str], trusted: TrustedNetworks) -> int:
    """Index of the client in ``nodes``: from the right, the first not trusted (the
    left-most when all are). Raises ValueError for a node that is not an address."""
    for index in range(len(nodes) - 1, -1, -1):
        parsed = parse_node(nodes[index])
        if parsed is None or index == 0 or parsed[0] not in trusted:
            return index
    return 0  # not reached: index 0 returns above


def forwarded_client(
    headers: Mapping[str, str], trusted: TrustedNetworks
) -> ForwardedClient | None:
    """The client as trusted proxies describe it in ``headers``.

    The caller has checked that the connection's peer is in ``trusted``.

    Args:
        headers: request header fields, names lower-cased, repeated fields joined by
            ``", "``.
        trusted: the proxies whose entries are skipped (``proxy_trusted``).

    Returns:
        The client and scheme, or None when the headers say nothing usable: no
        ``Forwarded``/``X-Forwarded-For``/``X-Forwarded-Proto``, or a malformed one (never
        an exception for client input).
    """
    value = headers.get("forwarded")
    if value is not None:
        elements = parse_forwarded(value)
        if not elements:
            return None
        nodes = [element.get("for", "unknown") for element in elements]
        try:
            index = _walk(nodes, trusted)
            peer = parse_node(nodes[index])
        except ValueError:
            return None
        return ForwardedClient(peer, _scheme(elements[index].get("proto")))
    xff = headers.get("x-forwarded-for")
    xfp = headers.get("x-forwarded-proto")
    if xff is None and xfp is None:
        return None
    peer = None
    from_right = 0
    if xff is not None:
        nodes = [node.strip() for node in xff.split(",")]
        try:
            index = _walk(nodes, trusted)
            peer = parse_node(nodes[index])
        except ValueError:
            return None
        from_right = len(nodes) - 1 - index
    scheme = None
    if xfp is not None:
        protos = [proto.strip() for proto in xfp.split(",")]
        scheme = _scheme(protos[-1 - from_right] if from_right < len(protos) else protos[-1])
    return ForwardedClient(peer, scheme)
