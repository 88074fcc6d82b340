"""``medusa serve --app SPEC``: the command-line options that put a Python web application
(ASGI 3 or WSGI) on the HTTP server, and the handler chain they make.

The rule, what a user of uvicorn or gunicorn behind nginx (``try_files $uri @app``)
expects: with ``--app`` and an explicit ROOT, a ``GET`` or ``HEAD`` of a regular file that
exists under ROOT is served from ROOT (static files in front); every other request goes to
the application. Without an explicit ROOT the application gets every path (the current
directory is not served). ``--status`` still comes first when given.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from medusa.core.options import ConfigError, non_negative, positive
from medusa.http.appload import INTERFACES, AppLoadError, app_handler
from medusa.http.handler import Handler
from medusa.http.staticfirst import ExistingFileHandler

__all__ = ["add_app_arguments", "app_chain"]


def _prefix(text: str) -> str:
    """argparse type of ``--app-prefix``: a URL path starting with ``/`` (``/`` itself:
    mounted at the root)."""
    if not text:
        return ""  # the default (argparse passes a string default through its type)
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a URL path starting with /")
    return text.rstrip("/")


def _threads(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--app``, ``--interface``, ``--app-dir``, ``--app-prefix``, ``--threads``,
    ``--ws-max-size`` and ``--ws-ping-interval`` to ``medusa serve``'s parser."""
    parser.add_argument(
        "--app",
        dest="http_app",
        default=None,
        metavar="MODULE:ATTR",
        help="http: serve this ASGI 3 or WSGI application (module:attr, module:factory())",
    )
    parser.add_argument(
        "--interface",
        dest="http_interface",
        choices=INTERFACES,
        default="auto",
        help="http: the application's interface (default: auto, guessed from the callable)",
    )
    parser.add_argument(
        "--app-dir",
        dest="http_app_dir",
        default=None,
        metavar="DIR",
        help="http: import the application's module from DIR (default: the current directory)",
    )
    parser.add_argument(
        "--app-prefix",
        dest="http_app_prefix",
        default="",
        type=_prefix,
        metavar="PATH",
        help="http: mount the application at PATH (its root_path / SCRIPT_NAME; default /)",
    )
    parser.add_argument(
        "--threads",
        dest="http_threads",
        default=8,
        type=_threads,
        metavar="N",
        help="http: threads running a WSGI application (default 8)",
    )
    parser.add_argument(
        "--ws-max-size",
        dest="http_ws_max_size",
        default=None,
        type=_checked(int, positive),
        metavar="BYTES",
        help="http: largest incoming WebSocket message of an ASGI application (default 16 MiB)",
    )
    parser.add_argument(
        "--ws-ping-interval",
        dest="http_ws_ping_interval",
        default=None,
        type=_checked(float, non_negative),
        metavar="SECONDS",
        help="http: ping a WebSocket client silent this long (default 20; 0: never)",
    )


def _checked(convert: Callable[[str], Any], check: Callable[[Any], str | None]) -> Any:
    """An argparse type: the text made a number by ``convert`` (``int``, ``float``), then
    checked by ``check`` (an :attr:`~medusa.core.options.Option.check`, as the
    ``app`` handler's options are)."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        problem = check(value)
        if problem is not None:
            raise argparse.ArgumentTypeError(problem)
        return value

    return parse


def app_chain(root: str, arguments: argparse.Namespace) -> list[Handler]:
    """The handlers ``--app`` puts after ``--status``: ROOT's existing files when ROOT was
    given (``arguments.root``), then the application.

    Raises:
        ConfigError: (key ``--app``) when the application cannot be loaded or its interface
            told; (key ``--listing``) with ``--listing``, which an application in front of
            every path leaves no room for.
    """
    if getattr(arguments, "http_listing", False):
        raise ConfigError(
            "command line",
            "--listing",
            "cannot be combined with --app (the application answers every path that is not a file)",
        )
    chain: list[Handler] = []
    if getattr(arguments, "root", None) is not None:
        chain.append(ExistingFileHandler(root))
    try:
        chain.append(
            app_handler(
                arguments.http_app,
                interface=arguments.http_interface,
                prefix=arguments.http_app_prefix,
                threads=arguments.http_threads,
                app_dir=arguments.http_app_dir,
                ws_max_size=getattr(arguments, "http_ws_max_size", None),
                ws_ping_interval=getattr(arguments, "http_ws_ping_interval", None),
            )
        )
    except (AppLoadError, ValueError) as exc:
        raise ConfigError("command line", "--app", str(exc)) from exc
    return chain
