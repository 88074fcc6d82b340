"""Logger types by name (the ``medusa.loggers`` entry points) and building one from a
``medusa.toml`` table."""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from medusa.core.log import Logger
from medusa.core.options import ConfigError

__all__ = ["LOGGERS_GROUP", "logger_from_config", "logger_types"]

LOGGERS_GROUP = "medusa.loggers"


def logger_types() -> dict[str, Any]:
    """The installed logger classes by entry-point name (group ``medusa.loggers``), with
    this package's own (``syslog``, ``socket``, ``file``, ``multi``) always present. Each has
    ``from_config(table, *, source, prefix, base_dir)``.

    Raises:
        ImportError: when a plugin's module cannot be imported.
    """
    from medusa.logging.file import FileLogger
    from medusa.logging.multi import MultiLogger
    from medusa.logging.stream import SocketLogger
    from medusa.logging.syslog import SyslogLogger

    types: dict[str, Any] = {
        cls.name: cls for cls in (SyslogLogger, SocketLogger, FileLogger, MultiLogger)
    }
    for ep in entry_points(group=LOGGERS_GROUP):
        if ep.name not in types:
            types[ep.name] = ep.load()
    return types


def logger_from_config(
    table: Mapping[str, Any],
    *,
    source: str = "medusa.toml",
    prefix: str = "logger",
    base_dir: str = ".",
) -> Logger:
    """Build the logger a table describes (``{"type": "syslog", "transport": "udp", ...}``).

    Raises:
        ConfigError: for a missing or unknown type, or a bad option.
    """
    kind = table.get("type")
    if not isinstance(kind, str):
        raise ConfigError(source, f"{prefix}.type", 'missing (for example type = "file")')
    types = logger_types()
    cls = types.get(kind)
    if cls is None:
        known = ", ".join(sorted(types))
        raise ConfigError(source, f"{prefix}.type", f"no logger type {kind!r} (installed: {known})")
    logger: Logger = cls.from_config(table, source=source, prefix=prefix, base_dir=base_dir)
    return logger
