"""The master process of ``--workers N``: binds, forks, supervises, reloads.

The master does no request work. It reads the configuration, binds every ``"shared"``
address once (the workers inherit the sockets and accept from the same kernel queue: a
reload or a recycled worker never drops a queued connection, which one socket per worker
with ``SO_REUSEPORT`` would), runs its own ``"each"`` servers (a monitor prompt into the
master), forks the workers (:mod:`medusa.core.workerprocess`) and keeps N of them running:

* a worker that dies (even ``kill -9``) is replaced at once and the event logged; one that
  dies again and again before it is ready waits longer each time (0.5 s doubling, at most
  :data:`BACKOFF_MAX`);
* SIGTERM or SIGINT: every worker stops gracefully (the grace period; a second signal
  hurries them), then the master exits 0;
* SIGHUP: the configuration is read again; if it is good, each worker is replaced in turn,
  the new one accepting before the old one is told to stop; a bad configuration is refused
  with its message and the old workers keep serving;
* SIGUSR1: the master and every worker reopen their log files (logrotate);
* a worker past ``max_requests`` asks to be replaced, and is, the same way as in a reload.

The master's event loop is always the standard library's (it forks from inside it, and
does little).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medusa.core.listener import ListenError
from medusa.core.log import (
    Logger,
    close_loggers,
    detach_named_loggers,
    error_logger,
    register_logger,
    reopen_log_files,
)
from medusa.core.logqueue import close_log_queues
from medusa.core.loop import finish_loop, print_listening
from medusa.core.server import Server
from medusa.core.workerprocess import HURRY, READY, RETIRE, worker_main
from medusa.core.workers import attach_table, shared_keys
from medusa.core.workertable import WorkerTable

if TYPE_CHECKING:
    from medusa.core.config import Config

__all__ = ["BACKOFF_MAX", "READY_TIMEOUT", "Supervisor"]

READY_TIMEOUT = 30.0
"""Seconds a new worker gets to load its configuration and listen during a reload."""

BACKOFF_MAX = 30.0
"""The longest wait, in seconds, before restarting a worker that keeps dying at start."""

_HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGCHLD)


@dataclass(eq=False)
class _Worker:
    pid: int
    index: int
    slot: int
    generation: int
    control: socket.socket
    ready: asyncio.Future[bool]
    stopping: bool = False
    retiring: bool = False


class Supervisor:
    """The master process.

    Args:
        load_generation: called at start and on each SIGHUP: reads the configuration's
            sources and returns a loader that builds a :class:`~medusa.core.config.Config`
            (new servers) from what it read. The master calls the loader once to check it
            and learn the addresses; each worker forked for that configuration calls it
            again to build its own servers.
    """

    def __init__(self, load_generation: Callable[[], Callable[[], Config]]) -> None:
        self._load_generation = load_generation
        self._loader: Callable[[], Config] | None = None
        self._config: Config | None = None
        self._generation = 0
        self._table: WorkerTable | None = None
        self._bound: dict[str, Server] = {}  # shared_keys() key -> the server whose sockets
        self._own: list[Server] = []  # the master's "each" servers
        self._workers: dict[int, _Worker] = {}  # by pid
        self._failures: dict[int, int] = {}  # by index: deaths before ready, in a row
        self._restarts: dict[int, int] = {}  # by index
        self._stopping = False
        self._reloading = False
        self._reload_again = False
        self._done: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def run(self) -> int:
        """Serve until stopped; returns the exit status (0 after a clean stop).

        Raises:
            ConfigError: the configuration is bad (at start).
            ListenError: an address cannot be bound (at start).
        """
        loop = asyncio.new_event_loop()  # always the standard loop: it forks from inside
        try:
            return loop.run_until_complete(self._main())
        finally:
            finish_loop(loop)
            loop.close()

    # -- start and stop ----------------------------------------------------------------------

    async def _main(self) -> int:
        loop = asyncio.get_running_loop()
        self._done = asyncio.Event()
        loader = self._load_generation()
        config = loader()
        self._table = WorkerTable(max(16, 4 * config.workers))
        attach_table(self._table)
        try:
            await self._bind(config)
            await self._start_own(config)
        except BaseException:
            self._close_sockets(set())
            raise
        self._loader, self._config, self._generation = loader, config, 1
        for signum in _HANDLED:
            loop.add_signal_handler(signum, self._on_signal, signum)
        print_listening([s for s in config.servers if s.workers_mode == "shared"])
        print_listening(self._own, " (master)")
        error_logger.info("master (pid %d): starting %d workers", os.getpid(), config.workers)
        for index in range(1, config.workers + 1):
            self._spawn(index)
        await self._done.wait()
        for signum in _HANDLED:
            loop.remove_signal_handler(signum)
        return 0

    async def _bind(self, config: Config) -> None:
        """Bind the shared addresses not bound yet (their servers keep the sockets)."""
        for key, server in shared_keys(config.servers):
            if key not in self._bound:
                await server.bind()
                self._bound[key] = server

    async def _start_own(self, config: Config) -> None:
        """Start the master's own ``"each"`` servers of ``config``."""
        own = [s for s in config.servers if s.workers_mode == "each"]
        for server in own:
            await server.start()
            self._own.append(server)

    def _close_sockets(self, keep: set[str]) -> None:
        """Close the master's sockets of every address not in ``keep``."""
        for key in [k for k in self._bound if k not in keep]:
            self._bound.pop(key).close()

    def _keep_loggers(self, loggers: dict[str, Logger]) -> None:
        """A reload refused: close the loggers its reading made, register ``loggers``
        (those of the configuration in use) again."""
        close_loggers(detach_named_loggers().values(), timeout=1.0)
        for name, logger in loggers.items():
            register_logger(name, logger)

    def _on_signal(self, signum: signal.Signals) -> None:
        if signum == signal.SIGCHLD:
            self._reap()
        elif signum in (signal.SIGTERM, signal.SIGINT):
            self._stop(signum)
        elif signum == signal.SIGHUP:
            if self._stopping:
                return
            if self._reloading:
                self._reload_again = True
            else:
                self._task(self._reload())
        elif signum == signal.SIGUSR1:
            error_logger.info("SIGUSR1: reopening the log files (master and workers)")
            reopen_log_files()
            for worker in self._workers.values():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGUSR1)

    def _stop(self, signum: signal.Signals) -> None:
        if self._stopping:
            error_logger.warning("second signal: the workers close every connection now")
            for worker in self._workers.values():
                with contextlib.suppress(OSError):
                    worker.control.send(HURRY)
            return
        self._stopping = True
        error_logger.info("%s: stopping %d workers gracefully", signum.name, len(self._workers))
        for worker in list(self._workers.values()):
            self._stop_worker(worker)
        # New connections are refused from now on (the workers close their copies too; a
        # Unix socket's file is removed).
        self._close_sockets(set())
        self._task(self._finish())

    async def _finish(self) -> None:
        """Wait for the workers to exit (killing any still there after the grace period
        and 5 s more), stop the master's own servers, close the sockets."""
        grace = self._config.grace if self._config is not None else 10.0
        own = asyncio.gather(*(s.shutdown(grace) for s in self._own), return_exceptions=True)
        deadline = time.monotonic() + grace + 5.0
        while self._workers and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            self._reap()
        for worker in list(self._workers.values()):
            error_logger.error("worker %d (pid %d) did not stop: killed", worker.index, worker.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
        while self._workers:
            await asyncio.sleep(0.05)
            self._reap()
        await own
        assert self._done is not None
        self._done.set()

    def _task(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            error_logger.error(
                "master: %s",
                "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)),
            )

    # -- workers -----------------------------------------------------------------------------

    def _spawn(self, index: int, loader: Callable[[], Config] | None = None) -> _Worker | None:
        """Fork worker ``index`` for ``loader`` (default: the current configuration)."""
        loader = loader or self._loader
        assert loader is not None
        assert self._table is not None
        generation = self._generation if loader is self._loader else self._generation + 1
        slot = self._table.allocate()
        parent, child = socket.socketpair()
        sockets = {key: server.listening_fds for key, server in self._bound.items()}
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HANDLED)
        try:
            pid = os.fork()
        except OSError as exc:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            parent.close()
            child.close()
            error_logger.error("cannot start worker %d: %s", index, exc)
            return None
        if pid == 0:  # the worker
            status = 1
            try:
                status = worker_main(
                    loader,
                    index=index,
                    slot=slot,
                    sockets=sockets,
                    control_fd=child.fileno(),
                    handled=_HANDLED,
                    mask=mask,
                )
            except BaseException:
                traceback.print_exc()
            finally:
                # os._exit skips atexit: the worker's console writes its queued lines now.
                close_log_queues()
                os._exit(status)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        child.close()
        parent.setblocking(False)
        loop = asyncio.get_running_loop()
        worker = _Worker(pid, index, slot, generation, parent, loop.create_future())
        self._workers[pid] = worker
        self._table.start(
            slot,
            pid=pid,
            index=index,
            generation=generation,
            restarts=self._restarts.get(index, 0),
            started=time.time(),
        )
        loop.add_reader(parent.fileno(), self._on_message, worker)
        return worker

    def _on_message(self, worker: _Worker) -> None:
        try:
            data = worker.control.recv(64)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the worker is exiting: SIGCHLD follows
            asyncio.get_running_loop().remove_reader(worker.control.fileno())
            return
        if READY in data and not worker.ready.done():
            worker.ready.set_result(True)
            self._failures[worker.index] = 0
            if self._table is not None and not worker.stopping:
                self._table.set_state(worker.slot, "ready")
            error_logger.info("worker %d (pid %d) ready", worker.index, worker.pid)
        if RETIRE in data and not worker.retiring and not worker.stopping and not self._stopping:
            worker.retiring = True
            error_logger.info(
                "worker %d (pid %d) reached max_requests: replacing it", worker.index, worker.pid
            )
            self._task(self._replace(worker))

    async def _replace(self, old: _Worker) -> None:
        new = self._spawn(old.index)
        if new is not None and await self._wait_ready(new):
            self._stop_worker(old)
        else:
            old.retiring = False  # it goes on; it asks again later

    async def _wait_ready(self, worker: _Worker) -> bool:
        try:
            return await asyncio.wait_for(asyncio.shield(worker.ready), READY_TIMEOUT)
        except TimeoutError:
            error_logger.error(
                "worker %d (pid %d) not ready after %.0f s: stopped",
                worker.index,
                worker.pid,
                READY_TIMEOUT,
            )
            self._stop_worker(worker)
            return False

    def _stop_worker(self, worker: _Worker) -> None:
        """Ask a worker to stop gracefully (SIGTERM)."""
        worker.stopping = True
        if self._table is not None:
            self._table.set_state(worker.slot, "stopping")
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGTERM)

    def _reap(self) -> None:
        """Collect every worker that exited; replace those that were not told to stop."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self._workers.pop(pid, None)
            if worker is not None:
                self._exited(worker, status)

    def _exited(self, worker: _Worker, status: int) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(worker.control.fileno())
        worker.control.close()
        if self._table is not None:
            self._table.set_state(worker.slot, "free")
        was_ready = worker.ready.done() and worker.ready.result()
        if not worker.ready.done():
            worker.ready.set_result(False)
        how = _exit_text(status)
        if worker.stopping:
            error_logger.info("worker %d (pid %d) stopped (%s)", worker.index, worker.pid, how)
            return
        if self._stopping or worker.generation != self._generation:
            error_logger.warning("worker %d (pid %d) %s", worker.index, worker.pid, how)
            return
        if self._config is None or worker.index > self._config.workers:
            return
        self._restarts[worker.index] = self._restarts.get(worker.index, 0) + 1
        delay = 0.0
        if not was_ready:
            failures = self._failures.get(worker.index, 0) + 1
            self._failures[worker.index] = failures
            delay = min(BACKOFF_MAX, 0.5 * 2 ** (failures - 1)) if failures > 1 else 0.0
        error_logger.warning(
            "worker %d (pid %d) died (%s): starting a new one%s",
            worker.index,
            worker.pid,
            how,
            f" in {delay:g} s ({self._failures[worker.index]} failures at start in a row)"
            if delay
            else "",
        )
        loop.call_later(delay, self._respawn, worker.index)

    def _respawn(self, index: int) -> None:
        if self._stopping or self._config is None or index > self._config.workers:
            return
        for worker in self._workers.values():
            if (
                worker.index == index
                and not worker.stopping
                and worker.generation == self._generation
            ):
                return  # a reload replaced it meanwhile
        self._spawn(index)

    # -- reload --------------------------------------------------------------------------------

    async def _reload(self) -> None:
        self._reloading = True
        try:
            while True:
                await self._reload_once()
                if not self._reload_again or self._stopping:
                    return
                self._reload_again = False
        finally:
            self._reloading = False

    async def _reload_once(self) -> None:
        error_logger.info("SIGHUP: reading the configuration again")
        # The loggers of a reading stay in use until the next reading is: then they close.
        previous_loggers = detach_named_loggers()
        try:
            loader = self._load_generation()
            config = loader()
            assert self._table is not None
            if 2 * config.workers > self._table.size:
                # A reload runs old and new workers side by side: two rows per worker.
                raise ValueError(
                    f"workers = {config.workers} needs a restart (this master has rows "
                    f"for {self._table.size // 2})"
                )
            await self._bind(config)
        except (Exception, SystemExit) as exc:
            self._keep_loggers(previous_loggers)
            error_logger.error(
                "reload refused: %s; the workers go on with the previous configuration", exc
            )
            return
        old = [w for w in self._workers.values() if not w.stopping]
        committed = False
        for index in range(1, config.workers + 1):
            new = self._spawn(index, loader)
            if new is None or not await self._wait_ready(new):
                if not committed:
                    self._keep_loggers(previous_loggers)
                error_logger.error(
                    "reload failed: worker %d of the new configuration did not start%s",
                    index,
                    "; the workers go on with the previous configuration"
                    if not committed
                    else " (the others run the new one)",
                )
                return
            if not committed:
                committed = True
                self._loader, self._config = loader, config
                self._generation += 1
                close_loggers(previous_loggers.values(), timeout=1.0)
            for worker in old:
                if worker.index == index:
                    self._stop_worker(worker)
            if self._stopping:
                return
        for worker in old:
            if worker.index > config.workers:
                self._stop_worker(worker)
        self._close_sockets({key for key, _ in shared_keys(config.servers)})
        previous, self._own = self._own, []
        for server in previous:
            self._task(server.shutdown(config.grace))
        try:
            await self._start_own(config)
        except ListenError as exc:
            error_logger.error("%s; the master serves without it", exc.strerror)
        error_logger.info(
            "reload done: configuration %d served by %d workers", self._generation, config.workers
        )


def _exit_text(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"
