"""``medusa.toml``: several servers of any installed type in one process.

Example::

    [medusa]
    backend = "auto"        # "auto", "uvloop" or "asyncio"
    grace = 10              # seconds for in-flight responses at shutdown
    log_level = "info"
    workers = 1             # worker processes, or "auto" (one per CPU); see medusa.core.workers
    max_requests = 0        # recycle a worker after about this many requests (0: never)
    max_requests_jitter = 0 # plus a random 0 to this many, per worker

    [logger.syslog]         # optional: named loggers (medusa-logging), access_log = "syslog"
    type = "syslog"
    transport = "udp"
    host = "127.0.0.1"
    port = 514

    [medusa.resolver]       # optional: the name resolver of resolve_names = true
    type = "dns"            # an entry point of medusa.resolvers (medusa-dns)
    nameservers = ["127.0.0.1:53"]

    [[server]]
    type = "http"
    listen = "127.0.0.1:8080"
    root = "site"

    [[server]]
    type = "http"
    listen = "[::1]:8081"
    root = "other"

Every key is checked before anything starts; a problem raises
:class:`~medusa.core.options.ConfigError` naming the file, the key and the reason.
"""

from __future__ import annotations

import copy
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from medusa.core.options import ConfigError, Option, non_negative, validate_options
from medusa.core.server import Server
from medusa.core.workers import check_workers_option, resolve_workers

__all__ = ["LOG_LEVELS", "Config", "config_loader", "load_config", "peek_log_level"]

_BACKENDS = ("auto", "uvloop", "asyncio")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
"""The ``log_level`` values of ``[medusa]`` (and of ``--log-level``)."""

_MEDUSA_OPTIONS = {
    o.name: o
    for o in (
        Option(
            "backend",
            (str,),
            "event loop",
            lambda v: None if v in _BACKENDS else "must be auto, uvloop or asyncio",
        ),
        Option(
            "grace",
            (int, float),
            "shutdown grace period, seconds",
            lambda v: None if v >= 0 else "must be 0 or more",
        ),
        Option(
            "log_level",
            (str,),
            "logging level",
            lambda v: None if v in LOG_LEVELS else f"must be one of {', '.join(LOG_LEVELS)}",
        ),
        Option("workers", (int, str), 'worker processes, or "auto"', check_workers_option),
        Option("max_requests", (int,), "requests before a worker is recycled", non_negative),
        Option("max_requests_jitter", (int,), "random extra max_requests", non_negative),
    )
}


@dataclass
class Config:
    """A loaded configuration.

    Attributes:
        servers: the servers to run, in file order.
        backend: ``"auto"``, ``"uvloop"`` or ``"asyncio"``.
        grace: shutdown grace period in seconds.
        log_level: a :mod:`logging` level name in lower case.
        workers: worker processes (1: a single process, no master; see
            :mod:`medusa.core.workers`).
        max_requests: requests after which a worker is recycled (0: never).
        max_requests_jitter: a random 0 to this many added to ``max_requests`` per worker.
    """

    servers: list[Server] = field(default_factory=list)
    backend: str = "auto"
    grace: float = 10.0
    log_level: str = "info"
    workers: int = 1
    max_requests: int = 0
    max_requests_jitter: int = 0


def peek_log_level(path: str) -> str | None:
    """Return the ``[medusa] log_level`` of the file at ``path``, or ``None`` when it has
    none or cannot be read as TOML (then :func:`load_config` reports why). The ``medusa``
    command configures logging with it before the servers are built, so that what they log
    while being built (a stale temporary upload removed) has the configured format and
    level."""
    try:
        with open(path, "rb") as f:
            medusa = tomllib.load(f).get("medusa")
    except (OSError, ValueError):  # TOMLDecodeError and UnicodeDecodeError are ValueErrors
        return None
    level = medusa.get("log_level") if isinstance(medusa, dict) else None
    return level if level in LOG_LEVELS else None


def load_config(path: str, server_types: Mapping[str, type[Server]] | None = None) -> Config:
    """Read and check ``path`` and build its servers.

    Args:
        path: the TOML file; relative paths inside it are taken from its directory.
        server_types: server types by name; ``None`` loads the installed ones (see
            :func:`medusa.core.plugins.load_server_types`).

    Raises:
        ConfigError: the file is missing or not TOML, a key is unknown, a value has the
            wrong type, a server type is not installed, or there is no server at all.
        ImportError: when ``server_types`` is ``None`` and a plugin cannot be imported.
        TypeError: when ``server_types`` is ``None`` and an entry point is not a
            :class:`~medusa.core.server.Server` subclass.
    """
    return config_loader(path, server_types)()


def config_loader(
    path: str, server_types: Mapping[str, type[Server]] | None = None
) -> Callable[[], Config]:
    """Read and parse ``path`` now; return a function that builds a new :class:`Config`
    (new servers) from what was read, each time it is called. The master of ``--workers``
    checks a configuration with it, and each of its workers builds its servers from the
    same reading, even if the file changed since.

    Raises:
        ConfigError: the file is missing or not TOML (the loader raises the other errors of
            :func:`load_config`).
    """
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(path, "", exc.strerror or str(exc)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(path, "", f"not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:  # tomllib decodes the whole file first
        raise ConfigError(path, "", f"not valid TOML: not UTF-8 text ({exc.reason})") from exc
    base_dir = os.path.dirname(os.path.abspath(path))

    def load() -> Config:
        return build_config(
            copy.deepcopy(document), source=path, base_dir=base_dir, server_types=server_types
        )

    return load


def _configure_resolver(table: object, source: str) -> None:
    """Build the ``[medusa.resolver]`` table's resolver and make it the shared one."""
    from medusa.core.resolver import load_resolver, set_shared_resolver

    if not isinstance(table, Mapping):
        raise ConfigError(source, "medusa.resolver", "must be a table")
    options = dict(table)
    kind = options.pop("type", "dns")
    if not isinstance(kind, str):
        raise ConfigError(source, "medusa.resolver.type", "must be a string")
    set_shared_resolver(load_resolver(kind, options, source=source, prefix="medusa.resolver"))


def _configure_loggers(tables: object, source: str, base_dir: str) -> None:
    """Build each ``[logger.NAME]`` table (``type`` names a ``medusa.loggers`` entry point)
    and register it by name for servers' log options (``access_log = "NAME"``)."""
    from medusa.core.log import register_logger
    from medusa.core.plugins import LOGGERS_GROUP, plugins

    if not isinstance(tables, Mapping) or not all(isinstance(t, Mapping) for t in tables.values()):
        raise ConfigError(source, "logger", "must be tables: [logger.NAME] with a type")
    installed = {p.name: p for p in plugins(LOGGERS_GROUP)}
    for name, table in tables.items():
        prefix = f"logger.{name}"
        kind = table.get("type")
        if not isinstance(kind, str):
            raise ConfigError(source, f"{prefix}.type", 'missing (for example type = "file")')
        plugin = installed.get(kind)
        if plugin is None:
            known = ", ".join(sorted(installed)) or "none: install medusa-logging"
            raise ConfigError(source, f"{prefix}.type", f"unknown logger {kind!r} ({known})")
        factory = plugin.entry_point.load()
        options = {k: v for k, v in table.items() if k != "type"}
        register_logger(
            name, factory.from_config(options, source=source, prefix=prefix, base_dir=base_dir)
        )


def build_config(
    document: Mapping[str, Any],
    *,
    source: str,
    base_dir: str,
    server_types: Mapping[str, type[Server]] | None = None,
) -> Config:
    """Build a :class:`Config` from an already parsed document (see :func:`load_config`).

    Raises:
        ConfigError: as :func:`load_config`.
    """
    from medusa.core.plugins import load_server_types

    config = Config()
    for key in document:
        if key not in ("medusa", "server", "logger"):
            raise ConfigError(
                source, key, "unknown table (expected [medusa], [logger.NAME] or [[server]])"
            )
    settings = document.get("medusa", {})
    if not isinstance(settings, Mapping):
        raise ConfigError(source, "medusa", "must be a table")
    settings = dict(settings)
    resolver_table = settings.pop("resolver", None)
    for key, value in validate_options(
        settings, _MEDUSA_OPTIONS, source=source, prefix="medusa"
    ).items():
        if key == "grace":
            value = float(value)
        elif key == "workers":
            value = resolve_workers(value)
        setattr(config, key, value)
    if resolver_table is not None:
        _configure_resolver(resolver_table, source)
    if "logger" in document:
        _configure_loggers(document["logger"], source, base_dir)
    tables = document.get("server", [])
    if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
        raise ConfigError(source, "server", "must be an array of tables ([[server]])")
    if not tables:
        raise ConfigError(source, "server", "no [[server]] table: nothing to run")
    if server_types is None:
        server_types = load_server_types()
    for index, table in enumerate(tables):
        prefix = f"server[{index}]"
        options = dict(table)
        kind = options.pop("type", None)
        if kind is None:
            raise ConfigError(source, f"{prefix}.type", 'missing (for example type = "http")')
        if not isinstance(kind, str):
            raise ConfigError(source, f"{prefix}.type", f"expected a string, got {kind!r}")
        cls = server_types.get(kind)
        if cls is None:
            known = ", ".join(sorted(server_types)) or "none"
            raise ConfigError(
                source, f"{prefix}.type", f"no installed server type {kind!r} (installed: {known})"
            )
        config.servers.append(
            cls.from_config(options, source=source, prefix=prefix, base_dir=base_dir)
        )
    return config
