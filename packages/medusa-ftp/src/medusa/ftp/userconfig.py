"""The ``medusa.toml`` options of FTP servers and their ``[[server.user]]`` tables::

[[server]]
type = "ftp"
listen = "127.0.0.1:8021"
anonymous_root = "pub"

[[server.user]]
name = "alice"
password = "$scrypt$n=16384,r=8,p=1$..."    # from `medusa passwd`, or in `passwords`
root = "home/alice"
permissions = ["read", "write", "delete", "rename", "mkdir"]   # or "elradfmw"
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any

from medusa.core.log import check_logger_option
from medusa.core.options import ConfigError, Option, non_negative, positive, validate_options
from medusa.core.passwords import valid_user_name
from medusa.ftp.accounts import READ_ONLY, parse_permissions
from medusa.ftp.authorizers import VirtualUser

__all__ = ["FTP_OPTIONS", "USER_OPTIONS", "users_from_config"]


def _port_range(value: Any) -> str | None:
    if (
        len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or not 1024 <= value[0] <= value[1] <= 65535
    ):
        return "must be [LOW, HIGH] with 1024 <= LOW <= HIGH <= 65535"
    return None


def _ipv4(value: Any) -> str | None:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return "must be an IPv4 address"
    return None


def _style(value: Any) -> str | None:
    return None if value in ("unix", "msdos") else "must be unix or msdos"


def _permissions(value: Any) -> str | None:
    if isinstance(value, list) and not all(isinstance(v, str) for v in value):
        return "must be a string of letters or a list of words"
    try:
        parse_permissions(value)
    except ValueError as exc:
        return str(exc)
    return None


FTP_OPTIONS: dict[str, Option] = {
    o.name: o
    for o in (
        Option("anonymous_root", (str,), "directory served read-only to anonymous users"),
        Option("user", (list,), "virtual users ([[server.user]] tables)"),
        Option("passwords", (str,), "password file (medusa passwd) of the virtual users"),
        Option("unix_users", (bool,), "accept the machine's users through PAM (as root)"),
        Option("pam_service", (str,), "PAM service of Unix users"),
        Option("unix_allow_root", (bool,), "accept root as a Unix user"),
        Option("unix_require_shell", (bool,), "refuse Unix users without a valid shell"),
        Option("passive_ports", (list,), "[LOW, HIGH] passive port range", _port_range),
        Option("masquerade_address", (str,), "IPv4 address announced by PASV", _ipv4),
        Option("permit_foreign_addresses", (bool,), "allow PORT to other hosts (FXP)"),
        Option("permit_privileged_ports", (bool,), "allow PORT to ports below 1024"),
        Option("certfile", (str,), "PEM certificate chain for AUTH TLS"),
        Option("keyfile", (str,), "PEM private key for AUTH TLS"),
        Option("tls_control_required", (bool,), "users must AUTH TLS before logging in"),
        Option("tls_data_required", (bool,), "transfers must use PROT P"),
        Option("max_login_attempts", (int,), "failed logins before disconnecting", positive),
        Option("login_failure_delay", (int, float), "seconds after a failed login", non_negative),
        Option(
            "login_failure_max_delay",
            (int, float),
            "longest delay after a failed login, seconds",
            non_negative,
        ),
        Option(
            "max_login_failures_per_ip",
            (int,),
            "failed logins from one address before a lockout (0: none)",
            non_negative,
        ),
        Option(
            "login_failure_window",
            (int, float),
            "seconds failed logins are remembered; lockout length",
            non_negative,
        ),
        Option("max_sessions_per_ip", (int,), "sessions at once from one address", positive),
        Option("data_timeout", (int, float), "data connection timeout, seconds", non_negative),
        Option(
            "data_min_rate",
            (int,),
            "least transfer rate over data_timeout, bytes/s (0: none)",
            non_negative,
        ),
        Option("clean_stale_uploads", (bool,), "remove killed uploads' temporary files at start"),
        Option("max_download_rate", (int,), "bytes/s per download (0: no limit)", non_negative),
        Option("max_upload_rate", (int,), "bytes/s per upload (0: no limit)", non_negative),
        Option("listing_style", (str,), "LIST format: unix or msdos", _style),
        Option("banner", (str,), "text of the 220 greeting"),
        Option("max_line", (int,), "longest command line, bytes", positive),
        Option(
            "xferlog",
            (bool, str),
            "transfer log: true (medusa.ftp.xferlog), false or a [logger.NAME]",
            check_logger_option,
        ),
        Option(
            "session_log",
            (bool, str),
            "session log: true (medusa.ftp.session), false or a [logger.NAME]",
            check_logger_option,
        ),
        Option("resolve_names", (bool,), "client host names in the logs (needs a resolver)"),
    )
}
"""The options an FTP server adds to those of every server."""


def _name(value: Any) -> str | None:
    return None if valid_user_name(value) else "not a valid user name"


def _hash(value: Any) -> str | None:
    return None if value.startswith("$scrypt$") else "must be a $scrypt$ hash (medusa passwd)"


USER_OPTIONS: dict[str, Option] = {
    o.name: o
    for o in (
        Option("name", (str,), "login name", _name),
        Option("password", (str,), "scrypt hash of the password", _hash),
        Option("root", (str,), "the user's root directory"),
        Option("permissions", (str, list), "permission letters or words", _permissions),
    )
}
"""The keys of a ``[[server.user]]`` table."""


def users_from_config(tables: Any, *, source: str, prefix: str, base_dir: str) -> list[VirtualUser]:
    """Return the virtual users of a server's ``user`` tables.

    Args:
        tables: the value of the ``user`` key (a list of tables).
        source: the file name, for errors.
        prefix: the server's dotted key (``server[0]``), for errors.
        base_dir: the directory relative roots are taken from.

    Raises:
        ConfigError: for a missing ``name`` or ``root``, an unknown key, a bad value, a
            root that is not a directory, or a name given twice.
    """
    if not isinstance(tables, list):
        raise ConfigError(source, f"{prefix}.user", "must be a list of tables")
    users: list[VirtualUser] = []
    for index, table in enumerate(tables):
        where = f"{prefix}.user[{index}]"
        if not isinstance(table, Mapping):
            raise ConfigError(source, where, "must be a table")
        values = validate_options(table, USER_OPTIONS, source=source, prefix=where)
        for key in ("name", "root"):
            if key not in values:
                raise ConfigError(source, f"{where}.{key}", "required")
        root = os.path.join(base_dir, values["root"])
        if not os.path.isdir(root):
            raise ConfigError(source, f"{where}.root", f"{root}: not a directory")
        if any(u.name == values["name"] for u in users):
            raise ConfigError(source, f"{where}.name", f"user {values['name']!r} given twice")
        perms = parse_permissions(values["permissions"]) if "permissions" in values else READ_ONLY
        users.append(VirtualUser(values["name"], root, perms, values.get("password")))
    return users
