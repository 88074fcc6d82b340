"""Name-based virtual hosts (the original Medusa's virtual-host handler; Apache's
``<VirtualHost>`` by name, nginx's ``server_name``): each host name has its own handler chain,
chosen by the request's ``Host`` field (RFC 9110 §7.2); unknown hosts use a default chain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from medusa.http.handler import Handler, NotDoneYet
from medusa.http.request import Request

__all__ = ["VirtualHostHandler", "host_name"]


def host_name(value: str | None) -> str:
    """Return the host of a ``Host`` field value, lower-cased, without port or final dot
    (``"Example.COM.:8080"`` → ``"example.com"``, ``"[::1]:80"`` → ``"[::1]"``); ``""``
    for a missing value."""
    if not value:
        return ""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[: end + 1] if end != -1 else value
    return value.partition(":")[0].rstrip(".")


class VirtualHostHandler:
    """Dispatch each request to the chain of its host.

    It takes every request (put it last, or alone): the chosen chain is tried in order, the
    first handler whose ``match`` is true answers, and no match gives 404.

    Args:
        hosts: host name (without port; case-insensitive) → handler chain.
        default: the chain for requests whose host is not listed (or have no ``Host``).

    Raises:
        ValueError: for an empty host name or one with whitespace, ``/`` or ``:``
            (other than a bracketed IPv6 literal).
    """

    def __init__(
        self, hosts: Mapping[str, Sequence[Handler]], default: Sequence[Handler] = ()
    ) -> None:
        self.hosts: dict[str, tuple[Handler, ...]] = {}
        for name, chain in hosts.items():
            key = host_name(name)
            if (
                not key
                or any(c.isspace() or c == "/" for c in key)
                or (":" in key and not key.startswith("["))
            ):
                raise ValueError(f"invalid host name {name!r}")
            self.hosts[key] = tuple(chain)
        self.default = tuple(default)

    def __repr__(self) -> str:
        return f"<VirtualHostHandler {', '.join(self.hosts)} (+default)>"

    def match(self, request: Request) -> bool:
        """Take every request."""
        return True

    def chain_for(self, request: Request) -> tuple[Handler, ...]:
        """Return the handler chain for the request's ``Host``."""
        return self.hosts.get(host_name(request.headers.get("host")), self.default)

    def handle_request(self, request: Request) -> NotDoneYet | None:
        """Hand the request to the first matching handler of the host's chain, or answer
        404."""
        for handler in self.chain_for(request):
            if handler.match(request):
                return request.hand_to(handler)
        request.error(404)
        return None
