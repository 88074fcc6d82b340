"""The process's file descriptors: enough for the configured connections, and what to do
when they run short.

Every connection is a descriptor, and many hold another one now and then (the file an HTTP
response sends, an upload's temporary file, an FTP data connection). The process may open
at most ``RLIMIT_NOFILE`` (``ulimit -n``) of them; past it ``accept`` and ``open`` fail with
``EMFILE``, and clients would see resets and empty replies. The connections themselves are
what must fit (a file that cannot be opened is answered, HTTP's 503); a server type whose
every connection holds more sets :attr:`~medusa.core.server.Server.descriptors_per_connection`.

* At start (:func:`fit_connections`): when the servers' ``max_connections``, times
  :attr:`~medusa.core.server.Server.descriptors_per_connection`, plus what is open already
  and :data:`RESERVE`, exceed the soft limit, the soft limit is raised towards the hard one
  (as much as needed, logged); if that is not enough, what is left is shared out (a server
  that needs less than an equal share keeps its ``max_connections``, the others get equal
  shares) and each server lowered gets a warning that says how to raise the limit.
  Connections beyond are then refused cleanly (HTTP's 503, FTP's 421), logged.
* While serving (:func:`short_of_descriptors`): a connection whose descriptor number comes
  within :data:`MARGIN` of the limit is refused the same way (descriptors are allocated
  lowest first, so a high number means the ones below are taken), which keeps ``accept``
  from failing. The limit is read again at every timeout sweep (``prlimit --pid`` can
  change it under a running process).
* If ``accept`` fails all the same: asyncio's loop stops accepting on that listener for a
  second (the connections wait in the kernel's queue) and calls the loop's exception
  handler, which :func:`accept_error_handler` makes one log line a second at most (no
  traceback); uvloop (libuv) closes the connections waiting in the queue, using a
  descriptor it keeps in reserve, and keeps listening (nothing reaches the application,
  so nothing is logged).
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from medusa.core.log import error_logger

if TYPE_CHECKING:
    import asyncio

    from medusa.core.server import Server

__all__ = [
    "MARGIN",
    "RESERVE",
    "accept_error_handler",
    "descriptor_limit",
    "fit_connections",
    "open_descriptors",
    "refresh_limit",
    "short_of_descriptors",
]

RESERVE = 32
"""Descriptors kept out of the connections' share at start: log files, the resolver's
sockets, a PAM check's pipes, listening sockets added later."""

MARGIN = 16
"""A connection whose descriptor number is this close to the limit is refused."""

try:
    import resource
except ImportError:  # not POSIX
    resource = None  # type: ignore[assignment]

_limit: int | None = None  # the soft limit as last read (None: unknown or unlimited)


def descriptor_limit() -> tuple[int | None, int | None]:
    """Return the soft and hard ``RLIMIT_NOFILE`` (``None`` for unlimited or unknown)."""
    if resource is None:
        return None, None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    infinity = resource.RLIM_INFINITY
    return (None if soft == infinity else soft), (None if hard == infinity else hard)


def refresh_limit() -> int | None:
    """Read the soft limit again (at start, and from each server's timeout sweep) for
    :func:`short_of_descriptors`; return it."""
    global _limit
    _limit = descriptor_limit()[0]
    return _limit


def open_descriptors() -> int | None:
    """Return how many descriptors the process has open (``/proc/self/fd``, or
    ``/dev/fd``), or ``None`` where neither lists them."""
    for directory in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(directory)) - 1  # less the one listdir used
        except OSError:
            continue
    return None


def short_of_descriptors(fd: int) -> int | None:
    """Return the limit when descriptor number ``fd`` (one just allocated, for an accepted
    connection) lies within :data:`MARGIN` of it, else ``None``."""
    limit = _limit
    if limit is not None and fd >= limit - MARGIN:
        limit = refresh_limit()  # raised since the last sweep?
        if limit is not None and fd >= limit - MARGIN:
            return limit
    return None


def fit_connections(servers: Sequence[Server]) -> None:
    """Make the servers' ``max_connections`` fit the descriptor limit (see the module
    documentation): raise the soft limit as far as needed and allowed, else lower
    ``max_connections``, logging either. Call it before the servers start."""
    soft, hard = descriptor_limit()
    if soft is None or not servers:
        refresh_limit()
        return
    in_use = (open_descriptors() or 0) + len(servers)  # a listening socket each, at least
    demand = sum(s.max_connections * s.descriptors_per_connection for s in servers)
    needed = demand + in_use + RESERVE
    if needed > soft and resource is not None:
        raised = needed if hard is None else min(hard, needed)
        if raised > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard or raised))
            except (OSError, ValueError) as exc:
                error_logger.warning("cannot raise the descriptor limit to %d: %s", raised, exc)
            else:
                error_logger.info(
                    "raised the descriptor limit (RLIMIT_NOFILE) from %d to %d for max_connections",
                    soft,
                    raised,
                )
                soft = raised
    if needed > soft:
        # Max-min fair shares: a server that needs less than an equal share keeps what it
        # has; the others share the rest equally.
        room = max(0, soft - in_use - RESERVE)
        left = len(servers)
        for server in sorted(
            servers, key=lambda s: s.max_connections * s.descriptors_per_connection
        ):
            each = server.descriptors_per_connection
            fair = room // left
            left -= 1
            if server.max_connections * each <= fair:
                room -= server.max_connections * each
                continue
            fitted = max(1, fair // each)
            room -= fitted * each
            error_logger.warning(
                "%s on %s: max_connections lowered from %d to %d: the process may open %d "
                "descriptors (%d in use, %d kept for files and logs) and a connection may "
                "need %d; raise the limit (ulimit -n, systemd LimitNOFILE=) to keep %d",
                server.name,
                server.address,
                server.max_connections,
                fitted,
                soft,
                in_use,
                RESERVE,
                each,
                server.max_connections,
            )
            server.max_connections = fitted
    refresh_limit()


AcceptHandler = Callable[["asyncio.AbstractEventLoop", dict[str, Any]], object]

_EXHAUSTED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def accept_error_handler(previous: AcceptHandler | None) -> AcceptHandler:
    """Return a loop exception handler that turns asyncio's "socket.accept() out of system
    resource" report (the standard loop then stops accepting on that listener for one
    second) into one log line without a traceback, at most one a second; every other
    report goes to ``previous`` (or the loop's default handler)."""
    last = [0.0]

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if (
            isinstance(exc, OSError)
            and exc.errno in _EXHAUSTED
            and "accept" in str(context.get("message", ""))
        ):
            now = time.monotonic()
            if now - last[0] >= 1.0:
                last[0] = now
                sock = context.get("socket")
                where = _sockname(sock)
                error_logger.error(
                    "cannot accept connections%s: %s (descriptor limit %s); they wait in "
                    "the backlog, accepting again in 1 s",
                    f" on {where}" if where else "",
                    exc.strerror or exc,
                    _limit if _limit is not None else "unknown",
                )
            return
        if isinstance(exc, ValueError) and _retry_of_closed_listener(context):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    return handle


def _retry_of_closed_listener(context: dict[str, Any]) -> bool:
    """True for the standard loop's accept retry (``_start_serving``, scheduled after
    ``EMFILE``) that runs after its listener was closed (the server stopped meanwhile):
    nothing is wrong, there is just no socket left to watch."""
    callback = getattr(context.get("handle"), "_callback", None)  # asyncio.TimerHandle
    return getattr(callback, "__name__", "") == "_start_serving"


def _sockname(sock: Any) -> str:
    try:
        name = sock.getsockname()
    except (AttributeError, OSError):
        return ""
    if isinstance(name, tuple):
        host = name[0]
        return f"[{host}]:{name[1]}" if ":" in host else f"{host}:{name[1]}"
    return f"unix:{name}"
