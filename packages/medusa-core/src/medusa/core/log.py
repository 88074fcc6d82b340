"""The logger protocol that servers write through, and its default on :mod:`logging`.

The original Medusa had ``logger`` objects with a ``log(message)`` method (file, syslog,
socket, multi). medusa-logging provides non-blocking implementations under the
``medusa.loggers`` entry-point group, built on core's :mod:`medusa.core.logqueue`; core's
default hands lines to the standard library's :mod:`logging`, whose root handler the
``medusa`` command makes a non-blocking queue to standard error (:mod:`medusa.core.console`),
and which servers' default logs skip when that queue is the only destination.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Iterable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from medusa.core.logqueue import LogQueue

__all__ = [
    "Logger",
    "StdlibLogger",
    "access_logger",
    "check_logger_option",
    "close_loggers",
    "close_named_loggers",
    "default_logger",
    "detach_named_loggers",
    "error_logger",
    "forget_named_loggers",
    "given_loggers",
    "line_queue",
    "named_logger",
    "peer_text",
    "printable",
    "register_logger",
    "reopen_log_files",
    "resolve_logger",
]


@runtime_checkable
class Logger(Protocol):
    """Anything that accepts one log line (``str``, no trailing newline) and never blocks."""

    def log(self, message: str) -> None:
        """Record one line."""
        ...


class StdlibLogger:
    """A :class:`Logger` that forwards each line to a :class:`logging.Logger` at INFO.

    Args:
        name: the :mod:`logging` logger name, for example ``"medusa.http.access"``.
        level: the :mod:`logging` level used for each line.
    """

    __slots__ = ("_level", "_logger")

    def __init__(self, name: str, level: int = logging.INFO) -> None:
        self._logger = logging.getLogger(name)
        self._level = level

    @property
    def enabled(self) -> bool:
        """True when a line at this logger's level would be recorded (callers skip the
        formatting of lines nobody will see)."""
        return self._logger.isEnabledFor(self._level)

    def log(self, message: str) -> None:
        """Forward ``message`` to the wrapped :mod:`logging` logger."""
        if self._logger.isEnabledFor(self._level):
            self._logger.log(self._level, "%s", message)


def line_queue(logger: Logger, second: int) -> tuple[str, LogQueue] | None:
    """Where a line that ``logger`` would record in ``second`` (seconds since the epoch) may
    be queued directly, without a call to its ``log()``: ``(prefix, queue)``, the text
    the logger puts before each message in that second (``""``: none) and the
    :class:`~medusa.core.logqueue.LogQueue` whose :attr:`~LogQueue.records` take ``prefix +
    message`` as one record (as :meth:`LogQueue.put` does, inlined; see there). None when
    lines must go through ``log()`` (a logger without a ``line_queue(second)`` method, one
    whose records carry more than the text, a level that drops INFO lines).

    A server asks once a second (the prefix holds the time), for its access lines: the
    console's logger (:class:`~medusa.core.console.ConsoleLogger`) and medusa-logging's
    plain-text file and stream loggers answer."""
    method = getattr(logger, "line_queue", None)
    if method is None:
        return None
    route: tuple[str, LogQueue] | None = method(second)
    return route


def default_logger(name: str) -> StdlibLogger:
    """The logger of a server's default log named ``name`` (``medusa.ftp.xferlog``): the
    :mod:`logging` logger of that name; when the ``medusa`` command's console is the only
    place its records would go, a :class:`~medusa.core.console.ConsoleLogger` that queues
    lines for the console directly (the same output, without the cost of
    :mod:`logging`'s records). Decided when called: a server built after a handler was
    attached to ``name`` (medusa-logging's ``capture``) logs through :mod:`logging`."""
    from medusa.core.console import ConsoleLogger, direct_route

    target = direct_route(name)
    if target is not None:
        return ConsoleLogger(name, target)
    return StdlibLogger(name)


def access_logger(protocol: str) -> Logger:
    """Return the default access logger of a protocol (``medusa.<protocol>.access``, see
    :func:`default_logger`)."""
    return default_logger(f"medusa.{protocol}.access")


error_logger = logging.getLogger("medusa")
"""The :mod:`logging` logger for errors and tracebacks (``medusa`` and its children)."""


def printable(text: str) -> str:
    """Return ``text`` fit to be a field of a log line: every character that is not
    printable (:meth:`str.isprintable`: CR, LF, NUL and the other controls, line and
    paragraph separators, unassigned code points) is written ``\\xhh``, ``\\uhhhh`` or
    ``\\Uhhhhhhhh``, a byte that was not UTF-8 (kept by ``surrogateescape``) ``\\xhh``,
    and ``\\`` itself ``\\\\``. So text a client chose (a path, a user name, a header value)
    cannot end a log line and forge the next one, and what it held can still be read.

    Text without anything to escape, nearly all of it, is returned as it is, after one
    scan."""
    if text.isprintable() and "\\" not in text:
        return text
    return "".join(_escape(char) for char in text)


def _escape(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if char.isprintable():
        return char
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:  # a byte that surrogateescape kept
        return f"\\x{code - 0xDC00:02x}"
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def peer_text(peer: object) -> str:
    """Return the client address ``peer`` (as a transport reports it) for a log line:
    ``host:port`` for TCP (``[host]:port`` for IPv6), a Unix socket's path as it is
    (escaped by :func:`printable`), ``-`` when there is none."""
    if isinstance(peer, tuple) and len(peer) >= 2:
        host = str(peer[0])
        return f"[{host}]:{peer[1]}" if ":" in host else f"{host}:{peer[1]}"
    return printable(str(peer)) if peer else "-"


_named: dict[str, Logger] = {}


def register_logger(name: str, logger: Logger) -> None:
    """Make ``logger`` available by ``name`` to servers' log options (``access_log =
    "NAME"``); ``medusa.toml``'s ``[logger.NAME]`` tables are registered this way."""
    _named[name] = logger


def named_logger(name: str) -> Logger:
    """Return the logger registered as ``name``.

    Raises:
        ValueError: no logger has that name.
    """
    try:
        return _named[name]
    except KeyError:
        known = ", ".join(sorted(_named)) or "none: add a [logger.NAME] table"
        raise ValueError(f"no logger {name!r} (configured: {known})") from None


def check_logger_option(value: object) -> str | None:
    """An :class:`~medusa.core.options.Option` check for log options (``true``, ``false``
    or the name of a ``[logger.NAME]`` table): the reason a name is refused, else None."""
    if isinstance(value, str) and value not in _named:
        known = ", ".join(sorted(_named)) or "none: add a [logger.NAME] table"
        return f"true, false or a configured logger; no logger {value!r} (configured: {known})"
    return None


def resolve_logger(value: Logger | bool | str | None, default: str) -> Logger | None:
    """Turn a server's log option into a :class:`Logger` or ``None``.

    Args:
        value: ``True`` (the :mod:`logging` logger ``default``, see
            :func:`default_logger`), ``False`` or ``None`` (off), a name registered with
            :func:`register_logger`, or a Logger.
        default: the :mod:`logging` logger name used for ``True``.

    Raises:
        ValueError: for a name that is not registered.
    """
    if value is True:
        return default_logger(default)
    if value is False or value is None:
        return None
    if isinstance(value, str):
        return named_logger(value)
    if callable(getattr(value, "close", None)):
        with contextlib.suppress(TypeError):  # not weakly referable: not tracked
            _given.add(value)
    return value


_given: weakref.WeakSet[Logger] = weakref.WeakSet()


def given_loggers() -> list[Logger]:
    """The closable logger objects given to servers directly (a startup script's own, not
    ``[logger.NAME]`` tables) and still alive: a worker of ``--workers`` closes them before
    it exits, so that their queued lines are written (a single process does it at exit)."""
    return list(_given)


def close_named_loggers(timeout: float = 5.0) -> None:
    """Close the registered loggers that can be closed (their queued lines are written
    first, for up to ``timeout`` seconds each), and forget them."""
    close_loggers(detach_named_loggers().values(), timeout)


def detach_named_loggers() -> dict[str, Logger]:
    """Forget the registered loggers and return them by name, open (the master of
    ``--workers`` reading its configuration again: it closes them once the new one is in
    use, or registers them again with :func:`register_logger` when it is refused)."""
    loggers = dict(_named)
    _named.clear()
    return loggers


def close_loggers(loggers: Iterable[Logger], timeout: float = 5.0) -> None:
    """Close the ``loggers`` that can be closed (``close(timeout)`` or ``close()``), their
    queued lines written first for up to ``timeout`` seconds each; errors are logged."""
    for logger in loggers:
        close = getattr(logger, "close", None)
        if close is None:
            continue
        try:
            close(timeout)
        except TypeError:
            close()
        except Exception:
            error_logger.exception("closing logger %r failed", logger)


def reopen_log_files() -> None:
    """Reopen every log file (SIGUSR1, after logrotate moved them): each registered logger
    with a ``reopen()`` method (medusa-logging's file logger) reopens its file, and each
    :class:`logging.FileHandler` of the :mod:`logging` module closes its file, which it
    opens again at its next line."""
    for logger in list(_named.values()):
        reopen = getattr(logger, "reopen", None)
        if reopen is not None:
            try:
                reopen()
            except Exception:
                error_logger.exception("reopening logger %r failed", logger)
    for handler in [*logging.getLogger().handlers, *_logger_handlers()]:
        if isinstance(handler, logging.FileHandler):
            handler.acquire()
            try:
                stream, handler.stream = handler.stream, None
                if stream is not None:
                    stream.close()
            finally:
                handler.release()


def _logger_handlers() -> list[logging.Handler]:
    handlers: list[logging.Handler] = []
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            handlers.extend(logger.handlers)
    return handlers


def forget_named_loggers() -> None:
    """Drop the registered loggers without closing them: a worker process just forked
    inherits the master's loggers, whose writer threads did not survive the fork; it
    builds and registers its own."""
    _named.clear()
