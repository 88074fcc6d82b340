"""The threads WSGI applications run in, and the way their results reach the event loop.

:class:`ThreadPool` is a fixed number of threads taking work from one FIFO queue: the
original Medusa's answer to blocking work (its ``thread_handler``). Work beyond the
threads waits in arrival order; the queue is bounded by what the server reads (its
connection limits, and at most one pipelined batch per connection).

:class:`LoopOutbox` carries work from those threads to the event loop with as few wake-ups
as possible: a thread appends to a queue and wakes the loop (``call_soon_threadsafe``)
only when no wake-up is pending already, so that under load one wake-up delivers many
responses.
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from medusa.core.log import error_logger

__all__ = ["LoopOutbox", "ThreadPool"]


class ThreadPool:
    """``size`` threads running submitted callables in order of submission.

    Args:
        size: the number of threads (>= 1); they start with the first :meth:`submit`.
        name: the threads' name prefix (seen in ``ps -L``, ``py-spy``).

    Raises:
        ValueError: for a size below 1.
    """

    def __init__(self, size: int, name: str = "wsgi") -> None:
        if size < 1:
            raise ValueError(f"a thread pool needs at least 1 thread, not {size}")
        self.size = size
        self.name = name
        self._queue: queue.SimpleQueue[Callable[[], Any] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.busy = 0
        """Threads running a callable now (approximate: for the status page and tests)."""

    @property
    def waiting(self) -> int:
        """Callables submitted and not started yet (approximate: for the status page)."""
        return self._queue.qsize()

    @property
    def alive(self) -> int:
        """Threads of the pool alive now (0 before the first :meth:`submit` and after
        :meth:`stop`)."""
        return sum(thread.is_alive() for thread in self._threads)

    def submit(self, work: Callable[[], Any]) -> None:
        """Run ``work()`` in a thread, after the work submitted before it. Its exceptions
        are logged; it should handle its own."""
        if not self._threads:
            self._start()
        self._queue.put(work)

    def _start(self) -> None:
        with self._lock:
            if self._threads:
                return
            for number in range(self.size):
                thread = threading.Thread(
                    target=self._run, name=f"{self.name}-{number + 1}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def _run(self) -> None:
        get = self._queue.get
        while True:
            work = get()
            if work is None:
                return
            self.busy += 1
            try:
                work()
            except BaseException:
                error_logger.exception("WSGI work %r failed", work)
            finally:
                self.busy -= 1

    def stop(self, timeout: float) -> bool:
        """Let the threads finish the work queued, then end them; wait at most ``timeout``
        seconds. Returns True when every thread ended (the pool may be used again: the
        next :meth:`submit` starts new threads)."""
        with self._lock:
            threads, self._threads = self._threads, []
        for _ in threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        return not any(thread.is_alive() for thread in threads)


class LoopOutbox:
    """Callables from other threads to run on one event loop, in order, with at most one
    pending wake-up.

    Args:
        loop: the event loop that runs them.
    """

    __slots__ = ("_items", "_scheduled", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._items: deque[Callable[[], Any]] = deque()
        self._scheduled = False

    def post(self, item: Callable[[], Any]) -> bool:
        """Run ``item()`` on the loop soon (from any thread). Returns False when the loop
        is closed (the server stopped): it will never run."""
        self._items.append(item)
        if not self._scheduled:
            self._scheduled = True
            try:
                self.loop.call_soon_threadsafe(self._run)
            except RuntimeError:
                self._scheduled = False
                return False
        return True

    def _run(self) -> None:
        # Cleared first: an item posted from now on either is taken below or schedules a
        # new wake-up (a spare wake-up finds the queue empty, which is harmless).
        self._scheduled = False
        items = self._items
        while items:
            item = items.popleft()
            try:
                item()
            except Exception:
                error_logger.exception("WSGI delivery %r failed", item)
