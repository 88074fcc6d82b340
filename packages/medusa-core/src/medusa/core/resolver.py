"""The resolver protocol that servers look host names up through, and its loader.

The original Medusa's ``resolver`` "piggybacked off a known name server" so that the servers'
logs could show client host names without blocking the loop. Here that contract is the
:class:`Resolver` protocol; medusa-dns implements it (entry point ``dns`` in the
``medusa.resolvers`` group) and :func:`load_resolver` finds the configured one.

A server that logs names (``resolve_names = true``) must never wait for a lookup before it
answers. Two non-blocking calls serve that:

* :meth:`Resolver.reverse_soon` (address, callback): the callback gets the name (or ``None``)
  when the lookup ends; a logger formats its line with the time the request ended and writes
  it from the callback, as the original's resolving logger did.
* :meth:`Resolver.cached_reverse` (address): the name if it is already known, else ``None``;
  a server calls ``reverse_soon(peer, ...)`` when a connection opens and
  ``cached_reverse(peer)`` when it logs, falling back to the address.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from medusa.core.log import Logger, error_logger
from medusa.core.options import ConfigError, Option, validate_options
from medusa.core.plugins import RESOLVERS_GROUP, Plugin, plugins

__all__ = [
    "HostNameLog",
    "NameNotFoundError",
    "ResolutionError",
    "Resolver",
    "close_shared_resolver",
    "load_resolver",
    "resolver_plugins",
    "set_shared_resolver",
    "shared_resolver",
]


class ResolutionError(OSError):
    """A lookup that produced no answer: no name server answered in time, or each one
    answered with a failure (SERVFAIL, REFUSED, a malformed reply)."""


class NameNotFoundError(ResolutionError):
    """The name server answered that the name does not exist (NXDOMAIN) or has no record
    of the type asked for (NODATA); RFC 2308 calls both negative answers."""


@runtime_checkable
class Resolver(Protocol):
    """An asynchronous name resolver used on the running event loop.

    Every method is called on the loop's thread. Implementations cache answers, so that
    :meth:`cached_reverse` can answer without I/O.
    """

    async def resolve(self, name: str, family: int = socket.AF_UNSPEC) -> list[str]:
        """Return the addresses of host ``name`` as text (``"192.0.2.1"``, ``"2001:db8::1"``).

        Args:
            name: a host name, taken as absolute (no search domains); an IP address literal
                is returned as it is.
            family: ``socket.AF_INET`` (A records), ``socket.AF_INET6`` (AAAA) or
                ``socket.AF_UNSPEC`` (both; IPv4 addresses first).

        Raises:
            NameNotFoundError: the name has no address of that family.
            ResolutionError: no name server gave an answer.
            ValueError: ``name`` is not a valid host name or ``family`` is not supported.
        """
        ...

    async def reverse(self, address: str) -> str | None:
        """Return the host name of an IPv4 or IPv6 address (a PTR lookup), without the
        final dot, or ``None`` when the address has no name.

        Raises:
            ResolutionError: no name server gave an answer.
            ValueError: ``address`` is not an IP address.
        """
        ...

    def cached_reverse(self, address: str) -> str | None:
        """Return the host name of ``address`` if a previous lookup cached it, else ``None``
        (not known yet, no name, an invalid address). Never waits and never sends a query."""
        ...

    def reverse_soon(self, address: str, callback: Callable[[str | None], object]) -> None:
        """Look ``address`` up in the background and call ``callback(name)`` once, with the
        host name or ``None`` (no name, a failure, an invalid address).

        The callback runs on the loop's thread: before this method returns when the answer
        is cached, else when the lookup ends (within the resolver's timeouts), or with
        ``None`` from :meth:`close` if that comes first, so that a log line waiting for its
        host name is written, not lost, when the server stops.
        """
        ...

    def close(self) -> None:
        """Cancel the lookups in flight (pending :meth:`reverse_soon` callbacks get ``None``)
        and release the resolver's sockets."""
        ...


def resolver_plugins() -> list[Plugin]:
    """Return the installed resolvers (entry-point group ``medusa.resolvers``)."""
    return plugins(RESOLVERS_GROUP)


def load_resolver(
    name: str = "dns",
    options: Mapping[str, Any] | None = None,
    *,
    source: str = "configuration",
    prefix: str = "resolver",
) -> Resolver:
    """Build the resolver registered as ``name`` in the ``medusa.resolvers`` group.

    The entry point names a factory (usually a class) called with the options as keyword
    arguments. When the factory has an ``options`` attribute (a mapping of
    :class:`~medusa.core.options.Option`, as server types have), the options are checked
    against it first.

    Args:
        name: the entry-point name (``"dns"`` for medusa-dns).
        options: the settings (for example a ``[medusa.resolver]`` TOML table, without its
            ``type`` key).
        source: the file name (or other origin) for error messages.
        prefix: the dotted key for error messages.

    Raises:
        ConfigError: no such resolver is installed, an option is unknown or invalid.
        TypeError: the entry point does not build a :class:`Resolver`.
        ImportError: the plugin's module cannot be imported.
    """
    installed = resolver_plugins()
    found = [p for p in installed if p.name == name]
    if not found:
        known = ", ".join(p.name for p in installed) or "none: install medusa-dns"
        raise ConfigError(source, f"{prefix}.type", f"no resolver {name!r} (installed: {known})")
    plugin = found[0]
    factory = plugin.entry_point.load()
    declared = getattr(factory, "options", None)
    table = dict(options or {})
    if isinstance(declared, Mapping) and all(isinstance(o, Option) for o in declared.values()):
        table = validate_options(table, declared, source=source, prefix=prefix)
    try:
        resolver = factory(**table)
    except (TypeError, ValueError) as exc:
        raise ConfigError(source, prefix, str(exc)) from exc
    if not isinstance(resolver, Resolver):
        raise TypeError(
            f"entry point {plugin.name} = {plugin.target} ({plugin.distribution}) "
            "does not build a medusa.core.resolver.Resolver"
        )
    return resolver


_shared: Resolver | None = None


def set_shared_resolver(resolver: Resolver | None) -> None:
    """Make ``resolver`` the one every server with ``resolve_names`` uses (the
    ``[medusa.resolver]`` table of ``medusa.toml`` sets it); ``None`` forgets it."""
    global _shared
    _shared = resolver


def shared_resolver() -> Resolver:
    """Return the process's shared resolver, making the default one (``dns`` with its
    defaults: the name servers of ``/etc/resolv.conf``) on first use when none was set.

    Raises:
        ConfigError: no resolver is installed (install medusa-dns).
    """
    global _shared
    if _shared is None:
        _shared = load_resolver("dns")
    return _shared


def close_shared_resolver() -> None:
    """Close the shared resolver if one was made (at shutdown: the lookups still in flight
    call back with ``None``), and forget it."""
    global _shared
    resolver, _shared = _shared, None
    if resolver is not None:
        try:
            resolver.close()
        except Exception:
            error_logger.exception("closing the resolver failed")


class HostNameLog:
    """Log lines that name the client by host name (a server's ``resolve_names``), as the
    original's resolving logger did: the line waits for the name, the response never does.

    Args:
        resolver: the :class:`Resolver` to ask; ``None``: the shared one
            (:func:`shared_resolver`), made on first use.

    Raises:
        ValueError: ``resolver`` is ``None`` and no resolver is installed.
    """

    __slots__ = ("resolver",)

    def __init__(self, resolver: Resolver | None = None) -> None:
        if resolver is None and not resolver_plugins():
            raise ValueError("resolve_names needs a resolver: install medusa-dns")
        self.resolver = resolver

    def write(self, log: Logger, address: str, line: Callable[[str], str]) -> None:
        """Write ``line(host)`` to ``log`` once the resolver knows ``address``'s name (at
        once when cached; the address itself when there is no name or the lookup fails)."""

        def done(name: str | None) -> None:
            try:
                log.log(line(name or address))
            except Exception:
                error_logger.exception("log with host name failed")

        resolver = self.resolver
        if resolver is None:
            resolver = self.resolver = shared_resolver()
        resolver.reverse_soon(address, done)
