"""Handlers by name, for ``medusa.toml``: the ``[[server.handler]]`` tables of an HTTP server.

Example::

    [[server]]
    type = "http"
    listen = "127.0.0.1:8080"

    [[server.handler]]
    type = "files"
    root = "site"

Each table names a handler ``type`` and gives that handler's options; the handlers form the
chain in file order (a server's own ``root`` option appends a ``files`` handler after them).
Handler types come from :data:`HANDLER_TYPES` and from the entry-point group
``medusa.http.handlers`` (a class with ``name``, ``options`` and ``from_config``), so a
separate distribution can add its own. Unknown types and bad options are rejected before
anything starts, with the file, the key and the reason.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from medusa.core.options import ConfigError, Option, non_negative, positive, validate_options
from medusa.http.auth import BasicAuthHandler
from medusa.http.charset import DEFAULT_CHARSET
from medusa.http.files import FileHandler
from medusa.http.handler import Handler
from medusa.http.listing import DirectoryListingHandler
from medusa.http.publish import PublishingHandler
from medusa.http.put import PutHandler
from medusa.http.redirect import RedirectHandler, RedirectRule
from medusa.http.status_page import StatusHandler
from medusa.http.userdir import UserDirHandler
from medusa.http.vhost import VirtualHostHandler

__all__ = ["HANDLERS_GROUP", "HANDLER_TYPES", "HandlerType", "build_handlers", "charset_option"]

HANDLERS_GROUP = "medusa.http.handlers"
"""Entry-point group of handler types contributed by other distributions."""


@dataclass(frozen=True, slots=True)
class HandlerType:
    """How to build one kind of handler from a TOML table.

    Attributes:
        name: the ``type`` value in ``[[server.handler]]``.
        options: the accepted options (``type`` excluded).
        build: makes the handler from validated keyword arguments and the config file's
            directory (for relative paths); raises ValueError or OSError for bad values.
        help: one line for error messages.
        required: options that must be given.
    """

    name: str
    options: Mapping[str, Option]
    build: Callable[[dict[str, Any], str], Handler]
    help: str
    required: tuple[str, ...] = ()


def _root_and_index(kwargs: dict[str, Any], base_dir: str) -> tuple[str, list[str]]:
    """Take the ``root`` and ``index`` options out of ``kwargs``, checked."""
    root = os.path.join(base_dir, kwargs.pop("root"))
    if not os.path.isdir(root):
        raise ValueError(f"root: {root}: not a directory")
    index = kwargs.pop("index", ["index.html"])
    if not all(isinstance(name, str) and name and "/" not in name for name in index):
        raise ValueError("index: a list of file names")
    return root, index


def charset_option(value: str | bool) -> str | None:
    """The charset named by a ``charset`` option: a name, ``true`` (``utf-8``), or ``false``
    or ``""`` (none)."""
    if value is True:
        return DEFAULT_CHARSET
    return value or None


def _build_files(kwargs: dict[str, Any], base_dir: str) -> Handler:
    root, index = _root_and_index(kwargs, base_dir)
    if "charset" in kwargs:
        kwargs["charset"] = charset_option(kwargs["charset"])
    return FileHandler(root, index=index, **kwargs)


def _build_listing(kwargs: dict[str, Any], base_dir: str) -> Handler:
    root, index = _root_and_index(kwargs, base_dir)
    return DirectoryListingHandler(root, index=index)


def _build_redirect(kwargs: dict[str, Any], base_dir: str) -> Handler:
    rules: list[RedirectRule] = []
    for number, rule in enumerate(kwargs["rules"]):
        if (
            not isinstance(rule, list)
            or len(rule) not in (2, 3)
            or not all(isinstance(part, str) for part in rule[:2])
            or (len(rule) == 3 and not isinstance(rule[2], int))
        ):
            raise ValueError(
                f"rules[{number}]: expected [PATTERN, LOCATION] or [PATTERN, LOCATION, STATUS]"
            )
        rules.append(RedirectRule(rule[0], rule[1], rule[2] if len(rule) == 3 else None))
    return RedirectHandler(rules, status=kwargs.get("status", 301))


def _build_auth(kwargs: dict[str, Any], base_dir: str) -> Handler:
    wrapped = kwargs["handler"]
    if not isinstance(wrapped, Mapping):
        raise ValueError('handler: a table, for example { type = "files", root = "private" }')
    [inner] = build_handlers([wrapped], source="", prefix="", base_dir=base_dir)
    passwords = _passwords(kwargs, base_dir)
    throttle = {o.name: kwargs[o.name] for o in _AUTH_THROTTLE if o.name in kwargs}
    return BasicAuthHandler(inner, passwords, realm=kwargs.get("realm", "Medusa"), **throttle)


_AUTH_THROTTLE = (
    Option(
        "max_failures",
        (int,),
        "failures from one address before its lockout (0: never)",
        non_negative,
    ),
    Option("lockout", (int, float), "seconds an address is locked out (429)", non_negative),
    Option("failure_delay", (int, float), "seconds before the first 401; doubles", non_negative),
    Option("max_checks", (int,), "password checks (scrypt) running at once", positive),
    Option("max_checks_per_address", (int,), "checks waiting per client address", positive),
    Option("max_checks_per_connection", (int,), "checks waiting per connection", positive),
)


def _passwords(kwargs: dict[str, Any], base_dir: str) -> str:
    passwords = os.path.join(base_dir, kwargs.pop("passwords"))
    if not os.path.isfile(passwords):
        raise ValueError(f"passwords: {passwords}: no such file (make it with medusa passwd)")
    return passwords


def _upload_root(kwargs: dict[str, Any], base_dir: str) -> str:
    root = os.path.join(base_dir, kwargs.pop("root"))
    if not os.path.isdir(root):
        raise ValueError(f"root: {root}: not a directory")
    if not os.access(root, os.W_OK):
        raise ValueError(f"root: {root}: not writable by this process")
    return root


def _build_put(kwargs: dict[str, Any], base_dir: str) -> Handler:
    root = _upload_root(kwargs, base_dir)
    mode = kwargs.pop("mode", "644")
    try:
        bits = int(mode, 8)
    except ValueError:
        bits = -1
    if not 0 <= bits <= 0o777:
        raise ValueError(f'mode: {mode!r}: octal permission bits such as "644"')
    return PutHandler(root, mode=bits, **kwargs)


def _build_publish(kwargs: dict[str, Any], base_dir: str) -> Handler:
    root = _upload_root(kwargs, base_dir)
    passwords = _passwords(kwargs, base_dir)
    return PublishingHandler(root, passwords, **kwargs)


def _build_vhost(kwargs: dict[str, Any], base_dir: str) -> Handler:
    hosts = kwargs["hosts"]
    if not isinstance(hosts, Mapping):
        raise ValueError('hosts: a table of host = [handler tables], e.g. "a.example" = [...]')
    chains = {}
    for name, tables in hosts.items():
        chains[name] = build_handlers(tables, source="", prefix=f".hosts.{name}", base_dir=base_dir)
    default = build_handlers(
        kwargs.get("default", []), source="", prefix=".default", base_dir=base_dir
    )
    return VirtualHostHandler(chains, default)


def _build_app(kwargs: dict[str, Any], base_dir: str) -> Handler:
    from medusa.http.appload import app_handler

    app_dir = kwargs.get("app_dir")
    return app_handler(
        kwargs["app"],
        interface=kwargs.get("interface", "auto"),
        prefix=kwargs.get("prefix", ""),
        threads=kwargs.get("threads", 8),
        app_dir=os.path.join(base_dir, app_dir) if app_dir is not None else base_dir,
        ws_max_size=kwargs.get("ws_max_size"),
        ws_ping_interval=kwargs.get("ws_ping_interval"),
    )


HANDLER_TYPES: dict[str, HandlerType] = {
    "files": HandlerType(
        "files",
        {
            o.name: o
            for o in (
                Option("root", (str,), "directory to serve"),
                Option("index", (list,), "index file names for a directory"),
                Option("small_file", (int,), "bytes sent in one write with the headers"),
                Option("cache_size", (int,), "bytes of small files kept in memory"),
                Option("gzip", (bool,), "gzip compressible types for clients that accept it"),
                Option("gzip_min_size", (int,), "smallest file compressed, bytes"),
                Option("charset", (str, bool), 'charset of textual types ("utf-8"; false: none)'),
            )
        },
        _build_files,
        "static files: GET and HEAD with validators and ranges",
        required=("root",),
    ),
    "redirect": HandlerType(
        "redirect",
        {
            o.name: o
            for o in (
                Option("rules", (list,), "[[PATTERN, LOCATION(, STATUS)], ...]"),
                Option("status", (int,), "default status: 301, 302, 307 or 308"),
            )
        },
        _build_redirect,
        "regular expression on the path to a Location template",
        required=("rules",),
    ),
    "listing": HandlerType(
        "listing",
        {
            o.name: o
            for o in (
                Option("root", (str,), "directory whose sub-directories are listed"),
                Option("index", (list,), "a directory with one of these is not listed"),
            )
        },
        _build_listing,
        "HTML index of a directory without an index file (off unless configured)",
        required=("root",),
    ),
    "auth": HandlerType(
        "auth",
        {
            o.name: o
            for o in (
                Option("passwords", (str,), "password file written by medusa passwd"),
                Option("realm", (str,), "protection space named in the challenge"),
                Option("handler", (dict,), "the handler table to protect"),
                *_AUTH_THROTTLE,
            )
        },
        _build_auth,
        "Basic authentication (RFC 7617) in front of another handler",
        required=("passwords", "handler"),
    ),
    "put": HandlerType(
        "put",
        {
            o.name: o
            for o in (
                Option("root", (str,), "directory the files are stored in"),
                Option("prefix", (str,), "URL path mapped onto root"),
                Option("max_size", (int,), "largest body accepted, bytes", non_negative),
                Option("delete", (bool,), "also accept DELETE"),
                Option("mode", (str,), 'permission bits of new files, octal ("644")'),
            )
        },
        _build_put,
        "PUT (and DELETE) of files, stored atomically (wrap it in auth)",
        required=("root",),
    ),
    "publish": HandlerType(
        "publish",
        {
            o.name: o
            for o in (
                Option("root", (str,), "the site's directory"),
                Option("passwords", (str,), "password file of the authors (medusa passwd)"),
                Option("realm", (str,), "protection space named in the challenge"),
                Option("max_size", (int,), "largest file accepted, bytes", non_negative),
                Option("delete", (bool,), "authors may DELETE files"),
                Option("index", (list,), "index file names for a directory"),
            )
        },
        _build_publish,
        "public reads, PUT and DELETE behind Basic authentication (curl -T)",
        required=("root", "passwords"),
    ),
    "vhost": HandlerType(
        "vhost",
        {
            o.name: o
            for o in (
                Option("hosts", (dict,), "host name = [handler tables]"),
                Option("default", (list,), "handler tables for other hosts"),
            )
        },
        _build_vhost,
        "name-based virtual hosts: a handler chain per Host",
        required=("hosts",),
    ),
    "userdir": HandlerType(
        "userdir",
        {"public_dir": Option("public_dir", (str,), "published directory in each home")},
        lambda kwargs, base_dir: UserDirHandler(kwargs.get("public_dir", "public_html")),
        "/~user/... from public_html in that Unix user's home",
    ),
    "app": HandlerType(
        "app",
        {
            o.name: o
            for o in (
                Option("app", (str,), 'the application, "module:attr" or "module:factory()"'),
                Option("prefix", (str,), 'URL path it is mounted at ("": /); its root_path'),
                Option("interface", (str,), '"auto" (guess), "asgi" or "wsgi"'),
                Option("threads", (int,), "WSGI: threads running the application", positive),
                Option("app_dir", (str,), "directory the module is imported from"),
                Option("ws_max_size", (int,), "ASGI: largest WebSocket message, bytes", positive),
                Option(
                    "ws_ping_interval",
                    (int, float),
                    "ASGI: seconds of WebSocket silence before a ping (0: none)",
                    non_negative,
                ),
            )
        },
        _build_app,
        "a Python web application: ASGI 3 or WSGI (PEP 3333)",
        required=("app",),
    ),
    "status": HandlerType(
        "status",
        {"path": Option("path", (str,), "URL path of the status page")},
        lambda kwargs, base_dir: StatusHandler(kwargs.get("path", "/status")),
        "uptime, counters, open channels and handlers (HTML, or JSON with ?format=json)",
    ),
}
"""The handler types medusa-http itself provides, by name."""


def handler_types() -> dict[str, HandlerType]:
    """Return the built-in handler types and those of the ``medusa.http.handlers`` entry
    points (an entry point names a :class:`HandlerType`).

    Raises:
        TypeError: when an entry point does not name a :class:`HandlerType`.
    """
    found = dict(HANDLER_TYPES)
    for ep in entry_points(group=HANDLERS_GROUP):
        kind = ep.load()
        if not isinstance(kind, HandlerType):
            raise TypeError(f"entry point {ep.name} = {ep.value} is not a HandlerType")
        found[ep.name] = kind
    return found


def build_handlers(tables: object, *, source: str, prefix: str, base_dir: str) -> list[Handler]:
    """Build the handler chain of one ``[[server]]`` from its ``handler`` tables.

    Args:
        tables: the value of the server's ``handler`` key (a list of tables).
        source: the file name, for error messages.
        prefix: the server table's dotted key (``server[0]``).
        base_dir: the config file's directory, for relative paths.

    Raises:
        ConfigError: for a value that is not a list of tables, a missing or unknown
            ``type``, a missing required option, an unknown option, a wrong type or a bad
            value.
    """
    if not isinstance(tables, list) or not all(isinstance(t, Mapping) for t in tables):
        raise ConfigError(source, f"{prefix}.handler", "must be an array of tables")
    kinds = handler_types()
    chain: list[Handler] = []
    for index, table in enumerate(tables):
        key = f"{prefix}.handler[{index}]"
        options = dict(table)
        name = options.pop("type", None)
        if not isinstance(name, str):
            raise ConfigError(source, f"{key}.type", 'missing (for example type = "files")')
        kind = kinds.get(name)
        if kind is None:
            known = ", ".join(sorted(kinds))
            raise ConfigError(source, f"{key}.type", f"unknown handler {name!r} (known: {known})")
        kwargs = validate_options(options, kind.options, source=source, prefix=key)
        for required in kind.required:
            if required not in kwargs:
                raise ConfigError(source, f"{key}.{required}", "missing")
        try:
            chain.append(kind.build(kwargs, base_dir))
        except ConfigError as exc:  # from a nested handler table
            inner = exc.key
            if inner.startswith(".handler[0]"):  # auth's single wrapped table
                inner = ".handler" + inner.removeprefix(".handler[0]")
            elif inner.startswith(".hosts.") or inner.startswith(".default"):
                inner = inner.replace(".handler[", "[", 1)
            raise ConfigError(source, f"{key}{inner}", exc.reason) from exc
        except (ValueError, OSError) as exc:
            raise ConfigError(source, key, str(exc)) from exc
    return chain
