"""Listening sockets: binding them with a clear error, adopting sockets bound by another
process (the master of ``--workers``), and closing them without losing a connection.

A :class:`~medusa.core.server.Server` listens through :func:`open_listeners`; with
``--workers`` the master binds each shared address once with ``start_serving=False`` and
every worker adopts the inherited sockets (``sockets=``), so all workers accept from one
kernel queue per address (see :mod:`medusa.core.supervisor`).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl as _ssl
import stat
from collections.abc import Callable, Sequence

from medusa.core.address import Address

__all__ = [
    "ACCEPT_BATCH",
    "ListenError",
    "close_listener",
    "listener_addresses",
    "open_listeners",
    "socket_file_identity",
]

ACCEPT_BATCH = 64
"""Connections the standard (selector) loop accepts per readiness event of a listener."""

_LISTEN_HINTS = {
    errno.EADDRINUSE: "another process listens there: choose another with --{name} ADDR "
    "or the server's listen option",
    errno.EACCES: "ports below 1024 need root or CAP_NET_BIND_SERVICE",
    errno.EADDRNOTAVAIL: "no interface of this machine has that address",
}


class ListenError(OSError):
    """A server cannot listen on its address: the message names the server type, the
    address and the reason, with a hint (``http server cannot listen on 127.0.0.1:8080:
    Address already in use (another process listens there: choose another with --http ADDR
    or the server's listen option)``); :attr:`errno` is the system's error number."""


async def open_listeners(
    name: str,
    address: Address,
    factory: Callable[[], asyncio.Protocol],
    *,
    backlog: int,
    ssl: _ssl.SSLContext | None = None,
    reuse_port: bool = False,
    sockets: Sequence[socket.socket] = (),
    start_serving: bool = True,
) -> list[asyncio.Server]:
    """Listen on ``address`` (or adopt ``sockets``, already bound and listening) on the
    running loop.

    Args:
        name: the server type, for the error message.
        address: where to listen; ignored when ``sockets`` are given.
        factory: makes the protocol (a channel) of each accepted connection.
        backlog: the kernel's queue of connections not yet accepted.
        ssl: a server-side TLS context or None.
        reuse_port: set ``SO_REUSEPORT`` on the new socket.
        sockets: listening sockets inherited from the master process: one
            :class:`asyncio.Server` is made per socket.
        start_serving: False binds and listens without accepting (the master of
            ``--workers``, whose workers accept).

    Returns: the listeners (one, or one per inherited socket).

    Raises:
        ListenError: the address cannot be bound (in use, permission, no such interface).
    """
    loop = asyncio.get_running_loop()
    # The standard loop accepts up to `backlog` connections per readiness event, and when
    # accept fails for want of descriptors it schedules a retry for each attempt of that
    # batch: give it a small batch, then set the kernel's queue to `backlog`.
    selector = isinstance(loop, asyncio.SelectorEventLoop)
    batch = min(backlog, ACCEPT_BATCH) if selector else backlog
    if sockets:
        # Sockets shared with other workers: take one connection at a time and let the
        # others run between two (sched_yield), instead of draining the whole queue when
        # many connections arrive at once (wrk opens its 50 together): otherwise the first
        # worker to wake may take them all.
        factory = _yielding(factory)
        if selector:
            batch = 1
    listeners: list[asyncio.Server] = []
    try:
        if sockets:
            for sock in sockets:
                if sock.family == socket.AF_UNIX:
                    listeners.append(
                        await loop.create_unix_server(factory, sock=sock, backlog=batch, ssl=ssl)
                    )
                else:
                    listeners.append(
                        await loop.create_server(factory, sock=sock, backlog=batch, ssl=ssl)
                    )
        elif address.path is not None:
            listeners.append(
                await loop.create_unix_server(
                    factory, address.path, backlog=batch, ssl=ssl, start_serving=start_serving
                )
            )
        else:
            listeners.append(
                await loop.create_server(
                    factory,
                    address.host,
                    address.port,
                    backlog=batch,
                    ssl=ssl,
                    reuse_address=True,
                    reuse_port=reuse_port or None,
                    start_serving=start_serving,
                )
            )
        if batch != backlog or not start_serving:
            for listener in listeners:
                for listening in listener.sockets:
                    with socket.socket(fileno=os.dup(listening.fileno())) as sock:
                        sock.listen(backlog)
    except OSError as exc:
        for listener in listeners:
            listener.close()
        reason = os.strerror(exc.errno) if exc.errno else str(exc)
        hint = _LISTEN_HINTS.get(exc.errno or 0)
        message = f"{name} server cannot listen on {address}: {reason}"
        if hint:
            message = f"{message} ({hint.format(name=name)})"
        raise ListenError(exc.errno or 0, message) from exc
    return listeners


def _yielding(factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
    """``factory``, giving the CPU to other runnable processes before each connection."""

    def make() -> asyncio.Protocol:
        os.sched_yield()
        return factory()

    return make


def listener_addresses(listeners: Sequence[asyncio.Server]) -> list[str]:
    """The bound addresses of ``listeners``: ``127.0.0.1:8080``, ``[::1]:8080``,
    ``unix:/path``."""
    out: list[str] = []
    for listener in listeners:
        for sock in listener.sockets:
            name = sock.getsockname()
            if isinstance(name, tuple):
                out.append(str(Address(name[0], name[1])))
            else:
                out.append(f"unix:{name if isinstance(name, str) else name.decode()}")
    return out


def close_listener(listener: asyncio.Server) -> None:
    """Close a listener without losing a connection accepted just before.

    On the standard loop (CPython 3.11), a connection accepted in the same loop iteration
    as ``asyncio.Server.close()`` gets its transport built one iteration later, when the
    closed server refuses to attach it (an assertion in ``Server._attach``): the accepted
    socket is then never closed. So stop accepting first (``remove_reader`` on the
    listening sockets) and close on the next iteration, after the transports of the
    connections already accepted exist; those channels see the server stopping and are
    refused. uvloop accepts differently and is closed at once.

    Closing an inherited socket closes this process's descriptor only: the master and the
    other workers go on accepting from it.
    """
    loop = listener.get_loop()
    if isinstance(loop, asyncio.SelectorEventLoop) and loop.is_running():
        for sock in listener.sockets:
            loop.remove_reader(sock.fileno())
        loop.call_soon(listener.close)
    else:
        listener.close()


def socket_file_identity(path: str) -> tuple[int, int, int] | None:
    """What tells the Unix socket file at ``path`` from one made there later: its device,
    inode number and modification time (nanoseconds), read without following a link; None
    when ``path`` is not a socket or cannot be examined.

    The inode number alone is not enough: a file system may give a new file the number of
    one just removed (ext4 does at once). During a reload the worker that replaces another
    removes the old socket file and binds the path; when the old worker's listener closed
    just before, the new file can take the old inode, and the old worker, removing "its"
    file as it stops, would remove the new one's. Binding sets the modification time, and
    nothing a socket does later changes it (a ``chmod`` changes only the status time).
    """
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if not stat.S_ISSOCK(st.st_mode):
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns)
