"""Access-log lines in the Common Log Format (the NCSA httpd format, as Apache's
``common``): ``host ident user [time] "request line" status bytes``.

The line is made once per response on the event loop's thread, so the common case is kept
cheap: the time part is formatted once per second (:func:`time_stamp`, in a
:class:`LineRoute`), the client's address once per connection (:func:`client_host`), a
request target of plain printable ASCII without ``"`` or ``\\`` (nearly every one) is
written as it is, without escaping, and found so with one set lookup when it was seen
recently (:data:`PLAIN_TARGETS`), and the status and byte-count fields are looked up
(:data:`STATUS_FIELDS`, :data:`SIZE_TEXTS`) rather than formatted. When the access logger
takes plain lines into a queue (:func:`medusa.core.log.line_queue`: the console, a text
file), :meth:`LineRoute.queue_plain` makes such a line with one f-string, the logger's
prefix included, and appends it to that queue itself; every other line goes through
:meth:`LineRoute.write` (:func:`common_log_line`). This module is compiled by mypyc with the
rest of the request path (medusa-http's ``pyproject.toml``).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any, Final

from medusa.core.log import Logger, error_logger, line_queue
from medusa.core.logqueue import LogQueue
from medusa.core.resolver import HostNameLog
from medusa.http.request import Request

__all__ = [
    "PLAIN_TARGETS",
    "SIZE_TEXTS",
    "STATUS_FIELDS",
    "AccessLog",
    "LineRoute",
    "client_host",
    "common_log_line",
    "time_stamp",
]


def time_stamp(second: int) -> str:
    """``" [dd/Mon/yyyy:hh:mm:ss +zzzz] "`` for ``second`` (seconds since the epoch, local
    time, as Apache's ``%t``), with the spaces and the opening quote of the request line
    around it: the middle of a Common Log Format line."""
    return time.strftime(' [%d/%b/%Y:%H:%M:%S %z] "', time.localtime(second))


class LineRoute:
    """What the access lines of one server in one second share: the time part and where
    the lines go (made once a second, see :func:`medusa.core.log.line_queue`).

    Args:
        logger: the server's access logger (None: lines are dropped).
        second: seconds since the epoch.
        direct: False: lines always go through ``logger.log`` (:attr:`queue` is None).

    Attributes:
        logger: ``logger``.
        second: ``second``.
        stamp: the time part (:func:`time_stamp`).
        after_host: what follows the host in a line without a user: ``" - -" + stamp``.
        prefix: what the logger puts before each line in this second (the console's time,
            name and level; ``""`` for a plain file).
        queue: the logger's queue when a line may be appended to its ``records`` directly
            (``prefix + line``, as :meth:`~medusa.core.logqueue.LogQueue.put` does), else
            None: lines go through ``logger.log``.
        records: :attr:`queue`'s ``records`` deque (made with the queue, never replaced), or
            None.
        log_line: ``logger.log`` when a line needs nothing but :func:`common_log_line`
            (``direct``) and :attr:`queue` is None; else None (see :meth:`write`).
    """

    __slots__ = (
        "after_host",
        "log_line",
        "logger",
        "prefix",
        "queue",
        "records",
        "second",
        "stamp",
    )

    def __init__(self, logger: Logger | None, second: int, *, direct: bool = True) -> None:
        self.logger = logger
        self.second = second
        self.stamp = time_stamp(second)
        self.after_host = " - -" + self.stamp
        route = line_queue(logger, second) if direct and logger is not None else None
        self.prefix = ""
        self.queue: LogQueue | None = None
        self.records: deque[Any] | None = None
        self.log_line: Callable[[str], None] | None = None
        if route is not None:
            self.prefix, self.queue = route
            self.records = self.queue.records  # the same deque for the queue's life
        elif direct and logger is not None:
            self.log_line = logger.log

    def queue_plain(self, request: Request, host: str) -> bool:
        """Append ``request``'s line to :attr:`queue` when it is the usual one (a queue to
        take it, a plain target seen before, no user, a status and a size looked up): one
        f-string, the logger's prefix included. A line beyond the queue's limit is refused
        and counted (:meth:`~medusa.core.logqueue.LogQueue.refuse`).

        Returns:
            True when the line was taken (or refused) here; False when it must be made by
            :func:`common_log_line` (:meth:`write`).
        """
        queue = self.queue
        records = self.records
        method = request.method  # "" for a request that never got a request line
        target = request.target
        if (
            queue is None
            or records is None
            or not method
            or target not in PLAIN_TARGETS
            or request.user is not None
        ):
            return False
        try:
            line = (
                f"{self.prefix}{host}{self.after_host}{method} {target} "
                f"HTTP/{request.version}{STATUS_FIELDS[request.status]}"
                f"{SIZE_TEXTS[request.bytes_out]}"
            )
        except KeyError:
            return False
        if len(records) < queue.limit:
            records.append(line)
            if queue.writer_waiting:  # read after the append
                queue.wake_writer()
        else:
            queue.refuse()
        return True

    def write(self, request: Request, host: str, names: HostNameLog | None = None) -> None:
        """Log ``request``'s line (:func:`common_log_line`), any line: the host is the client
        a trusted proxy named (:attr:`~medusa.http.request.Request.forwarded`), else
        ``host`` (the connection's peer, :func:`client_host`); with ``names`` (the server's
        ``resolve_names``), the host's name replaces the address once it is known (see
        :class:`~medusa.core.resolver.HostNameLog`)."""
        forwarded = request.forwarded
        if forwarded is not None and forwarded.peer is not None:
            host = forwarded.peer[0]  # per request: a proxy's connection serves many
        line = common_log_line(request, host, self.stamp)
        if names is not None and host != "-" and self.logger is not None:
            # The line starts with the address: the host name takes its place.
            rest = line[len(host) :]
            names.write(self.logger, host, lambda name: name + rest)
        elif self.queue is not None:
            self.queue.put(self.prefix + line)
        elif self.logger is not None:
            self.logger.log(line)


class AccessLog:
    """One server's access lines (:class:`~medusa.http.server.HTTPServer`): the route of
    the current second (:class:`LineRoute`) and the line of each answered request.

    Args:
        logger: the server's access logger.
        names: the server's ``resolve_names`` log (:class:`~medusa.core.resolver.
            HostNameLog`), or None.
        direct: False when a line's host may change after it is made (a host name, a
            proxy's client): lines then go the long way (:meth:`LineRoute.write`).

    Attributes:
        second: the second (since the epoch) of the server's latest response head, set by
            the server when it formats one (``head_prefix``).
    """

    __slots__ = ("direct", "logger", "names", "route", "second")

    def __init__(self, logger: Logger, names: HostNameLog | None, direct: bool) -> None:
        self.logger = logger
        self.names = names
        self.direct = direct
        self.second = -1
        self.route: LineRoute | None = None

    def log(self, request: Request) -> None:
        """Write ``request``'s Common Log Format line. Its time is the second of the server's
        latest response head, which lies between this response's start and now (Apache's
        ``%t`` is the second the request arrived: the same but for slow responses), or the
        current second for a request that got no response; the route is made once a second,
        the client's address found once per connection (``log_host`` of the channel). The
        usual line is queued by :meth:`LineRoute.queue_plain`, any other made by
        :func:`common_log_line`. Never raises: a failure is logged (``medusa.error``)."""
        try:
            second = self.second if request.headers_sent else int(time.time())
            route = self.route
            if route is None or second != route.second:
                route = self.route = LineRoute(self.logger, second, direct=self.direct)
            channel = request.channel
            host: str = channel.log_host
            if not host:
                host = channel.log_host = client_host(channel.peer)
            if route.queue_plain(request, host):
                return
            log_line = route.log_line
            if log_line is not None:  # a logger without a queue for plain lines: no detour
                log_line(common_log_line(request, host, route.stamp))
            else:
                route.write(request, host, self.names)
        except Exception:
            error_logger.exception("access log failed")


def client_host(peer: Any) -> str:
    """The host field of a client whose transport reports ``peer``: the address of a TCP
    peer (``(host, port, ...)``), ``-`` for anything else (a Unix-socket client)."""
    if type(peer) is tuple and peer:
        return str(peer[0])
    return "-"


def _quote(text: str) -> str:
    """``text`` with ``\\`` and ``"`` escaped by a backslash and every character outside
    printable ASCII written as ``\\xhh``, ``\\uhhhh`` or ``\\Uhhhhhhhh`` (as Apache does):
    a client cannot forge log lines or fields."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    out: list[str] = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 32 <= code < 127:
            out.append(char)
        elif code < 256:
            out.append(f"\\x{code:02x}")
        elif code < 65536:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


STATUS_FIELDS: Final = {code: f'" {code} ' for code in range(100, 1000)}
"""``'" 200 '``: the end of the request line and the status field, for every three-digit
status (made once: formatting an int per line costs more than a lookup)."""

SIZE_TEXTS: Final[dict[int, str]] = {0: "-"}
"""The bytes field for each body size seen recently (``0``: ``-``): a lookup costs a third
of formatting the int. Emptied when it holds :data:`_CACHE_LIMIT` sizes."""

PLAIN_TARGETS: Final[set[str]] = set()
"""Request targets seen recently that need no escaping (printable ASCII, no ``"`` or
``\\``), of at most :data:`_PLAIN_TARGET_LENGTH` characters: one set lookup instead of four
scans. Emptied when it holds :data:`_CACHE_LIMIT`."""

_CACHE_LIMIT: Final = 1024
"""Most entries of each cache above."""

_PLAIN_TARGET_LENGTH: Final = 256
"""Longest target remembered: the cache holds at most about 300 KB."""


def _size_text(size: int) -> str:
    """The bytes field for ``size`` (body bytes sent), remembered in :data:`SIZE_TEXTS`."""
    if len(SIZE_TEXTS) >= _CACHE_LIMIT:
        SIZE_TEXTS.clear()
        SIZE_TEXTS[0] = "-"
    text = SIZE_TEXTS[size] = str(size) if size else "-"
    return text


def _logged_target(target: str) -> str:
    """``target`` escaped for the line (:func:`_quote`); a plain one is remembered in
    :data:`PLAIN_TARGETS`."""
    if not target.isascii() or '"' in target or "\\" in target or not target.isprintable():
        return _quote(target)
    if len(target) <= _PLAIN_TARGET_LENGTH:
        if len(PLAIN_TARGETS) >= _CACHE_LIMIT:
            PLAIN_TARGETS.clear()
        PLAIN_TARGETS.add(target)
    return target


def common_log_line(request: Request, host: str, stamp: str) -> str:
    """Return the Common Log Format line of a finished request.

    Args:
        request: the finished request; its method, target, version, user, status and
            ``bytes_out`` (body bytes sent: ``-`` for none) make the line.
        host: the client's address (:func:`client_host`).
        stamp: the time part (:func:`time_stamp`).
        after_host: what follows the host in a line without a user: ``" - -" + stamp``.

    The target and the user are escaped (see :func:`_quote`) so that a client cannot forge
    log lines; the method (an RFC 9110 token: the parser refuses anything else) and the
    version (``1.0`` or ``1.1``) need no escaping. (llhttp refuses control characters and
    bytes above 127 in a request-target, but a handler may have rewritten it: the check
    stays.)
    """
    status = request.status
    try:
        status_field = STATUS_FIELDS[status]
    except KeyError:
        status_field = f'" {status} '
    size = request.bytes_out
    try:
        size_field = SIZE_TEXTS[size]
    except KeyError:
        size_field = _size_text(size)
    method = request.method
    if not method:  # a request that never got a request line
        return f"{host} - -{stamp}-{status_field}{size_field}"
    target = request.target
    if target not in PLAIN_TARGETS:
        target = _logged_target(target)
    user = request.user
    if user is None:
        return (
            f"{host} - -{stamp}{method} {target} HTTP/{request.version}{status_field}{size_field}"
        )
    return (
        f"{host} - {_quote(user) if user else '-'}{stamp}{method} {target} "
        f"HTTP/{request.version}{status_field}{size_field}"
    )
