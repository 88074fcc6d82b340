"""Run servers on a background event loop, for tests that talk to them with ordinary
blocking clients (sockets, :mod:`http.client`, :mod:`ftplib`, curl).

Example::

    with ServerThread([HTTPServer(("127.0.0.1", 0), root=tmp)], backend="uvloop") as st:
        port = st.servers[0].port
        ...  # real requests to 127.0.0.1:port

The servers listen on real sockets; nothing is mocked. :meth:`ServerThread.call` runs a
function on the loop's thread (to install a handler or read counters safely), and
:func:`wait_until` waits for a condition with a deadline instead of sleeping and hoping.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, TypeVar

from medusa.core.loop import Backend, finish_loop, new_event_loop, serve
from medusa.core.server import Server

__all__ = ["NO_SKIP_ENV", "ServerThread", "require_tool", "stop_process", "wait_until"]

NO_SKIP_ENV = "MEDUSA_NO_SKIP"
"""The environment variable that makes a skipped test a failure when set to ``1``: CI
(``.ci/run``) sets it after installing every tool, so that a test skipped for a missing tool
cannot pass unnoticed there (the repository's root ``conftest.py`` turns every skip into a
failed run; :func:`require_tool` fails at once)."""

_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"
"""Where daemons (dnsmasq, rsyslogd, useradd) live when ``sbin`` is not on ``PATH``."""

T = TypeVar("T")


def stop_process(process: subprocess.Popen[Any], timeout: float = 5.0) -> None:
    """End a child process the tests or benchmarks started (a peer server, a client): SIGTERM,
    then SIGKILL when it has not exited after ``timeout`` seconds; waits for it either way.
    Nothing happens to a process that has exited already."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def require_tool(name: str, install: str) -> str:
    """Return the path of the program ``name`` for a test that needs it (a real client or
    peer); when it is missing, skip the calling test with the command that installs it.

    Args:
        name: the program (``"dnsmasq"``), looked for on ``PATH`` and in the ``sbin``
            directories.
        install: the command a user runs to get it (``"apt-get install dnsmasq-base"``).

    Returns:
        The program's absolute path.

    Raises:
        pytest.skip.Exception: the program is missing (the test is skipped).
        pytest.fail.Exception: the program is missing and :data:`NO_SKIP_ENV` is ``1``.
    """
    path = shutil.which(name) or shutil.which(name, path=_SBIN)
    if path is not None:
        return path
    import pytest  # only tests call this; pytest is not a dependency of medusa-core

    message = f"{name} is not installed (install it with: {install})"
    if os.environ.get(NO_SKIP_ENV) == "1":
        pytest.fail(f"{message}; {NO_SKIP_ENV}=1 makes a missing tool a failure")
    pytest.skip(message)


def loop_backends() -> list[Any]:
    """The event loops a test runs on, as ``pytest`` parameters (``@pytest.fixture(
    params=loop_backends())``): ``"asyncio"``, then ``"uvloop"``, skipped with the install
    command when uvloop is not installed."""
    import importlib.util

    import pytest  # only tests call this; pytest is not a dependency of medusa-core

    missing = importlib.util.find_spec("uvloop") is None
    reason = "uvloop is not installed (install it with: pip install uvloop)"
    return ["asyncio", pytest.param("uvloop", marks=pytest.mark.skipif(missing, reason=reason))]


def wait_until(
    predicate: Callable[[], object],
    timeout: float = 10.0,
    what: str = "the condition",
    interval: float = 0.005,
) -> None:
    """Call ``predicate()`` until it returns a true value.

    Args:
        predicate: the condition; called at least once.
        timeout: seconds to keep trying.
        what: words for the error message.
        interval: seconds between two calls.

    Raises:
        TimeoutError: when it was still false after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class ServerThread:
    """Serve ``servers`` on a new event loop in a daemon thread.

    Args:
        servers: the servers to start.
        backend: ``"asyncio"``, ``"uvloop"`` or ``"auto"``.
        grace: shutdown grace period in seconds, used by :meth:`stop`.
        start_timeout: seconds to wait for the servers to listen.

    Raises:
        OSError: from :meth:`start` when a server cannot listen.
        TimeoutError: when the servers did not start within ``start_timeout``.
    """

    def __init__(
        self,
        servers: Sequence[Server],
        *,
        backend: Backend | str = "asyncio",
        grace: float = 5.0,
        start_timeout: float = 10.0,
    ) -> None:
        self.servers = list(servers)
        self.backend = backend
        self.grace = grace
        self.start_timeout = start_timeout
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="medusa-test-loop", daemon=True)

    def _main(self) -> None:
        loop = new_event_loop(self.backend)
        self.loop = loop
        asyncio.set_event_loop(loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            await serve(
                self.servers,
                grace=self.grace,
                stop=self._stop,
                on_start=lambda _: self._started.set(),
                handle_signals=False,
            )

        try:
            loop.run_until_complete(main())
        except BaseException as exc:
            self._error = exc
        finally:
            self._started.set()
            finish_loop(loop)
            loop.close()

    def start(self) -> ServerThread:
        """Start the thread and wait until every server listens."""
        self._thread.start()
        if not self._started.wait(self.start_timeout):
            raise TimeoutError("servers did not start")
        if self._error is not None:
            raise self._error
        return self

    def call(self, function: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``function()`` on the loop's thread and return its result.

        Raises:
            TimeoutError: when it did not finish within ``timeout`` seconds.
        """
        assert self.loop is not None

        async def wrapper() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the servers to shut down (as SIGTERM would) and wait for the thread.

        Raises:
            TimeoutError: when the loop's thread did not end within ``timeout`` seconds
                (a shutdown that hangs is a bug the test should see).
        """
        if self._thread.ident is None:
            return  # never started
        if self.loop is not None and self._stop is not None and not self.loop.is_closed():
            stop = self._stop
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                self.loop.call_soon_threadsafe(stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"servers did not shut down within {timeout} s")

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
