"""``wsgi.file_wrapper`` (PEP 3333 "Optional Platform-Specific File Handling").

An application returns ``environ["wsgi.file_wrapper"](file, block_size)`` to send a file.
When ``file`` is a regular file with a descriptor (``fileno()``), the server sends it from
its current position with ``sendfile`` (zero-copy, :mod:`medusa.core.zerocopy`), as the
file handler sends static files; any other file-like object (``io.BytesIO``, a pipe, a
socket file) is read ``block_size`` bytes at a time like any response iterable. The file is
closed by the wrapper's ``close()``, which the server calls once the response is sent.
"""

from __future__ import annotations

import os
import stat
from typing import Any

__all__ = ["FileWrapper", "sendable_file"]


class FileWrapper:
    """An iterable over a file's blocks that the server may send with ``sendfile``.

    Args:
        filelike: an object with ``read(size)``, and ideally ``fileno()`` and ``tell()``;
            its ``close()``, if any, is called by :meth:`close`.
        block_size: bytes per block when the file is read rather than sent with
            ``sendfile`` (> 0).
    """

    __slots__ = ("block_size", "filelike")

    def __init__(self, filelike: Any, block_size: int = 65536) -> None:
        self.filelike = filelike
        self.block_size = block_size if block_size > 0 else 65536

    def __iter__(self) -> FileWrapper:
        return self

    def __next__(self) -> bytes:
        data = self.filelike.read(self.block_size)
        if data:
            return bytes(data)
        raise StopIteration

    def close(self) -> None:
        """Close the file (PEP 3333: the server calls this when the response ends)."""
        close = getattr(self.filelike, "close", None)
        if close is not None:
            close()


def sendable_file(wrapper: FileWrapper) -> tuple[Any, int, int] | None:
    """Return ``(file, offset, size)`` when ``wrapper`` holds a regular file that
    ``sendfile`` can send: its object, its current position and its size in bytes; else
    None (it is then read block by block)."""
    filelike = wrapper.filelike
    try:
        fd = filelike.fileno()
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        offset = filelike.tell()
    except (AttributeError, OSError, ValueError):
        return None
    return filelike, offset, max(info.st_size - offset, 0)
