"""Producers: pull-based byte sources that a :class:`~medusa.core.channel.Channel` drains.

A producer is any object with ``more() -> bytes`` that returns ``b""`` once, at the end
(the model of the original Medusa's ``producers.py`` and of asynchat's producer fifo). The
channel pulls from a producer only while its transport can take more bytes, so a slow client
never forces the server to hold a whole response in memory.

:class:`FileProducer` is special: a channel on a plain TCP transport hands its open file to
``os.sendfile`` (zero-copy) instead of calling ``more()``.
"""

from __future__ import annotations

import errno
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


def _close(producer: object) -> None:
    """Call ``producer.close()`` when the producer has one (an open file inside)."""
    close = getattr(producer, "close", None)
    if close is not None:
        close()


def _check_size(name: str, value: int) -> None:
    if value <= 0:
        raise ValueError(f"{name} must be greater than 0, got {value!r}")


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
        data: the whole output (bytes; a bytearray or memoryview is copied).
        buffer_size: largest slice returned by one ``more()`` call, in bytes.

    Raises:
        ValueError: if ``buffer_size`` is not positive.
    """

    __slots__ = ("_data", "_offset", "buffer_size")

    def __init__(self, data: bytes, buffer_size: int = DEFAULT_CHUNK_SIZE) -> None:
        _check_size("buffer_size", buffer_size)
        self._data = memoryview(bytes(data))
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

    Raises:
        ValueError: if ``lines_per_call`` is not positive.
    """

    __slots__ = ("_encoding", "_lines", "_per_call")

    def __init__(
        self, lines: Iterable[str | bytes], encoding: str = "utf-8", lines_per_call: int = 64
    ) -> None:
        _check_size("lines_per_call", lines_per_call)
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

    A channel whose transport is a plain socket (TCP or Unix) sends the file with
    ``os.sendfile`` instead (zero-copy); it reads :attr:`file`, :attr:`offset` and
    :attr:`remaining` and calls :meth:`advance`. Otherwise ``more()`` reads at most
    ``buffer_size`` bytes at a time (``os.pread`` on the file's descriptor, or
    ``seek``/``read`` for a file object without one), so the whole file is never in memory.
    The file is closed at the end, or by :meth:`close` when the channel closes early. A
    file that turns out shorter than ``count`` (truncated while being sent) ends the
    output early: ``more()`` returns ``b""`` and sets :attr:`truncated`, and a channel
    aborts the connection, since the promised length can no longer be sent.

    Args:
        file: a binary file opened for reading; ``fileno()`` is needed for sendfile and
            when ``count`` is ``None``, ``seek``/``read`` otherwise.
        offset: first byte to send (bytes from the start of the file, >= 0).
        count: bytes to send from ``offset`` (>= 0); ``None`` means up to the end of the
            file as it is now.
        buffer_size: largest read of one ``more()`` call, in bytes (> 0).

    Attributes:
        file: the open file.
        offset: the next byte to send.
        remaining: bytes still to send (0 at the end).
        truncated: True once the file was found shorter than the bytes promised.

    Raises:
        ValueError: for a negative ``offset`` or ``count`` or a non-positive
            ``buffer_size``.
        OSError: from ``fstat`` when ``count`` is ``None`` and the file cannot be sized.
    """

    __slots__ = ("buffer_size", "file", "offset", "remaining", "truncated")

    def __init__(
        self,
        file: BinaryIO,
        offset: int = 0,
        count: int | None = None,
        buffer_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        if offset < 0:
            raise ValueError(f"offset must be 0 or more, got {offset!r}")
        if count is not None and count < 0:
            raise ValueError(f"count must be 0 or more, got {count!r}")
        _check_size("buffer_size", buffer_size)
        self.file = file
        self.offset = offset
        if count is None:
            count = max(os.fstat(file.fileno()).st_size - offset, 0)
        self.remaining = count
        self.buffer_size = buffer_size
        self.truncated = False

    def advance(self, sent: int) -> None:
        """Record that ``sent`` bytes were sent by the zero-copy path."""
        self.offset += sent
        self.remaining -= sent
        if self.remaining <= 0:
            self.close()

    def more(self) -> bytes:
        """Read and return up to ``buffer_size`` bytes; ``b""`` at the end. The file is
        closed as soon as its last byte was read (or it was found short)."""
        if self.remaining <= 0:
            self.close()
            return b""
        n = min(self.buffer_size, self.remaining)
        try:
            fd = self.file.fileno()
        except (AttributeError, OSError, ValueError):  # io.BytesIO and the like
            self.file.seek(self.offset)
            data = self.file.read(n)
        else:
            try:
                data = os.pread(fd, n, self.offset)
            except OSError as exc:
                if exc.errno != errno.ESPIPE:
                    raise
                data = self.file.read(n)  # a pipe: read in order, offset is only counted
        if not data:  # the file shrank under us: stop rather than loop forever
            self.truncated = True
            self.remaining = 0
            self.close()
            return b""
        self.offset += len(data)
        self.remaining -= len(data)
        if self.remaining <= 0:
            self.file.close()  # release the descriptor with the last bytes
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

    def close(self) -> None:
        """Close every producer not yet drained that can be closed (idempotent)."""
        while self._producers:
            _close(self._producers.popleft())


class GlobbingProducer:
    """Coalesce the many small outputs of another producer into pieces of about
    ``buffer_size`` bytes, so the transport sees fewer, larger writes.

    (The original's name; it has nothing to do with file-name globbing. For that see
    :func:`glob_files`.)

    Args:
        producer: the wrapped producer.
        buffer_size: bytes to gather before returning, at least (> 0).

    Raises:
        ValueError: if ``buffer_size`` is not positive.
    """

    __slots__ = ("_buffer_size", "_done", "_producer")

    def __init__(self, producer: Producer, buffer_size: int = DEFAULT_CHUNK_SIZE) -> None:
        _check_size("buffer_size", buffer_size)
        self._producer = producer
        self._buffer_size = buffer_size
        self._done = False

    def more(self) -> bytes:
        """Return at least ``buffer_size`` bytes unless the wrapped producer ended first
        (the wrapped producer is not pulled again once it returned ``b""``)."""
        parts: list[bytes] = []
        size = 0
        while size < self._buffer_size and not self._done:
            data = self._producer.more()
            if not data:
                self._done = True
                break
            parts.append(data)
            size += len(data)
        return b"".join(parts)

    def close(self) -> None:
        """Close the wrapped producer if it can be closed (idempotent)."""
        self._done = True
        _close(self._producer)


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

    def close(self) -> None:
        """Close the wrapped producer if it can be closed, without calling the hook (the
        output did not reach its end)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            _close(producer)


class ChunkedProducer:
    """Frame another producer's output with HTTP/1.1 chunked transfer coding
    (RFC 9112 §7.1): ``<hex size>CRLF<data>CRLF`` per chunk, then ``0 CRLF``, optional
    trailer fields, and a final CRLF.

    Args:
        producer: the wrapped producer (the message body).
        trailers: header fields sent in the trailer section (RFC 9112 §7.1.2), as
            ``(name, value)`` pairs; ``None`` or empty for none. Names must be tokens
            (RFC 9110 §5.1) and values Latin-1 text without CR, LF or NUL (§5.5).
        last_chunk: send the last-chunk and trailer section at the end; ``False`` frames
            only the wrapped output (the caller ends the body later).

    Raises:
        ValueError: for a trailer name that is not a token or a value that could split
            the message (CR, LF, NUL) or is not Latin-1.
    """

    __slots__ = ("_done", "_last_chunk", "_producer", "_trailer")

    def __init__(
        self,
        producer: Producer,
        trailers: Iterable[tuple[str, str]] | None = None,
        *,
        last_chunk: bool = True,
    ) -> None:
        self._producer = producer
        self._trailer = b"".join(_trailer_line(name, value) for name, value in trailers or ())
        self._last_chunk = last_chunk
        self._done = False

    def close(self) -> None:
        """Close the wrapped producer if it can be closed (an open file)."""
        _close(self._producer)

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
        return b"0\r\n" + self._trailer + b"\r\n"


_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def _trailer_line(name: str, value: str) -> bytes:
    """Return ``name: value CRLF`` for a trailer field, checked (RFC 9110 §5.1, §5.5).

    Raises:
        ValueError: for a bad name or value.
    """
    try:
        raw_name = name.encode("ascii")
        raw_value = value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise ValueError(f"trailer field {name!r}: not Latin-1 text") from exc
    if not raw_name or not _TOKEN.issuperset(raw_name):
        raise ValueError(f"trailer field name {name!r} is not a token")
    if any(c in raw_value for c in b"\r\n\0"):
        raise ValueError(f"trailer field {name!r}: value contains CR, LF or NUL")
    return raw_name + b": " + raw_value.strip(b" \t") + b"\r\n"


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

    __slots__ = ("_done", "_from", "_pending", "_producer", "_to")

    def __init__(
        self, producer: Producer, escape_from: bytes = b"\r\n.", escape_to: bytes = b"\r\n.."
    ) -> None:
        if not escape_from:
            raise ValueError("escape_from must not be empty")
        self._producer = producer
        self._from = escape_from
        self._to = escape_to
        self._pending = b""
        self._done = False

    def more(self) -> bytes:
        """Return the next escaped bytes, holding back a possible partial match.

        The output equals ``whole_output.replace(escape_from, escape_to)`` (leftmost,
        non-overlapping occurrences) however the wrapped output is split.
        """
        if self._done:
            return b""
        frm = self._from
        while True:
            data = self._producer.more()
            if not data:
                self._done = True
                out, self._pending = self._pending, b""
                return out  # shorter than escape_from: no occurrence left
            parts = (self._pending + data).split(frm)
            # After the last complete occurrence, hold back the longest suffix that may
            # begin an occurrence the next piece completes.
            tail = parts[-1]
            keep = _prefix_at_end(tail, frm)
            if keep:
                parts[-1] = tail[:-keep]
                self._pending = tail[-keep:]
            else:
                self._pending = b""
            out = self._to.join(parts)
            if out:
                return out

    def close(self) -> None:
        """Close the wrapped producer if it can be closed (idempotent)."""
        self._done = True
        _close(self._producer)


def _prefix_at_end(data: bytes, prefix_of: bytes) -> int:
    """Length of the longest suffix of ``data`` that is a proper prefix of ``prefix_of``."""
    n = min(len(prefix_of) - 1, len(data))
    while n > 0 and not data.endswith(prefix_of[:n]):
        n -= 1
    return n
