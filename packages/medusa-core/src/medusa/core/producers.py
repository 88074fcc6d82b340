"""Producers: pull-based byte sources that a :class:`~medusa.core.channel.Channel` drains.

A producer is any object with ``more() -> bytes`` that returns ``b""`` once, at the end
(the model of the original Medusa's ``producers.py`` and of asynchat's producer fifo). The
channel pulls from a producer only while its transport can take more bytes, so a slow client
never forces the server to hold a whole response in memory.

:class:`FileProducer` is special: a channel on a plain TCP transport hands its open file to
``os.sendfile`` (zero-copy) instead of calling ``more()``.
"""

from __future__ import annotations

import glob as _glob
import os
from collections import deque
from collections.abc import Callable, Iterable
from typing import BinaryIO, Protocol, runtime_checkable

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "ChunkedProducer",
    "CompositeProducer",
    "EscapingProducer",
    "FileProducer",
    "GlobbingProducer",
    "HookedProducer",
    "LinesProducer",
    "Producer",
    "SimpleProducer",
]

DEFAULT_CHUNK_SIZE = 65536
"""Bytes returned by one ``more()`` call of the buffered producers."""


@runtime_checkable
class Producer(Protocol):
    """A source of bytes pulled by a channel.

    ``more()`` returns the next piece of the output (any length, bytes) and ``b""`` exactly
    when the output is finished. It must not block: a producer that would wait for data is
    not a producer but a handler that pushes later.
    """

    def more(self) -> bytes:
        """Return the next bytes, or ``b""`` at the end."""
        ...


class SimpleProducer:
    """Produce a bytes object in slices of at most ``buffer_size`` bytes.

    Args:
        data: the whole output.
        buffer_size: largest slice returned by one ``more()`` call, in bytes.
    """

    __slots__ = ("_data", "_offset", "buffer_size")

    def __init__(self, data: bytes, buffer_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self._data = memoryview(data)
        self._offset = 0
        self.buffer_size = buffer_size

    def more(self) -> bytes:
        """Return the next slice (``b""`` when all of ``data`` was produced)."""
        start = self._offset
        end = start + self.buffer_size
        self._offset = min(end, len(self._data))
        return bytes(self._data[start:end])


class LinesProducer:
    """Produce lines of text, each followed by CRLF, a batch of ``lines_per_call`` at a time.

    Args:
        lines: the lines, without terminators (str is encoded with ``encoding``).
        encoding: text encoding of str lines (default UTF-8).
        lines_per_call: lines joined into one ``more()`` result.
    """

    __slots__ = ("_encoding", "_lines", "_per_call")

    def __init__(
        self, lines: Iterable[str | bytes], encoding: str = "utf-8", lines_per_call: int = 64
    ) -> None:
        self._lines = iter(lines)
        self._encoding = encoding
        self._per_call = lines_per_call

    def more(self) -> bytes:
        """Return the next batch of CRLF-terminated lines, or ``b""`` when none are left."""
        out: list[bytes] = []
        for line in self._lines:
            out.append(line.encode(self._encoding) if isinstance(line, str) else line)
            if len(out) >= self._per_call:
                break
        if not out:
            return b""
        return b"\r\n".join(out) + b"\r\n"


class FileProducer:
    """Produce (a range of) an open binary file with bounded reads.

    A channel whose transport is a plain TCP socket sends the file with ``os.sendfile``
    instead (zero-copy); it reads :attr:`file`, :attr:`offset` and :attr:`remaining` and
    calls :meth:`advance`. Otherwise ``more()`` reads at most ``buffer_size`` bytes at a
    time, so the whole file is never in memory. The file is closed at the end, or by
    :meth:`close` when the channel closes early.

    Args:
        file: a binary file opened for reading; it must support ``fileno()`` for sendfile
            and ``seek``/``read`` for the buffered path.
        offset: first byte to send.
        count: bytes to send from ``offset``; ``None`` means up to the end of the file.
        buffer_size: bytes per ``more()`` read.

    Raises:
        OSError: from ``fstat`` when ``count`` is ``None`` and the file cannot be sized.
    """

    __slots__ = ("buffer_size", "file", "offset", "remaining")

    def __init__(
        self,
        file: BinaryIO,
        offset: int = 0,
        count: int | None = None,
        buffer_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.file = file
        self.offset = offset
        if count is None:
            count = max(os.fstat(file.fileno()).st_size - offset, 0)
        self.remaining = count
        self.buffer_size = buffer_size

    def advance(self, sent: int) -> None:
        """Record that ``sent`` bytes were sent by the zero-copy path."""
        self.offset += sent
        self.remaining -= sent
        if self.remaining <= 0:
            self.close()

    def more(self) -> bytes:
        """Read and return up to ``buffer_size`` bytes; ``b""`` (and close) at the end."""
        if self.remaining <= 0:
            self.close()
            return b""
        n = min(self.buffer_size, self.remaining)
        try:
            data = os.pread(self.file.fileno(), n, self.offset)
        except (AttributeError, OSError, ValueError):
            self.file.seek(self.offset)
            data = self.file.read(n)
        if not data:  # the file shrank under us: stop rather than loop forever
            self.remaining = 0
            self.close()
            return b""
        self.offset += len(data)
        self.remaining -= len(data)
        return data

    def close(self) -> None:
        """Close the file (idempotent)."""
        self.remaining = 0
        self.file.close()


class CompositeProducer:
    """Produce the outputs of several producers one after another.

    Args:
        producers: producers drained in order; each is dropped once it returns ``b""``.
    """

    __slots__ = ("_producers",)

    def __init__(self, producers: Iterable[Producer]) -> None:
        self._producers: deque[Producer] = deque(producers)

    def more(self) -> bytes:
        """Return the next non-empty output of the current producer, ``b""`` after the last."""
        while self._producers:
            data = self._producers[0].more()
            if data:
                return data
            self._producers.popleft()
        return b""


class GlobbingProducer:
    """Coalesce the many small outputs of another producer into pieces of about
    ``buffer_size`` bytes, so the transport sees fewer, larger writes.

    (The original's name; it has nothing to do with file-name globbing. For that see
    :func:`glob_files`.)

    Args:
        producer: the wrapped producer.
        buffer_size: bytes to gather before returning, at least.
    """

    __slots__ = ("_buffer_size", "_producer")

    def __init__(self, producer: Producer, buffer_size: int = DEFAULT_CHUNK_SIZE) -> None:
        self._producer = producer
        self._buffer_size = buffer_size

    def more(self) -> bytes:
        """Return at least ``buffer_size`` bytes unless the wrapped producer ended first."""
        parts: list[bytes] = []
        size = 0
        while size < self._buffer_size:
            data = self._producer.more()
            if not data:
                break
            parts.append(data)
            size += len(data)
        return b"".join(parts)


def glob_files(pattern: str) -> list[str]:
    """Return the sorted file names matching a shell ``pattern`` (a convenience for
    producers that concatenate files); see :mod:`glob`."""
    return sorted(_glob.glob(pattern))


class HookedProducer:
    """Pass another producer's output through and call ``hook(total_bytes)`` once at the end.

    Used for logging the size of a response once it has been produced.

    Args:
        producer: the wrapped producer.
        hook: called with the number of bytes produced (int) when the producer ends.
    """

    __slots__ = ("_hook", "_producer", "bytes_out")

    def __init__(self, producer: Producer, hook: Callable[[int], object]) -> None:
        self._producer: Producer | None = producer
        self._hook = hook
        self.bytes_out = 0

    def more(self) -> bytes:
        """Return the wrapped producer's next bytes; at its end call the hook once."""
        if self._producer is None:
            return b""
        data = self._producer.more()
        if data:
            self.bytes_out += len(data)
            return data
        self._producer = None
        self._hook(self.bytes_out)
        return b""


class ChunkedProducer:
    """Frame another producer's output with HTTP/1.1 chunked transfer coding
    (RFC 9112 §7.1): ``<hex size>CRLF<data>CRLF`` per chunk, then ``0 CRLF``, optional
    trailer fields, and a final CRLF.

    Args:
        producer: the wrapped producer (the message body).
        trailers: header fields sent in the trailer section (RFC 9112 §7.1.2), as
            ``(name, value)`` pairs; ``None`` or empty for none.
        last_chunk: send the last-chunk and trailer section at the end; ``False`` frames
            only the wrapped output (the caller ends the body later).
    """

    __slots__ = ("_done", "_last_chunk", "_producer", "_trailers")

    def __init__(
        self,
        producer: Producer,
        trailers: Iterable[tuple[str, str]] | None = None,
        *,
        last_chunk: bool = True,
    ) -> None:
        self._producer = producer
        self._trailers = list(trailers or ())
        self._last_chunk = last_chunk
        self._done = False

    def close(self) -> None:
        """Close the wrapped producer if it can be closed (an open file)."""
        close = getattr(self._producer, "close", None)
        if close is not None:
            close()

    def more(self) -> bytes:
        """Return the next framed chunk; the last-chunk and trailers once; then ``b""``."""
        if self._done:
            return b""
        data = self._producer.more()
        if data:
            return b"%x\r\n%b\r\n" % (len(data), data)
        self._done = True
        if not self._last_chunk:
            return b""
        trailer = b"".join(
            f"{name}: {value}\r\n".encode("latin-1") for name, value in self._trailers
        )
        return b"0\r\n" + trailer + b"\r\n"


class EscapingProducer:
    """Replace every occurrence of ``escape_from`` with ``escape_to`` in another producer's
    output, even when an occurrence spans two ``more()`` results.

    The classic use is SMTP/NNTP dot-stuffing (RFC 5321 §4.5.2): ``b"\\r\\n."`` becomes
    ``b"\\r\\n.."``.

    Args:
        producer: the wrapped producer.
        escape_from: the byte sequence to replace (non-empty).
        escape_to: its replacement.

    Raises:
        ValueError: if ``escape_from`` is empty.
    """

    __slots__ = ("_from", "_pending", "_producer", "_to")

    def __init__(
        self, producer: Producer, escape_from: bytes = b"\r\n.", escape_to: bytes = b"\r\n.."
    ) -> None:
        if not escape_from:
            raise ValueError("escape_from must not be empty")
        self._producer = producer
        self._from = escape_from
        self._to = escape_to
        self._pending = b""

    def more(self) -> bytes:
        """Return the next escaped bytes, holding back a possible partial match."""
        while True:
            data = self._producer.more()
            if not data:
                out = self._pending.replace(self._from, self._to)
                self._pending = b""
                return out
            buf = self._pending + data
            # Hold back the longest suffix that is a proper prefix of escape_from.
            keep = 0
            for k in range(min(len(self._from) - 1, len(buf)), 0, -1):
                if buf.endswith(self._from[:k]):
                    keep = k
                    break
            head, self._pending = (buf[:-keep], buf[-keep:]) if keep else (buf, b"")
            if head:
                return head.replace(self._from, self._to)
