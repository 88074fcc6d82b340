"""Plugin discovery through :mod:`importlib.metadata` entry points.

Groups: ``medusa.servers`` (server types: http, ftp, monitor, chat), ``medusa.loggers``,
``medusa.resolvers`` and ``medusa.http.handlers`` (handler types of medusa-http's
``[[server.handler]]`` tables, loaded by medusa-http; listed here by ``medusa plugins``).
Each protocol distribution registers its :class:`~medusa.core.server.Server` subclass, so
``pip install medusa-core medusa-ftp`` gives an FTP server and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from medusa.core.server import Server

__all__ = [
    "HTTP_HANDLERS_GROUP",
    "LOGGERS_GROUP",
    "RESOLVERS_GROUP",
    "SERVERS_GROUP",
    "Plugin",
    "load_server_types",
    "plugins",
    "server_plugins",
]

SERVERS_GROUP = "medusa.servers"
LOGGERS_GROUP = "medusa.loggers"
RESOLVERS_GROUP = "medusa.resolvers"
HTTP_HANDLERS_GROUP = "medusa.http.handlers"


@dataclass(frozen=True, slots=True)
class Plugin:
    """One installed entry point.

    Attributes:
        name: the entry-point name (``http``).
        target: what it points at (``medusa.http.server:HTTPServer``).
        distribution: the distribution that provides it (``medusa-http``), or ``"?"``.
        version: that distribution's version, or ``"?"``.
        entry_point: the underlying :class:`importlib.metadata.EntryPoint`.
    """

    name: str
    target: str
    distribution: str
    version: str
    entry_point: EntryPoint


def plugins(group: str) -> list[Plugin]:
    """Return the installed entry points of ``group``, sorted by name."""
    out: list[Plugin] = []
    for ep in entry_points(group=group):
        dist = ep.dist
        out.append(
            Plugin(
                ep.name,
                ep.value,
                dist.name if dist is not None else "?",
                dist.version if dist is not None else "?",
                ep,
            )
        )
    return sorted(out, key=lambda p: p.name)


def server_plugins() -> list[Plugin]:
    """Return the installed server types (group ``medusa.servers``)."""
    return plugins(SERVERS_GROUP)


def load_server_types() -> dict[str, type[Server]]:
    """Import every installed server type and return them by entry-point name.

    Raises:
        TypeError: when an entry point does not name a :class:`Server` subclass.
        ImportError: when a plugin's module cannot be imported.
    """
    out: dict[str, type[Server]] = {}
    for plugin in server_plugins():
        cls = plugin.entry_point.load()
        if not (isinstance(cls, type) and issubclass(cls, Server)):
            raise TypeError(
                f"entry point {plugin.name} = {plugin.target} ({plugin.distribution}) "
                "is not a medusa.core.server.Server subclass"
            )
        out[plugin.name] = cls
    return out
