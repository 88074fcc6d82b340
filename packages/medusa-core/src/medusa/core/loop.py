"""The event loop: every configured server in one process, on asyncio or uvloop.

:func:`run` is the original Medusa's ``asyncore.loop()``: it starts the servers, serves until
SIGINT or SIGTERM, then stops accepting, lets responses in flight finish within a grace period
and closes what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Literal

from medusa.core.descriptors import accept_error_handler, fit_connections
from medusa.core.log import close_named_loggers, error_logger, reopen_log_files
from medusa.core.resolver import close_shared_resolver
from medusa.core.server import ListenError, Server

__all__ = [
    "LATE_WAIT",
    "Backend",
    "ServersCollected",
    "check_backend",
    "collect_servers",
    "finish_loop",
    "loop_name",
    "new_event_loop",
    "print_listening",
    "run",
    "serve",
]

Backend = Literal["auto", "uvloop", "asyncio"]


def _uvloop(backend: Backend | str) -> Any:
    """The uvloop module when ``backend`` wants it and it is installed, else None.

    Raises:
        ImportError: for ``"uvloop"`` when uvloop is not installed.
        ValueError: for an unknown backend name.
    """
    if backend not in ("auto", "uvloop", "asyncio"):
        raise ValueError(f"unknown loop backend {backend!r} (auto, uvloop or asyncio)")
    if backend == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if backend == "uvloop":
            raise ImportError(
                "uvloop is not installed: pip install 'medusa-core[uvloop]'"
            ) from None
        return None
    return uvloop


def check_backend(backend: Backend | str) -> None:
    """Check that :func:`new_event_loop` can make a loop of ``backend`` (before any server
    starts, for a clear usage error).

    Raises:
        ImportError: for ``"uvloop"`` when uvloop is not installed
            (``pip install 'medusa-core[uvloop]'``).
        ValueError: for an unknown backend name.
    """
    _uvloop(backend)


def new_event_loop(backend: Backend | str = "auto") -> asyncio.AbstractEventLoop:
    """Return a new event loop.

    Args:
        backend: ``"uvloop"`` (required), ``"asyncio"`` (the standard loop) or ``"auto"``
            (uvloop when installed, else asyncio).

    Raises:
        ImportError: for ``"uvloop"`` when uvloop is not installed
            (``pip install 'medusa-core[uvloop]'``).
        ValueError: for an unknown backend name.
    """
    uvloop = _uvloop(backend)
    if uvloop is not None:
        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    return asyncio.new_event_loop()


LATE_WAIT = 30.0
"""Seconds that :func:`serve` retries a late server's address while it is in use (a worker
replacing another during a reload, whose address the old one still holds)."""


def print_listening(servers: Sequence[Server], note: str = "") -> None:
    """Print one line per listening address (``medusa: http listening on
    http://127.0.0.1:8080/``) on standard output: the default ``on_start`` of :func:`run`.
    An address that already names its scheme (``http://127.0.0.1:8081/``, as a server with
    listeners of several protocols gives them) is printed as it is; ``note`` is added at the
    end of each line (``(worker 1 only)``)."""
    for server in servers:
        for address in server.listening:
            if address.startswith("unix:") or "://" in address:
                where = address
            else:
                where = f"{server.url_scheme}://{address}/"
            # One write per line: several workers print at once, and print() writes the
            # newline separately when stdout is unbuffered (PYTHONUNBUFFERED).
            sys.stdout.write(f"medusa: {server.name} listening on {where}{note}\n")
            sys.stdout.flush()


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """Return ``"uvloop"`` or ``"asyncio"`` for a running loop (for start-up messages)."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


async def serve(
    servers: Sequence[Server],
    *,
    grace: float = 10.0,
    stop: asyncio.Event | None = None,
    on_start: Callable[[Sequence[Server]], object] | None = None,
    handle_signals: bool = True,
    late: Sequence[Server] = (),
    late_wait: float = LATE_WAIT,
    on_late_start: Callable[[Server], object] | None = None,
    hurry: asyncio.Event | None = None,
) -> None:
    """Start ``servers``, serve until ``stop`` is set (or SIGINT/SIGTERM), then shut down.
    SIGUSR1 reopens the log files (:func:`~medusa.core.log.reopen_log_files`); SIGHUP is
    logged and ignored (a reload needs the master of ``--workers``).

    Args:
        servers: the servers to run together on the current loop.
        grace: seconds that responses in flight get to finish after the stop.
        stop: an event that ends serving when set; one is made when ``None``.
        on_start: called once every server listens (for example to print addresses).
        handle_signals: install SIGINT and SIGTERM handlers that set ``stop``, and SIGUSR1.
        late: servers started after ``on_start``, each retried while its address is in use
            for up to ``late_wait`` seconds (a worker replacing another during a reload
            waits for the old one to let go of a chat or monitor address); one that cannot
            listen then is logged and left out.
        on_late_start: called with each late server once it listens.
        hurry: an event that, set during the grace period, closes every connection at
            once (as a second SIGINT/SIGTERM does); one is made when ``None``.

    Raises:
        OSError: when a server cannot listen; servers already started are closed first.
    """
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    fit_connections(servers)  # max_connections within the descriptor limit (logged)
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(accept_error_handler(previous_handler))
    started: list[Server] = []
    try:
        for server in servers:
            await server.start()
            started.append(server)
    except BaseException:
        for server in started:
            server.close()
        loop.set_exception_handler(previous_handler)
        raise
    installed: list[signal.Signals] = []
    if handle_signals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, stop.set)
                installed.append(signum)
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGUSR1, reopen_log_files)
            if signal.getsignal(signal.SIGHUP) in (signal.SIG_DFL, signal.SIG_IGN):
                loop.add_signal_handler(signal.SIGHUP, _no_reload)
    started_late: list[Server] = []
    late_task: asyncio.Task[None] | None = None
    try:
        if on_start is not None:
            on_start(servers)
        if late:
            late_task = asyncio.ensure_future(
                _start_late(late, started_late, late_wait, on_late_start)
            )
        await stop.wait()
    finally:
        if late_task is not None:
            late_task.cancel()
            with contextlib.suppress(BaseException):
                await late_task
        servers = [*servers, *started_late]
        # A second SIGINT/SIGTERM during the grace period closes every connection at once
        # (the first one let responses in flight finish).
        hurry = hurry or asyncio.Event()
        for signum in installed:
            loop.add_signal_handler(signum, hurry.set)
        for server in servers:
            server.close()
        shutdown: asyncio.Future[list[BaseException | None]] = asyncio.ensure_future(
            asyncio.gather(*(server.shutdown(grace) for server in servers), return_exceptions=True)
        )
        hurried: asyncio.Future[object] = asyncio.ensure_future(hurry.wait())
        waiting: list[asyncio.Future[Any]] = [shutdown, hurried]
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not shutdown.done():
            error_logger.warning("second signal: closing every connection now")
            for server in servers:
                server.abort_channels()
        results = await shutdown
        hurried.cancel()
        for signum in installed:
            loop.remove_signal_handler(signum)
        if handle_signals:
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signal.SIGUSR1)
                loop.remove_signal_handler(signal.SIGHUP)
        for result in results:
            if isinstance(result, BaseException):
                error_logger.error("shutdown failed: %r", result)
        close_shared_resolver()  # lines waiting for a host name are written with the address
        close_named_loggers()  # queued lines of [logger.NAME] loggers are written
        loop.set_exception_handler(previous_handler)


def _no_reload() -> None:
    error_logger.warning(
        "SIGHUP: a single process does not reload its configuration (run with --workers 2 "
        "or more for reloads without downtime); SIGUSR1 reopens the log files"
    )


async def _start_late(
    servers: Sequence[Server],
    started: list[Server],
    wait: float,
    on_start: Callable[[Server], object] | None,
) -> None:
    """Start ``servers`` one by one, retrying an address in use for up to ``wait``
    seconds; append each one that listens to ``started``."""
    deadline = time.monotonic() + wait
    for server in servers:
        retrying = False
        while True:
            try:
                await server.start()
            except ListenError as exc:
                if exc.errno == errno.EADDRINUSE and time.monotonic() < deadline:
                    if not retrying:  # once per server: a reload that waits says why
                        retrying = True
                        error_logger.info("%s; retrying for up to %.0f s", exc.strerror, wait)
                    await asyncio.sleep(0.1)
                    continue
                error_logger.error("%s; serving without it", exc.strerror)
                break
            except Exception as exc:  # a protocol's own start-up (a monitor's socket mode)
                error_logger.error(
                    "%s server cannot start on %s: %s; serving without it",
                    server.name,
                    server.address,
                    exc,
                )
                server.close()
                break
            started.append(server)
            if on_start is not None:
                on_start(server)
            break


def run(
    servers: Sequence[Server],
    *,
    backend: Backend | str = "auto",
    grace: float = 10.0,
    on_start: Callable[[Sequence[Server]], object] | None = print_listening,
) -> None:
    """Run ``servers`` in this process on one new event loop until SIGINT or SIGTERM.

    Args:
        servers: every server to start.
        backend: ``"auto"``, ``"uvloop"`` or ``"asyncio"`` (see :func:`new_event_loop`).
        grace: seconds that in-flight responses get to finish on shutdown.
        on_start: called with ``servers`` once all listen; by default prints each
            listening address.

    Raises:
        OSError: when a server cannot listen.
        ImportError: when ``backend="uvloop"`` and uvloop is missing.
    """
    if _collecting is not None:  # a startup script read by `medusa run --workers`
        _collecting.extend(servers)
        raise ServersCollected
    loop = new_event_loop(backend)
    try:
        loop.run_until_complete(serve(servers, grace=grace, on_start=on_start))
    finally:
        finish_loop(loop)
        loop.close()


class ServersCollected(BaseException):
    """Raised by :func:`run` inside :func:`collect_servers`: the script's servers were
    taken instead of served (a ``BaseException``, so that a script's ``except Exception``
    does not swallow it)."""


_collecting: list[Server] | None = None


@contextlib.contextmanager
def collect_servers() -> Iterator[list[Server]]:
    """Within the block, :func:`run` does not serve: it puts its servers in the yielded
    list and raises :class:`ServersCollected` (catch it). ``medusa run --workers`` reads a
    startup script that ends with ``run([...])`` this way, in the master and in each
    worker."""
    global _collecting
    previous, _collecting = _collecting, []
    try:
        yield _collecting
    finally:
        _collecting = previous


def finish_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Prepare a loop that is no longer running for ``close()``, as :func:`asyncio.run`
    does: cancel the tasks still pending (handlers that outlived the grace period, a
    connection accepted during the shutdown), let them run their cancellation, and finish
    the asynchronous generators. A few loop iterations before and after let callbacks
    already scheduled run (a transport's ``connection_lost`` closes its socket). Errors
    are logged, not raised."""
    try:
        _run_pending(loop)
        tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        _run_pending(loop)
    except Exception:
        error_logger.exception("finishing the event loop failed")


def _run_pending(loop: asyncio.AbstractEventLoop, iterations: int = 3) -> None:
    """Run ``iterations`` loop iterations (callbacks scheduled by the previous ones)."""
    for _ in range(iterations):
        loop.run_until_complete(asyncio.sleep(0))
