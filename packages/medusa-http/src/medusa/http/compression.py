"""gzip content coding (RFC 9110 §8.4.1.3, §12.5.3): which responses to compress and whether
the client accepts it. Sans-IO."""

from __future__ import annotations

import gzip
import re
import zlib

from medusa.core.producers import Producer
from medusa.http.charset import is_textual

__all__ = ["GzipProducer", "accepts_gzip", "compressible", "gzip_bytes", "qvalue"]


def compressible(content_type: str) -> bool:
    """True for media types that gzip shrinks: the textual ones
    (:func:`medusa.http.charset.is_textual`: ``text/*``, JSON, JavaScript, XML, SVG, any
    ``+json`` or ``+xml`` type); never images, archives or other already compressed types."""
    return is_textual(content_type)


def accepts_gzip(accept_encoding: str | None) -> bool:
    """True when an ``Accept-Encoding`` value (RFC 9110 §12.5.3) allows ``gzip``:
    listed (or ``x-gzip``, or ``*``) with a non-zero weight, and not refused by
    ``gzip;q=0``. A missing field means no preference: answer without coding."""
    if not accept_encoding:
        return False
    star: bool | None = None
    for item in accept_encoding.split(","):
        coding, _, params = item.strip().partition(";")
        coding = coding.strip().lower()
        weight = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                weight = qvalue(value.strip())
        if coding in ("gzip", "x-gzip"):
            return weight > 0
        if coding == "*":
            star = weight > 0
    return bool(star)


_QVALUE = re.compile(r"0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?")


def qvalue(text: str) -> float:
    """Return the weight of a ``q`` parameter (RFC 9110 §12.4.2: ``0`` to ``1`` with at most
    three decimals, ASCII digits only); anything else counts as 0 (not acceptable)."""
    if _QVALUE.fullmatch(text) is None:
        return 0.0
    return float(text)


def gzip_bytes(data: bytes, level: int = 6) -> bytes:
    """Return ``data`` gzip-compressed (no file name, modification time 0, so equal input
    gives equal output and the entity tag can stay stable)."""
    return gzip.compress(data, compresslevel=level, mtime=0)


class GzipProducer:
    """Compress another producer's output into one gzip member (RFC 1952) as it is pulled,
    for files too large to code in memory at once.

    The output is the same for the same input (no file name, modification time 0), so the
    entity tag of the coded variant stays stable. Each :meth:`more` reads from the wrapped
    producer until the compressor has something to give (about one 64 KiB read per call
    for text), so memory stays bounded whatever the file's size.

    Args:
        producer: the identity body (for example a
            :class:`~medusa.core.producers.FileProducer`).
        level: zlib compression level, 1 (fast) to 9 (small).

    Raises:
        OSError: from :meth:`more` when the wrapped producer's file shrank while being read
            (its ``truncated`` flag): the connection is then aborted by the channel, so the
            client cannot take a shortened file for the whole one.
    """

    __slots__ = ("_compressor", "_done", "_producer")

    def __init__(self, producer: Producer, level: int = 6) -> None:
        self._producer = producer
        # wbits 16 + 15: a gzip header and trailer around a deflate stream, 32 KiB window.
        self._compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        self._done = False

    def more(self) -> bytes:
        """Return the next piece of the gzip stream; ``b""`` once it ended."""
        if self._done:
            return b""
        compressor = self._compressor
        while True:
            data = self._producer.more()
            if not data:
                if getattr(self._producer, "truncated", False):
                    raise OSError("the file shrank while being compressed")
                self._done = True
                return compressor.flush()
            coded = compressor.compress(data)
            if coded:
                return coded

    def close(self) -> None:
        """Close the wrapped producer if it can be closed (an open file)."""
        close = getattr(self._producer, "close", None)
        if close is not None:
            close()
