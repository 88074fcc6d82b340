"""Trusted networks: the peers allowed to speak for a client (a load balancer sending the
PROXY protocol, a reverse proxy adding ``Forwarded`` headers).

A :class:`TrustedNetworks` is built from CIDR blocks and single addresses (stdlib
:mod:`ipaddress`); an IPv4-mapped IPv6 address (``::ffff:10.0.0.1``, what a dual-stack
listener reports for an IPv4 client) matches the IPv4 blocks too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from medusa.core.options import ConfigError, Option

__all__ = [
    "PROXY_OPTIONS",
    "TrustedNetworks",
    "check_proxy_settings",
    "check_trusted_option",
]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedNetworks:
    """A set of IP networks, tested with ``host in networks``.

    Args:
        networks: CIDR blocks or addresses as strings (``"10.0.0.0/8"``, ``"127.0.0.1"``,
            ``"::1"``, ``"fd00::/8"``); a block with host bits set (``"10.0.0.1/8"``) is
            refused, as a typo.

    Raises:
        ValueError: for an entry that is not an address or a network (the message quotes
            it).
    """

    __slots__ = ("_networks", "_text")

    def __init__(self, networks: Iterable[str]) -> None:
        parsed: list[_Network] = []
        text: list[str] = []
        for entry in networks:
            if not isinstance(entry, str):
                raise ValueError(f"{entry!r} is not a network (a string such as '10.0.0.0/8')")
            try:
                parsed.append(ipaddress.ip_network(entry.strip(), strict=True))
            except ValueError as exc:
                raise ValueError(f"{entry!r} is not an address or network: {exc}") from None
            text.append(entry.strip())
        self._networks = tuple(parsed)
        self._text = tuple(text)

    def __contains__(self, host: object) -> bool:
        """Whether ``host`` (an address as text, ``"10.1.2.3"``, ``"::ffff:10.1.2.3"``,
        ``"fe80::1%eth0"``, or an :mod:`ipaddress` address) is in one of the networks.
        Anything that is not an IP address (a Unix socket's path, None) is not."""
        if isinstance(host, str):
            try:
                address: Any = ipaddress.ip_address(host.split("%", 1)[0])
            except ValueError:
                return False
        elif isinstance(host, ipaddress.IPv4Address | ipaddress.IPv6Address):
            address = host
        else:
            return False
        if address.version == 6 and address.ipv4_mapped is not None:
            mapped = address.ipv4_mapped
            if any(mapped in network for network in self._networks if network.version == 4):
                return True
        return any(address in network for network in self._networks)

    def __bool__(self) -> bool:
        return bool(self._networks)

    def __len__(self) -> int:
        return len(self._networks)

    def __repr__(self) -> str:
        return f"TrustedNetworks({list(self._text)!r})"


def check_trusted_option(value: Any) -> str | None:
    """An :attr:`~medusa.core.options.Option.check` for a list of networks
    (``proxy_trusted``): returns the reason a value is refused, else None."""
    if not isinstance(value, list):
        return "expected a list of addresses or networks, such as ['127.0.0.1/32', '10.0.0.0/8']"
    try:
        TrustedNetworks(value)
    except ValueError as exc:
        return str(exc)
    return None


def _positive(value: Any) -> str | None:
    return None if value > 0 else "must be greater than 0"


PROXY_OPTIONS: Mapping[str, Option] = {
    o.name: o
    for o in (
        Option("proxy_protocol", (bool,), "require a PROXY protocol header from proxy_trusted"),
        Option(
            "proxy_trusted",
            (list,),
            "peers (CIDR blocks) trusted to send PROXY headers",
            check_trusted_option,
        ),
        Option("proxy_timeout", (int, float), "seconds to wait for a PROXY header", _positive),
    )
}
"""The options of the PROXY protocol, for a server type that supports it to merge into its
:attr:`~medusa.core.server.Server.options` (their keyword arguments are those of
:class:`~medusa.core.server.Server`): ``proxy_protocol`` (bool, default false),
``proxy_trusted`` (list of CIDR strings, default empty), ``proxy_timeout`` (seconds,
default 10)."""


def check_proxy_settings(kwargs: Mapping[str, Any], *, source: str, prefix: str) -> None:
    """Refuse options that trust proxies without saying which: ``proxy_protocol = true``
    (or any other ``proxy_*`` switch named in ``kwargs``, such as HTTP's ``proxy_headers``)
    with an empty or missing ``proxy_trusted``.

    Args:
        kwargs: a server table's validated options.
        source: the file name, for the message.
        prefix: the table's dotted key (``server[0]``).

    Raises:
        ConfigError: naming ``proxy_trusted`` and the switch that needs it.
    """
    if kwargs.get("proxy_trusted"):
        return
    for key in ("proxy_protocol", "proxy_headers"):
        if kwargs.get(key):
            raise ConfigError(
                source,
                f"{prefix}.proxy_trusted",
                f"{key} = true needs the addresses of the trusted proxies "
                "(proxy_trusted = ['127.0.0.1/32'])",
            )
