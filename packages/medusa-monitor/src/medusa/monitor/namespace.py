"""What a monitor session sees: the live objects of the running process.

Each session gets its own globals (one administrator's variables never appear in
another's), holding the same live objects:

``servers``
    the running servers (:func:`medusa.core.server.running_servers`), a live mapping by
    type name (``servers["http"]``: the first HTTP server) and by name and address
    (``servers["http@127.0.0.1:8080"]``). Each has ``counters``, ``channels`` and its own
    API (an HTTP server's ``handlers``, ``install_handler``, ``remove_handler``).
``counters()``
    every running server's counters as plain dicts, by ``name@address``.
``workers()``
    under ``--workers``: one dict per worker process (pid, index, state, generation,
    requests, connections, active, bytes, restarts; :func:`medusa.core.workers.worker_rows`);
    empty in a single process. ``worker`` is this process's number (None in the master).
``loop``
    the event loop; ``asyncio`` is imported.
``reload(module)``
    :func:`importlib.reload` of a module or a dotted module name.
``monitor``, ``session``
    this monitor server, and this session's channel.
"""

from __future__ import annotations

import asyncio
import builtins
import importlib
import os
import sys
import types
from collections.abc import Iterator, Mapping
from typing import Any

from medusa.core.server import Server, running_servers
from medusa.core.workers import current_worker, worker_rows

__all__ = [
    "RunningServers",
    "banner",
    "build_namespace",
    "counters",
    "reload_module",
    "workers",
]


class RunningServers(Mapping[str, Server]):
    """A read-only, always current mapping of the servers that are listening now.

    Keys: each type's name for the first server of that type (in start order), and
    ``name@address`` for every server (its first listening address).
    """

    def _table(self) -> dict[str, Server]:
        table: dict[str, Server] = {}
        for server in running_servers():
            table.setdefault(server.name, server)
        for server in running_servers():
            where = server.listening[0] if server.listening else str(server.address)
            table[f"{server.name}@{where}"] = server
        return table

    def __getitem__(self, key: str) -> Server:
        return self._table()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())

    def __repr__(self) -> str:
        return repr(self._table())


def counters() -> dict[str, dict[str, float]]:
    """Return every running server's counters, by ``name@address``."""
    out: dict[str, dict[str, float]] = {}
    for key, server in RunningServers().items():
        if "@" in key:
            out[key] = server.counters.as_dict()
    return out


def workers() -> list[dict[str, int | float | str]]:
    """Return one dict per worker process under ``--workers`` (empty otherwise)."""
    return [row.as_dict() for row in worker_rows()]


def reload_module(module: types.ModuleType | str) -> types.ModuleType:
    """Reload a module (given as a module or a dotted name) and return it.

    Objects made from the old module (handler instances installed on a server) keep
    their old classes: install new instances after a reload.

    Raises:
        KeyError: a name of a module that is not imported.
        ImportError, SyntaxError: the module's new source fails to import.
    """
    if isinstance(module, str):
        module = sys.modules[module]
    return importlib.reload(module)


def build_namespace(
    monitor: Server, session: object, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Return the globals of a new session.

    Args:
        monitor: the monitor server.
        session: the session's channel.
        extra: further names (a startup script's objects); they override the defaults.
    """
    namespace: dict[str, Any] = {
        "__name__": "__monitor__",
        "__doc__": None,
        "__builtins__": builtins,
        "asyncio": asyncio,
        "loop": asyncio.get_running_loop(),
        "servers": RunningServers(),
        "counters": counters,
        "workers": workers,
        "worker": current_worker(),
        "reload": reload_module,
        "monitor": monitor,
        "session": session,
    }
    if extra:
        namespace.update(extra)
    return namespace


def banner(monitor: Server) -> str:
    """The text shown after login: the process, the servers and the names in scope."""
    index = current_worker()
    if index is not None:
        role = f" (worker {index})"
    elif worker_rows():
        role = " (the master: its workers are listed by workers())"
    else:
        role = ""
    lines = [
        f"Medusa monitor, Python {sys.version.split()[0]}, process {os.getpid()}{role}.",
        "Servers:",
    ]
    for server in running_servers():
        where = ", ".join(server.listening) or str(server.address)
        lines.append(f"  {server.name:<8} {where}")
    lines += [
        "Names: servers, counters(), workers(), worker, loop, asyncio, reload(module), "
        "monitor, session.",
        "Code runs in the event loop: while it runs, every server waits.",
    ]
    return "\n".join(lines) + "\n"
