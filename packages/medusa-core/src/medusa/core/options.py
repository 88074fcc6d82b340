"""Typed, validated server options, shared by ``medusa.toml`` and the startup-script API.

Each server type declares its options as :class:`Option` records; the configuration loader
checks every key and value against them before anything starts, so a typo is reported with
the file, the key and the reason instead of being silently ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["ConfigError", "Option", "validate_options"]


class ConfigError(ValueError):
    """A configuration that cannot be used: names the source, the key and the reason.

    Args:
        source: where the setting came from (a file name, ``"command line"``).
        key: the dotted key (``server[0].listen``), or ``""`` for the whole source.
        reason: what is wrong, in words a user can act on.
    """

    def __init__(self, source: str, key: str, reason: str) -> None:
        self.source = source
        self.key = key
        self.reason = reason
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True, slots=True)
class Option:
    """One configurable option of a server type.

    Attributes:
        name: the key in ``medusa.toml`` and the keyword argument of the server class.
        types: accepted Python types of the TOML value (``bool`` is never taken as an int).
        help: one line for error messages and ``medusa plugins --verbose``.
        check: optional function returning an error message for a bad value, else None.
    """

    name: str
    types: tuple[type, ...]
    help: str
    check: Callable[[Any], str | None] | None = None


def _type_names(types: tuple[type, ...]) -> str:
    names = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
    return " or ".join(names.get(t, t.__name__) for t in types)


def validate_options(
    table: Mapping[str, Any], options: Mapping[str, Option], *, source: str, prefix: str
) -> dict[str, Any]:
    """Check a table of settings against ``options`` and return it as keyword arguments.

    Args:
        table: the settings (from TOML, already parsed).
        options: the accepted options by name.
        source: file name (or other origin) for error messages.
        prefix: dotted key prefix for error messages, for example ``server[1]``.

    Raises:
        ConfigError: for an unknown key, a value of the wrong type, or a value the
            option's ``check`` rejects.
    """
    out: dict[str, Any] = {}
    for key, value in table.items():
        option = options.get(key)
        if option is None:
            known = ", ".join(sorted(options))
            raise ConfigError(source, f"{prefix}.{key}", f"unknown option (known: {known})")
        ok = isinstance(value, option.types) and not (
            isinstance(value, bool) and bool not in option.types
        )
        if not ok and float in option.types and isinstance(value, int):
            ok = not isinstance(value, bool)
        if not ok:
            raise ConfigError(
                source,
                f"{prefix}.{key}",
                f"expected {_type_names(option.types)}, got {value!r}",
            )
        if option.check is not None:
            problem = option.check(value)
            if problem:
                raise ConfigError(source, f"{prefix}.{key}", problem)
        out[key] = value
    return out


def positive(value: Any) -> str | None:
    """An :attr:`Option.check` accepting numbers > 0."""
    return None if value > 0 else "must be greater than 0"


def non_negative(value: Any) -> str | None:
    """An :attr:`Option.check` accepting numbers >= 0."""
    return None if value >= 0 else "must be 0 or more"
