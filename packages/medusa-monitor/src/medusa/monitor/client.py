"""``medusa-monitor ADDR``: the monitor's client.

Interactive use reads lines with :mod:`readline` editing and a history file; Ctrl-D
leaves; Ctrl-C at the prompt forgets the statement being typed, and while code runs asks
the server to cancel it (awaited code only: synchronous code holds the loop until it
returns). ``-c CODE`` runs CODE and exits: status 1 when it raised. Without a terminal on
standard input, lines are read from it one by one, prompts and banner going to standard
error (as ``python -i`` does), so results alone reach standard output.

The secret is read, in this order, from ``--secret-file FILE``, ``--secret-env NAME``,
the file named by ``MEDUSA_MONITOR_SECRET_FILE``, ``MEDUSA_MONITOR_SECRET``, or a hidden
prompt on the terminal; it is asked for only when the server sends a challenge. It is never
an argument (``ps`` would show it).

Exit status: 0 on Ctrl-D or success, 1 when ``-c`` code raised, 2 for a usage error or an
unusable secret, 3 when the connection or the login failed.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import ssl
import sys
import warnings
from collections.abc import Callable, Sequence

from medusa.core.address import AddressError
from medusa.monitor.connection import LoginRefusedError, MonitorConnection, Reply
from medusa.monitor.secret import (
    SECRET_ENV,
    SECRET_FILE_ENV,
    SecretError,
    check_secret,
    read_secret_file,
    secret_from_env,
)
from medusa.monitor.wire import ProtocolError

__all__ = ["main"]

HISTORY_ENV = "MEDUSA_MONITOR_HISTORY"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medusa-monitor",
        description="A Python prompt into a running Medusa server (its monitor).",
    )
    parser.add_argument(
        "address", metavar="ADDR", help="unix:/path, HOST:PORT, [IPv6]:PORT or PORT (127.0.0.1)"
    )
    parser.add_argument("-c", dest="code", metavar="CODE", help="run CODE and exit")
    parser.add_argument("--secret-file", metavar="FILE", help="file holding the secret")
    parser.add_argument("--secret-env", metavar="NAME", help="environment variable holding it")
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--cafile", metavar="FILE", help="CA certificates to trust (PEM)")
    parser.add_argument("--server-name", metavar="NAME", help="name the certificate must carry")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="longest wait for a reply (default: no limit; connecting: 10 s)",
    )
    parser.add_argument(
        "--history",
        metavar="FILE",
        help=f"history file (default ${HISTORY_ENV} or ~/.medusa_monitor_history)",
    )
    return parser


def secret_reader(args: argparse.Namespace) -> Callable[[], bytes]:
    """Return a function that finds the secret as the module describes.

    The function raises :class:`~medusa.monitor.secret.SecretError` when no usable
    secret is found.
    """

    def read() -> bytes:
        if args.secret_file:
            return read_secret_file(args.secret_file, "--secret-file")
        if args.secret_env:
            return secret_from_env(args.secret_env, "--secret-env")
        if os.environ.get(SECRET_FILE_ENV):
            return read_secret_file(os.environ[SECRET_FILE_ENV], SECRET_FILE_ENV)
        if SECRET_ENV in os.environ:
            return secret_from_env(SECRET_ENV, SECRET_ENV)
        with warnings.catch_warnings():
            warnings.simplefilter("error", getpass.GetPassWarning)
            try:
                typed = getpass.getpass("Monitor secret: ")
            except (getpass.GetPassWarning, EOFError):
                raise SecretError(
                    "secret",
                    f"no secret: use --secret-file, set {SECRET_FILE_ENV} or {SECRET_ENV}, "
                    "or run on a terminal",
                ) from None
        return check_secret(typed.encode(), "secret")

    return read


def _tls_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if not (args.tls or args.cafile):
        return None
    context = ssl.create_default_context(cafile=args.cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _wait(conn: MonitorConnection, send: Callable[[str], Reply], text: str) -> Reply:
    """Send a request (``send(text)``) and wait for its reply; Ctrl-C while waiting
    sends ``CANCEL``."""
    try:
        return send(text)
    except KeyboardInterrupt:
        pass
    while True:
        print("\n(cancelling)", file=sys.stderr, flush=True)
        conn.cancel()
        try:
            return conn.read_reply()
        except KeyboardInterrupt:
            continue


def _history_path(args: argparse.Namespace) -> str:
    return (
        args.history
        or os.environ.get(HISTORY_ENV)
        or os.path.expanduser("~/.medusa_monitor_history")
    )


def _start_history(path: str) -> Callable[[], None]:
    """Load the readline history; return the function that saves it (mode 0600)."""
    try:
        import readline
    except ImportError:
        return lambda: None
    readline.set_history_length(1000)
    with contextlib.suppress(OSError):
        readline.read_history_file(path)

    def save() -> None:
        with contextlib.suppress(OSError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
            os.close(fd)
            readline.write_history_file(path)

    return save


def interact(conn: MonitorConnection, banner: str, history: str) -> int:
    """The prompt loop: ``>>>`` and ``...`` until Ctrl-D (or the server closes)."""
    tty = sys.stdin.isatty()
    save = _start_history(history) if tty else (lambda: None)
    info = sys.stdout if tty else sys.stderr
    info.write(banner)
    info.flush()
    prompt = ">>> "
    try:
        while True:
            try:
                if tty:
                    text = input(prompt)
                else:
                    sys.stderr.write(prompt)
                    sys.stderr.flush()
                    raw = sys.stdin.readline()
                    if not raw:
                        raise EOFError
                    text = raw.removesuffix("\n")
            except EOFError:
                info.write("\n")
                return 0
            except KeyboardInterrupt:
                info.write("\nKeyboardInterrupt\n")
                conn.reset()
                prompt = ">>> "
                continue
            reply = _wait(conn, conn.line, text)
            if reply.more:
                prompt = "... "
                continue
            prompt = ">>> "
            sys.stdout.write(reply.output)
            sys.stdout.flush()
    except ConnectionError:
        info.write("\nmedusa-monitor: the server closed the connection\n")
        return 0
    finally:
        save()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``medusa-monitor`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        context = _tls_context(args)
    except (OSError, ssl.SSLError) as exc:
        print(f"medusa-monitor: --cafile: {exc}", file=sys.stderr)
        return 2
    try:
        conn = MonitorConnection.open(
            args.address, ssl_context=context, server_hostname=args.server_name
        )
    except AddressError as exc:
        print(f"medusa-monitor: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"medusa-monitor: cannot connect to {args.address}: {exc}", file=sys.stderr)
        return 3
    with conn:
        try:
            banner = conn.login(secret_reader(args))
        except SecretError as exc:
            print(f"medusa-monitor: {exc}", file=sys.stderr)
            return 2
        except LoginRefusedError as exc:
            print(f"medusa-monitor: {exc}", file=sys.stderr)
            return 3
        except (OSError, ProtocolError, ValueError) as exc:
            print(f"medusa-monitor: login failed: {exc}", file=sys.stderr)
            return 3
        conn.set_timeout(args.timeout)
        try:
            if args.code is not None:
                reply = _wait(conn, conn.execute, args.code)
                sys.stdout.write(reply.output)
                sys.stdout.flush()
                return 0 if reply.ok else 1
            return interact(conn, banner, _history_path(args))
        except (OSError, ProtocolError) as exc:
            print(f"medusa-monitor: {exc}", file=sys.stderr)
            return 3


if __name__ == "__main__":
    raise SystemExit(main())
