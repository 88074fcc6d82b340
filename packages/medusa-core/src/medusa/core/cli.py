"""The ``medusa`` command.

* ``medusa serve [ROOT] [--http ADDR] [--ftp ADDR] ... [-c FILE]`` — serve ROOT with every
  installed server type (or those named), or the servers of a ``medusa.toml``;
* ``medusa run SCRIPT`` — run a Python startup script that builds servers with the typed API;
* ``medusa plugins`` — list the installed server types, resolvers, loggers and HTTP handler
  types (one section per entry-point group);
* ``medusa --version`` — medusa-core's version;
* ``medusa passwd FILE USER [--stdin]`` — add a user to a password file or change their
  password (a salted scrypt hash, see :mod:`medusa.core.passwords`).

Each installed protocol package adds its own ``--NAME ADDR`` option to ``serve``, and may
add options of its own (:meth:`~medusa.core.server.Server.add_serve_arguments`).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import signal
import sys
import warnings
from collections.abc import Callable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import NoReturn

from medusa.core.address import Address, AddressError
from medusa.core.config import LOG_LEVELS, Config, config_loader, peek_log_level
from medusa.core.console import DEFAULT_BUFFER, install_console
from medusa.core.loop import (
    ServersCollected,
    check_backend,
    collect_servers,
    print_listening,
    run,
)
from medusa.core.options import ConfigError
from medusa.core.passwords import set_password, valid_user_name
from medusa.core.plugins import (
    HTTP_HANDLERS_GROUP,
    LOGGERS_GROUP,
    RESOLVERS_GROUP,
    SERVERS_GROUP,
    load_server_types,
    plugins,
)
from medusa.core.server import ListenError, Server
from medusa.core.supervisor import Supervisor
from medusa.core.workers import resolve_workers

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse with a hint when an address option is unknown: server options come from
    the installed server types (medusa-http gives ``--http``, and so on)."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments") and "--" in message:
            message += (
                " (each server type's address option comes with its package: "
                "'medusa plugins' lists the installed ones)"
            )
        super().error(message)


def _core_version() -> str:
    try:
        return version("medusa-core")
    except PackageNotFoundError:  # run from a source tree that was not installed
        return "unknown"


def _build_parser(server_types: dict[str, type[Server]]) -> argparse.ArgumentParser:
    parser = _Parser(prog="medusa", description="Medusa: many protocol servers on one event loop.")
    parser.add_argument("--version", action="version", version=f"medusa-core {_core_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="serve a directory with the installed servers, or the servers of a TOML file",
        description=(
            "Serve ROOT (default: the current directory). With no address option every "
            "installed server type starts on 127.0.0.1 at its default port (the monitor "
            "only when asked for); with some, only those start. -c FILE runs the servers "
            "declared in a medusa.toml instead."
        ),
    )
    serve.add_argument(
        "root", nargs="?", default=None, metavar="ROOT", help="directory to serve (default: .)"
    )
    for name, cls in sorted(server_types.items()):
        serve.add_argument(
            f"--{name}",
            metavar="ADDR",
            dest=f"addr_{name}",
            action="append",
            help=f"{cls.description}: listen on ADDR (PORT, HOST:PORT, *:PORT, [IPv6]:PORT, "
            f"unix:/path; default 127.0.0.1:{cls.default_port}); may be repeated",
        )
    core_dests = set(vars(serve.parse_args([])))
    for _name, cls in sorted(server_types.items()):
        cls.add_serve_arguments(serve)  # a type's own options (medusa-http: --listing, ...)
    # Their defaults, to tell whether one was given: they make no sense with -c FILE.
    serve.set_defaults(
        type_option_defaults={
            dest: value
            for dest, value in vars(serve.parse_args([])).items()
            if dest not in core_dests
        }
    )
    serve.add_argument("-c", "--config", metavar="FILE", help="a medusa.toml declaring servers")
    _add_common(serve)

    runp = sub.add_parser(
        "run",
        help="run a Python startup script that builds servers",
        description=(
            "Run SCRIPT as __main__ (its directory first on sys.path, ARGS as sys.argv[1:]); "
            "when it leaves a non-empty list of servers in a global named 'servers', serve "
            "them until SIGINT or SIGTERM."
        ),
    )
    _add_common(runp)
    runp.add_argument("script", metavar="SCRIPT", help="the startup script (start_medusa.py)")
    runp.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script")

    sub.add_parser(
        "plugins", help="list the installed server types, resolvers, loggers and handler types"
    )

    passwd = sub.add_parser(
        "passwd",
        help="add a user to a password file or change their password",
        description=(
            "Ask for USER's password twice and write its salted scrypt hash to FILE "
            "(created if missing; other entries kept)."
        ),
    )
    passwd.add_argument("file", metavar="FILE", help="the password file")
    passwd.add_argument("user", metavar="USER", help="the user name")
    passwd.add_argument(
        "--stdin", action="store_true", help="read the password from one line of stdin"
    )
    return parser


_LEVELS = list(LOG_LEVELS)


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--backend",
        choices=["auto", "uvloop", "asyncio"],
        default=None,
        help="event loop (default: auto, uvloop when installed)",
    )
    parser.add_argument(
        "--grace",
        type=_non_negative_seconds,
        default=None,
        metavar="SECONDS",
        help="seconds for in-flight responses at shutdown (default 10)",
    )
    parser.add_argument(
        "--log-level",
        default=None,
        choices=_LEVELS,
        help="logging level (default info; warning silences the access log)",
    )
    parser.add_argument(
        "--log-buffer",
        type=lambda text: _count(text, minimum=1),
        default=DEFAULT_BUFFER,
        metavar="LINES",
        help="log lines held while standard error is slow or not read; beyond it lines "
        f"are dropped and counted (default {DEFAULT_BUFFER})",
    )
    parser.add_argument(
        "--workers",
        type=_workers,
        default=None,
        metavar="N",
        help='worker processes under a master, or "auto" (one per CPU); default 1: '
        "one process, nothing forked",
    )
    parser.add_argument(
        "--max-requests",
        type=_count,
        default=None,
        metavar="N",
        help="with --workers: replace a worker gracefully after about N requests (0: never)",
    )
    parser.add_argument(
        "--max-requests-jitter",
        type=_count,
        default=None,
        metavar="N",
        help="a random 0 to N added to each worker's --max-requests",
    )


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    return _count(text, minimum=1, what='a number or "auto"')


def _count(text: str, minimum: int = 0, what: str = "a whole number") -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be {minimum} or more")
    return value


def _non_negative_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _setup_logging(level: str, buffer: int) -> None:
    install_console(getattr(logging, level.upper()), buffer=buffer)


def _serve(args: argparse.Namespace, server_types: dict[str, type[Server]]) -> int:
    if args.config:
        chosen = [n for n in server_types if getattr(args, f"addr_{n}")]
        if chosen:
            print("medusa: -c FILE and --NAME ADDR options cannot be combined", file=sys.stderr)
            return 2
        if args.root is not None:
            print(
                "medusa: -c FILE and ROOT cannot be combined (set root in the file)",
                file=sys.stderr,
            )
            return 2
        defaults: dict[str, object] = args.type_option_defaults
        if any(getattr(args, dest) != value for dest, value in defaults.items()):
            print(
                "medusa: -c FILE and a server type's own options (such as --listing or "
                "--status) cannot be combined (set them in the file)",
                file=sys.stderr,
            )
            return 2
        # Logging first: servers log while they are built (a stale upload file removed).
        _setup_logging(args.log_level or peek_log_level(args.config) or "info", args.log_buffer)
        path = args.config

        def read() -> Callable[[], Config]:
            return config_loader(path, server_types)
    else:
        root = os.path.abspath(args.root or ".")
        if not os.path.isdir(root):
            reason = "not a directory" if os.path.exists(root) else "no such directory"
            print(f"medusa: ROOT {args.root}: {reason}", file=sys.stderr)
            return 2
        _setup_logging(args.log_level or "info", args.log_buffer)
        wanted = {n: getattr(args, f"addr_{n}") for n in server_types}
        if not any(wanted.values()):
            wanted = {
                n: [str(cls.default_port)]
                for n, cls in server_types.items()
                if cls.start_by_default
            }
        if not any(wanted.values()):
            print(
                "medusa: no server type is installed (install medusa-http, medusa-ftp, ...)",
                file=sys.stderr,
            )
            return 2

        def build() -> Config:
            config = Config()
            for name, addresses in sorted(wanted.items()):
                for text in addresses or ():
                    try:
                        address = Address.parse(text)
                    except AddressError as exc:
                        raise ConfigError("command line", f"--{name}", str(exc)) from exc
                    server = server_types[name].from_serve_arguments(address, root, args)
                    config.servers.append(server)
            return config

        def read() -> Callable[[], Config]:
            return build

    return _start(args, read)


def _start(args: argparse.Namespace, read: Callable[[], Callable[[], Config]]) -> int:
    """Serve the configuration ``read`` gives, in one process or under a master
    (``--workers``); the command line's settings override the configuration's."""

    def read_with_options() -> Callable[[], Config]:
        loader = read()

        def load() -> Config:
            config = loader()
            if args.workers is not None:
                config.workers = resolve_workers(args.workers)
            if args.backend is not None:
                config.backend = args.backend
            if args.grace is not None:
                config.grace = args.grace
            if args.max_requests is not None:
                config.max_requests = args.max_requests
            if args.max_requests_jitter is not None:
                config.max_requests_jitter = args.max_requests_jitter
            return config

        return load

    # Until the servers or the master handle them, a reload or logrotate signal sent right
    # after the start (systemctl reload) must not kill the process (their default action).
    for signum in (signal.SIGHUP, signal.SIGUSR1):
        if signal.getsignal(signum) == signal.SIG_DFL:
            signal.signal(signum, signal.SIG_IGN)
    load = read_with_options()
    config = load()
    try:
        check_backend(config.backend)
    except ImportError as exc:
        print(f"medusa: backend {config.backend}: {exc}", file=sys.stderr)
        return 2
    if config.workers > 1:
        checked: Config | None = config

        def generation() -> Callable[[], Config]:
            nonlocal checked
            if checked is None:
                return read_with_options()
            # The first reading: the master takes the configuration just checked (its
            # loggers made once), and each worker, forked after, builds its own with `load`.
            first, checked = checked, None
            taken = False

            def load_first() -> Config:
                nonlocal taken
                if taken:
                    return load()
                taken = True
                return first

            return load_first

        return Supervisor(generation).run()
    run(config.servers, backend=config.backend, grace=config.grace, on_start=print_listening)
    return 0


_PLUGIN_KINDS = (
    (SERVERS_GROUP, "server types", "install medusa-http, medusa-ftp, ..."),
    (RESOLVERS_GROUP, "resolvers", "install medusa-dns"),
    (LOGGERS_GROUP, "loggers", "install medusa-logging"),
    (HTTP_HANDLERS_GROUP, "HTTP handler types beyond medusa-http's own", "a package adds them"),
)
"""Each entry-point group ``medusa plugins`` lists: (group, heading, what to say when empty)."""


def _plugins() -> int:
    for index, (group, heading, empty) in enumerate(_PLUGIN_KINDS):
        found = plugins(group)
        if index:
            print()
        print(f"{heading} ({group}):")
        if not found:
            print(f"  none ({empty})")
            continue
        width = max(len(p.name) for p in found)
        for plugin in found:
            print(
                f"  {plugin.name:<{width}}  {plugin.distribution} {plugin.version}"
                f"  ({plugin.target})"
            )
    return 0


def _run_script(args: argparse.Namespace) -> int:
    if not os.path.isfile(args.script):
        print(f"medusa: {args.script}: no such file", file=sys.stderr)
        return 2
    _setup_logging(args.log_level or "info", args.log_buffer)
    sys.argv = [args.script, *args.args]
    script_dir = os.path.dirname(os.path.abspath(args.script))
    sys.path.insert(0, script_dir)
    path = args.script

    def read() -> Callable[[], Config]:
        with open(path, "rb") as f:
            source = f.read()

        def load() -> Config:
            # A script that ends with run([...]) gives its servers to run(), which here
            # collects them instead of serving (the workers serve them).
            with collect_servers() as given:
                try:
                    return _script_config(run_source(source, path))
                except ServersCollected:
                    return Config(servers=list(given))

        return load

    if args.workers is None:
        # As without workers: the script runs here, and a run([...]) in it serves here.
        # A script that leaves `servers` (and perhaps `workers = N`) is served after.
        with open(path, "rb") as f:
            config = _script_config(run_source(f.read(), path))
        if config.workers <= 1:
            if config.servers:
                backend = args.backend or "auto"
                grace = 10.0 if args.grace is None else args.grace
                run(config.servers, backend=backend, grace=grace, on_start=print_listening)
            return 0
    return _start(args, read)


def _script_config(namespace: dict[str, object]) -> Config:
    """The configuration a startup script's globals give: ``servers`` (a list of servers)
    and ``workers`` (a number or ``"auto"``)."""
    config = Config()
    servers = namespace.get("servers")
    if isinstance(servers, list) and all(isinstance(s, Server) for s in servers):
        config.servers = list(servers)
    workers = namespace.get("workers")
    if isinstance(workers, int | str):
        config.workers = resolve_workers(workers)
    return config


def run_source(source: bytes, path: str) -> dict[str, object]:
    """Run a startup script's ``source`` as ``__main__`` (as ``runpy.run_path`` runs a
    file, from the text read before) and return its globals."""
    namespace: dict[str, object] = {
        "__name__": "__main__",
        "__file__": path,
        "__builtins__": __builtins__,
    }
    exec(compile(source, path, "exec"), namespace)  # noqa: S102 (the user's own script)
    return namespace


def _passwd(args: argparse.Namespace) -> int:
    if not valid_user_name(args.user):
        print(f"medusa: invalid user name {args.user!r}", file=sys.stderr)
        return 2
    try:
        if args.stdin:
            password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
        else:
            with warnings.catch_warnings():
                # No terminal: getpass would warn and read with echo; refuse instead.
                warnings.simplefilter("error", getpass.GetPassWarning)
                try:
                    password = getpass.getpass(f"New password for {args.user}: ")
                    again = getpass.getpass("Again: ")
                except getpass.GetPassWarning:
                    print(
                        "medusa: no terminal to ask for the password on: use --stdin",
                        file=sys.stderr,
                    )
                    return 2
            if password != again:
                print("medusa: the passwords do not match", file=sys.stderr)
                return 2
    except EOFError:
        password = ""
    if not password:
        print("medusa: empty password refused", file=sys.stderr)
        return 2
    try:
        set_password(args.file, args.user, password)
    except OSError as exc:
        print(f"medusa: {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``medusa`` console script; returns the exit status.

    Exit status: 0 after a clean stop, 2 for a usage or configuration error (printed on
    stderr as ``medusa: FILE: KEY: reason``), 1 when a server cannot listen.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        server_types = load_server_types() if argv[:1] == ["serve"] else {}
    except (ImportError, TypeError) as exc:
        print(f"medusa: a plugin failed to load: {exc}", file=sys.stderr)
        return 1
    parser = _build_parser(server_types)
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args, server_types)
        if args.command == "run":
            return _run_script(args)
        if args.command == "passwd":
            return _passwd(args)
        return _plugins()
    except ConfigError as exc:
        print(f"medusa: {exc}", file=sys.stderr)
        return 2
    except ListenError as exc:
        print(f"medusa: {exc.strerror}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"medusa: cannot listen: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
