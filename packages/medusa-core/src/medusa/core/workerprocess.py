"""A worker process of ``--workers N``: what runs in the child after the master forks.

The worker forgets what it inherited from the master (signal handlers, the master's event
loop, its sockets other than the listening ones, its loggers and running servers), builds
its own servers by calling the master's loader (the configuration as the master read it),
adopts the listening sockets of ``"shared"`` servers, starts ``"one"`` servers (worker 1)
and ``"each"`` servers (at :func:`~medusa.core.workers.worker_address`), tells the master it
is ready, and serves until SIGTERM (graceful) or until the master goes away.

It writes to the master on its control socket, one byte a message: ``R`` (ready: every
shared listener accepts) and ``Q`` (``max_requests`` reached: please replace me); the master
writes ``H`` (close every connection now: a second stop signal). SIGTERM stops a worker
gracefully however many times it comes (systemd's default stop sends it to every process of
the service, and the master sends it too); SIGINT (a terminal's Ctrl-C reaches the whole
process group) and SIGHUP are the master's and ignored; SIGUSR1 reopens the log files.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import socket
import stat
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from medusa.core.log import (
    close_loggers,
    error_logger,
    forget_named_loggers,
    given_loggers,
    reopen_log_files,
)
from medusa.core.loop import finish_loop, new_event_loop, print_listening, serve
from medusa.core.server import Server, forget_running_servers
from medusa.core.workers import become_worker, publish_counters, shared_keys, worker_address

if TYPE_CHECKING:
    from medusa.core.config import Config

__all__ = ["HURRY", "PUBLISH_INTERVAL", "READY", "RETIRE", "place_servers", "worker_main"]

PUBLISH_INTERVAL = 1.0
"""Seconds between two writes of a worker's counters to the worker table (and two checks
of ``max_requests``)."""

READY = b"R"
RETIRE = b"Q"
HURRY = b"H"


def place_servers(
    servers: Sequence[Server], index: int, sockets: Mapping[str, Sequence[int]]
) -> tuple[list[Server], list[Server]]:
    """Split the servers worker ``index`` runs by :attr:`~Server.workers_mode`: the
    ``"shared"`` ones, given the master's sockets of their address (``sockets`` maps
    each key of :func:`~medusa.core.workers.shared_keys` to descriptors), and the late
    ones (``"one"`` in worker 1, ``"each"`` at the worker's own address), bound by the
    worker itself with ``SO_REUSEPORT``.

    Returns: (shared servers, late servers).

    Raises:
        KeyError: a shared server whose address the master did not bind.
    """
    shared: list[Server] = []
    late: list[Server] = []
    for key, server in shared_keys(servers):
        server.inherited_sockets = [socket.socket(fileno=fd) for fd in sockets[key]]
        shared.append(server)
    for server in servers:
        mode = server.workers_mode
        if mode == "shared":
            continue
        if mode == "one":
            if index == 1:
                server.reuse_port = True
                late.append(server)
        else:
            server.address = worker_address(server.address, index)
            server.reuse_port = True
            late.append(server)
    return shared, late


def worker_main(
    loader: Callable[[], Config],
    *,
    index: int,
    slot: int,
    sockets: Mapping[str, Sequence[int]],
    control_fd: int,
    handled: Collection[signal.Signals],
    mask: Collection[int],
) -> int:
    """Run worker ``index`` in a process just forked; returns its exit status (0 after a
    graceful stop, 3 when the configuration cannot be loaded or a server cannot listen).

    Args:
        loader: builds the configuration (new servers) as the master read it.
        index: the worker's number, 1 to N.
        slot: its row in the worker table.
        sockets: the master's listening sockets by :func:`~medusa.core.workers.shared_keys`.
        control_fd: its end of the control socket pair.
        handled: the signals the master handles (reset here to their defaults).
        mask: the signal mask to restore (the master blocked ``handled`` around the fork).
    """
    signal.set_wakeup_fd(-1)
    for signum in handled:
        signal.signal(signum, signal.SIG_DFL)
    # The master's signals: SIGHUP (reload), and SIGINT, which a terminal's Ctrl-C sends to
    # the whole process group: the master stops the workers itself.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGUSR1 (logrotate) may come while the worker is starting: its log files are opened
    # after it anyway; the event loop's handler takes over once it runs.
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    asyncio.set_event_loop(None)
    asyncio._set_running_loop(None)  # the fork happened inside the master's running loop
    keep = {control_fd, *(fd for fds in sockets.values() for fd in fds)}
    _blank_foreign_sockets(keep)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    forget_named_loggers()
    forget_running_servers()
    become_worker(index, slot)
    pid = os.getpid()
    try:
        config = loader()
        shared, late = place_servers(config.servers, index, sockets)
        loop = new_event_loop(config.backend)
    except Exception as exc:
        error_logger.error("worker %d (pid %d): cannot load the configuration: %s", index, pid, exc)
        return 3
    control = socket.socket(fileno=control_fd)
    control.setblocking(False)
    limit = 0
    if config.max_requests:
        limit = config.max_requests + random.randint(0, config.max_requests_jitter)
    stop = asyncio.Event()
    hurry = asyncio.Event()
    # SIGTERM, from the master or from anyone (systemd's control-group stop sends it to
    # every process), is a graceful stop however often it comes; only the master hurries a
    # worker, by a message.
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGUSR1, reopen_log_files)

    def on_start(servers: Sequence[Server]) -> None:
        with contextlib.suppress(OSError):
            control.send(READY)
        loop.add_reader(control_fd, _on_master, control, stop, hurry)
        _publish(loop, control, limit, False)

    def on_late_start(server: Server) -> None:
        note = f" (worker {index} only)" if server.workers_mode == "one" else f" (worker {index})"
        print_listening([server], note)

    try:
        loop.run_until_complete(
            serve(
                shared,
                grace=config.grace,
                stop=stop,
                on_start=on_start,
                late=late,
                on_late_start=on_late_start,
                handle_signals=False,
                hurry=hurry,
            )
        )
    except OSError as exc:
        error_logger.error("worker %d (pid %d): %s", index, pid, exc)
        return 3
    finally:
        finish_loop(loop)
        loop.close()
        # The worker ends with os._exit (no atexit): loggers a script gave its servers
        # write their queued lines now (named ones were closed by serve()).
        close_loggers(given_loggers())
    return 0


def _on_master(control: socket.socket, stop: asyncio.Event, hurry: asyncio.Event) -> None:
    """The master wrote (``H``: close every connection now, the stop's second signal) or
    went away (the end of file: it was killed): stop."""
    try:
        data = control.recv(64)
    except (BlockingIOError, InterruptedError):
        return
    except OSError:
        data = b""
    if not data:
        asyncio.get_running_loop().remove_reader(control.fileno())
        error_logger.warning("worker (pid %d): the master is gone; stopping", os.getpid())
        stop.set()
    elif HURRY in data:
        stop.set()
        hurry.set()


def _publish(
    loop: asyncio.AbstractEventLoop, control: socket.socket, limit: int, asked: bool
) -> None:
    """Write the counters to the worker table; past ``limit`` requests ask once to be
    replaced."""
    requests = publish_counters()
    if limit and requests >= limit and not asked:
        asked = True
        with contextlib.suppress(OSError):
            control.send(RETIRE)
    loop.call_later(PUBLISH_INTERVAL, _publish, loop, control, limit, asked)


def _blank_foreign_sockets(keep: Collection[int]) -> None:
    """Point every inherited socket descriptor not in ``keep`` (the master's event loop,
    its monitor connections, other workers' control sockets) at ``/dev/null``: this process
    must not hold them open, and the descriptor numbers stay taken so that a socket object
    inherited from the master and closed later cannot close a descriptor reused here."""
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for name in os.listdir("/proc/self/fd"):
            fd = int(name)
            if fd in keep or fd == null or fd < 3:
                continue
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(os.fstat(fd).st_mode):
                    os.dup2(null, fd)
    except OSError:
        pass  # no /proc: the descriptors stay (they are closed when the worker exits)
    finally:
        os.close(null)
