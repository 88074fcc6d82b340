"""Several worker processes on one machine (``medusa serve --workers N``): the settings and
what each process knows of the others.

The master (:mod:`medusa.core.supervisor`) binds the listening sockets, forks the workers
(:mod:`medusa.core.workerprocess`) and keeps them running; this module holds the
process-local state: which worker this process is (:func:`current_worker`), the table of
every worker's counters shared with the others (:func:`worker_rows`), and the typed API
that scripts use (:func:`run_workers`).

How each server type runs under workers is its :attr:`~medusa.core.server.Server.workers_mode`:

* ``"shared"`` (HTTP, FTP): the master binds the address once; every worker accepts from
  the same socket (one kernel queue), so a reload loses no queued connection;
* ``"one"`` (chat, whose state lives in one process): only worker 1 runs it;
* ``"each"`` (the monitor): the master runs it at the configured address and each worker at
  its own (:func:`worker_address`), so a prompt reaches a chosen process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from medusa.core.address import Address
from medusa.core.workertable import WorkerRow, WorkerTable

if TYPE_CHECKING:
    from medusa.core.config import Config
    from medusa.core.server import Server

__all__ = [
    "WORKERS_MODES",
    "attach_table",
    "become_worker",
    "check_workers_option",
    "current_worker",
    "publish_counters",
    "resolve_workers",
    "run_workers",
    "shared_keys",
    "usable_cpus",
    "worker_address",
    "worker_rows",
]

WORKERS_MODES = ("shared", "one", "each")
"""The values of :attr:`medusa.core.server.Server.workers_mode` (see the module's text)."""

_table: WorkerTable | None = None
_slot = -1
_index: int | None = None


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask): ``workers = "auto"``."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def resolve_workers(value: int | str) -> int:
    """The number of workers for a ``workers`` setting: an integer of 1 or more, or
    ``"auto"`` (:func:`usable_cpus`).

    Raises:
        ValueError: for anything else.
    """
    if value == "auto":
        return usable_cpus()
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f'workers must be a number of 1 or more or "auto", not {value!r}')
    return value


def check_workers_option(value: Any) -> str | None:
    """An :class:`~medusa.core.options.Option` check for ``workers``: the reason a value is
    refused, else None."""
    try:
        resolve_workers(value)
    except ValueError as exc:
        return str(exc)
    return None


def worker_address(address: Address, index: int) -> Address:
    """The address of an ``"each"`` server in worker ``index``: a Unix socket path gets
    ``.N`` appended (``/run/medusa/monitor.sock.2``); a TCP port gets ``index`` added
    (8023 becomes 8025 in worker 2); port 0 stays 0 (any free port)."""
    if address.path is not None:
        return Address(None, 0, f"{address.path}.{index}")
    return Address(address.host, address.port + index if address.port else 0)


def shared_keys(servers: Sequence[Server]) -> list[tuple[str, Server]]:
    """The ``"shared"`` servers of a configuration with the key of the socket the master
    binds for each: ``str(address)``, and for port 0 (any free port) also its rank among
    the servers on that same address (``127.0.0.1:0#2``), so that two of them get two
    sockets. A reload that keeps an address keeps its socket."""
    out: list[tuple[str, Server]] = []
    seen: dict[str, int] = {}
    for server in servers:
        if server.workers_mode != "shared":
            continue
        key = str(server.address)
        if server.address.path is None and server.address.port == 0:
            seen[key] = seen.get(key, 0) + 1
            key = f"{key}#{seen[key]}"
        out.append((key, server))
    return out


def attach_table(table: WorkerTable) -> None:
    """Make ``table`` the worker table of this process (the master, before forking)."""
    global _table
    _table = table


def become_worker(index: int, slot: int) -> None:
    """Record that this process is worker ``index`` writing row ``slot`` (a worker just
    forked)."""
    global _index, _slot
    _index, _slot = index, slot


def current_worker() -> int | None:
    """This process's worker number (1 to N), or None in the master and in a single
    process (no ``--workers``)."""
    return _index


def publish_counters(now: float | None = None) -> int:
    """Write this worker's counters (summed over its running servers) into its row of the
    worker table; returns its requests so far (0 outside a worker)."""
    from medusa.core.server import running_servers

    if _table is None or _index is None:
        return 0
    requests = connections = active = bytes_in = bytes_out = 0
    for server in running_servers():
        c = server.counters
        requests += c.requests
        connections += c.connections
        active += c.active
        bytes_in += c.bytes_in
        bytes_out += c.bytes_out
    _table.publish(
        _slot,
        requests=requests,
        connections=connections,
        active=active,
        bytes_in=bytes_in,
        bytes_out=bytes_out,
        now=time.time() if now is None else now,
    )
    return requests


def worker_rows() -> list[WorkerRow]:
    """Every worker's row (this worker's refreshed first; the others' are at most about a
    second old), by worker number; empty in a single process."""
    if _table is None:
        return []
    publish_counters()
    return _table.rows()


def run_workers(
    load: Callable[[], Sequence[Server]],
    *,
    workers: int | str = "auto",
    backend: str = "auto",
    grace: float = 10.0,
    max_requests: int = 0,
    max_requests_jitter: int = 0,
) -> int:
    """Serve the servers ``load`` builds in ``workers`` processes under a master process
    until SIGINT or SIGTERM (see :mod:`medusa.core.supervisor` for the signals); returns
    the exit status (0 after a clean stop).

    ``load`` is called in the master (to bind the addresses, and again on SIGHUP: a reload)
    and in every worker, which builds its own servers: it must build new, unstarted servers
    each time.

    Args:
        load: builds the servers.
        workers: the number of worker processes, or ``"auto"`` (one per usable CPU).
        backend: the workers' event loop (``"auto"``, ``"uvloop"``, ``"asyncio"``).
        grace: seconds that responses in flight get at a stop.
        max_requests: recycle a worker (gracefully) after about this many requests (0:
            never).
        max_requests_jitter: add a random 0 to this many to each worker's
            ``max_requests``, so that workers do not restart together.

    Raises:
        ValueError: for a bad ``workers`` value.
        ListenError: when an address cannot be bound.
    """
    from medusa.core.config import Config
    from medusa.core.supervisor import Supervisor

    count = resolve_workers(workers)

    def snapshot() -> Callable[[], Config]:
        def build() -> Config:
            return Config(
                servers=list(load()),
                backend=backend,
                grace=grace,
                workers=count,
                max_requests=max_requests,
                max_requests_jitter=max_requests_jitter,
            )

        return build

    return Supervisor(snapshot).run()
