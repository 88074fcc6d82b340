"""``wsgi.input`` (PEP 3333 "Input and Error Streams"): the request body, streamed from the
event loop to the application's thread with back-pressure.

:class:`WSGIInput` is both sides of one body:

* on the loop, the :class:`~medusa.http.body.BodySink` the channel writes the body into as
  it arrives (de-chunked); once more than ``limit`` bytes (64 KiB by default) wait for the
  application, the channel stops reading from the socket (the reason
  :data:`READ_HOLD`), and reads again once the application took them down to a quarter of
  it: a connection never holds much more than ``limit`` bytes of body, however large the
  upload;
* in the application's thread, a blocking binary file: ``read(size)``, ``read()``,
  ``readline(size)``, ``readlines(hint)`` and iteration wait for the body's next bytes and
  return ``b""`` at its end. A body of unknown length (chunked, RFC 9112 §7.1) ends with its
  last chunk; ``CONTENT_LENGTH`` is then absent and ``wsgi.input_terminated`` is true.

Once the response has begun, the rest of the body is no longer read (the connection closes
after the response when the body was not all received, RFC 9112 §9.6): reads then return
what had arrived, then ``b""``. A body cut short (the client left, a body timeout) makes
reads raise :class:`ClientDisconnectedError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medusa.http.channel import HTTPChannel

__all__ = ["INPUT_LIMIT", "READ_HOLD", "ClientDisconnectedError", "WSGIInput"]

INPUT_LIMIT = 65536
"""Bytes of request body buffered for an application before reading pauses (default)."""

READ_HOLD = "wsgi-input"
"""The reason given to the channel's ``pause_reading`` while the application is behind."""


class ClientDisconnectedError(OSError):
    """Raised by ``wsgi.input`` reads when the body will never be complete (the client closed
    the connection, or sent too slowly); its message says why."""


class WSGIInput:
    """One request body: a body sink on the loop, a blocking file in the application's thread.

    Args:
        channel: the connection the body arrives on (reading is paused and resumed on it).
        loop: the channel's event loop.
        limit: bytes buffered before reading pauses (> 0).
    """

    __slots__ = (
        "_buffered",
        "_chunks",
        "_cond",
        "_ended",
        "_error",
        "_paused",
        "channel",
        "limit",
        "loop",
        "received",
    )

    def __init__(
        self, channel: HTTPChannel, loop: asyncio.AbstractEventLoop, limit: int = INPUT_LIMIT
    ) -> None:
        self.channel = channel
        self.loop = loop
        self.limit = limit
        self.received = 0
        """Bytes of body received so far (loop side)."""
        self._cond = threading.Condition(threading.Lock())
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._ended = False
        self._error: str | None = None
        self._paused = False

    # -- the loop's side -------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Take the next piece of the body (the :class:`~medusa.http.body.BodySink`
        protocol); past ``limit`` bytes waiting, pause reading."""
        self.received += len(data)
        with self._cond:
            if self._ended:
                return  # the response began: the rest is not the application's
            self._chunks.append(data)
            self._buffered += len(data)
            pause = self._buffered > self.limit and not self._paused
            if pause:
                self._paused = True
            self._cond.notify()
        if pause:
            self.channel.pause_reading(READ_HOLD)

    def abort(self, reason: str) -> None:
        """The body will never be complete: reads raise :class:`ClientDisconnectedError`."""
        with self._cond:
            if not self._ended:
                self._error = reason
                self._ended = True
                self._chunks.clear()
                self._buffered = 0
            self._cond.notify_all()

    def finish(self) -> None:
        """The body's last byte arrived: reads return ``b""`` after the rest."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    def release(self) -> None:
        """The application is done with the request: drop what it did not read and read
        from the connection again (a body it did not read to the end is discarded, or the
        connection closed, by the channel)."""
        with self._cond:
            self._ended = True
            self._chunks.clear()
            self._buffered = 0
            paused, self._paused = self._paused, False
            self._cond.notify_all()
        if paused and not self.channel.closing:
            self.channel.resume_reading(READ_HOLD)

    def _resume(self) -> None:
        with self._cond:
            if self._paused and self._buffered <= self.limit // 4:
                self._paused = False
            else:
                return
        if not self.channel.closing:
            self.channel.resume_reading(READ_HOLD)

    # -- the application's side ------------------------------------------------------------

    def _wait(self) -> bool:
        """Wait for bytes (the lock held); False at the end of the body."""
        cond = self._cond
        while not self._chunks:
            if self._ended:
                if self._error is not None:
                    raise ClientDisconnectedError(self._error)
                return False
            cond.wait()
        return True

    def _taken(self, size: int) -> None:
        """``size`` bytes were taken (the lock held): read again when low."""
        self._buffered -= size
        if self._paused and self._buffered <= self.limit // 4:
            with contextlib.suppress(RuntimeError):  # a closed loop: the server stopped
                self.loop.call_soon_threadsafe(self._resume)

    def read(self, size: int | None = -1) -> bytes:
        """Return up to ``size`` bytes of the body (all the rest when ``size`` is negative
        or None), waiting for them; ``b""`` at its end.

        Raises:
            ClientDisconnectedError: when the body was cut short.
        """
        with self._cond:
            if size is None or size < 0:
                parts = []
                while self._wait():
                    parts.append(self._take_chunk())
                return b"".join(parts)
            if size == 0 or not self._wait():
                return b""
            chunks = self._chunks
            first = chunks[0]
            if len(first) <= size:
                chunks.popleft()
                self._taken(len(first))
                return first
            chunks[0] = first[size:]
            self._taken(size)
            return first[:size]

    def _take_chunk(self) -> bytes:
        data = self._chunks.popleft()
        self._taken(len(data))
        return data

    def readline(self, size: int | None = -1) -> bytes:
        """Return the next line, ``b"\\n"`` included, or up to ``size`` bytes of it;
        ``b""`` at the end of the body.

        Raises:
            ClientDisconnectedError: when the body was cut short.
        """
        limit = -1 if size is None else size
        parts: list[bytes] = []
        got = 0
        with self._cond:
            while (limit < 0 or got < limit) and self._wait():
                chunks = self._chunks
                first = chunks[0]
                end = first.find(b"\n") + 1 or len(first)
                if limit >= 0:
                    end = min(end, limit - got)
                if end == len(first):
                    chunks.popleft()
                else:
                    chunks[0] = first[end:]
                    first = first[:end]
                self._taken(end)
                parts.append(first)
                got += end
                if first.endswith(b"\n"):
                    break
        return b"".join(parts)

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        """Return the remaining lines (stopping once ``hint`` bytes were read, if > 0)."""
        lines: list[bytes] = []
        total = 0
        while True:
            line = self.readline()
            if not line:
                return lines
            lines.append(line)
            total += len(line)
            if hint is not None and 0 < hint <= total:
                return lines

    def __iter__(self) -> Iterator[bytes]:
        """Iterate over the body's lines."""
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def readable(self) -> bool:
        """True: the body can be read."""
        return True

    def close(self) -> None:
        """Nothing to do (the server ends the body when the request ends)."""
