"""A read-only file object over a descriptor that is already open and checked.

The file handler opens a file through :meth:`~medusa.core.filesys.Filesystem.open_read`,
which returns the descriptor with its ``fstat``. Wrapping that descriptor with ``open()``
(an :class:`io.FileIO`) would ``fstat`` it a second time, to refuse directories, for every
large response; :class:`DescriptorFile` gives
:class:`~medusa.core.producers.FileProducer` what it uses (``fileno``, ``read``, ``seek``,
``close``) and makes no system call of its own until it is read or closed.
"""

from __future__ import annotations

import os

__all__ = ["DescriptorFile"]


class DescriptorFile:
    """A binary file open for reading, over the descriptor ``fd``, which it owns (it is
    closed by :meth:`close`).

    Args:
        fd: an open descriptor of a regular file.
    """

    __slots__ = ("_fd",)

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def fileno(self) -> int:
        """Return the descriptor.

        Raises:
            ValueError: once the file was closed (as a closed file object does).
        """
        if self._fd < 0:
            raise ValueError("I/O operation on closed file")
        return self._fd

    def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (all the rest for a negative ``size``) from the current
        position; ``b""`` at the end.

        Raises:
            ValueError: once the file was closed.
            OSError: from the read.
        """
        fd = self.fileno()
        if size >= 0:
            return os.read(fd, size)
        parts = []
        while part := os.read(fd, 1 << 16):
            parts.append(part)
        return b"".join(parts)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        """Move the position (bytes); return the new one.

        Raises:
            ValueError: once the file was closed.
            OSError: from ``lseek``.
        """
        return os.lseek(self.fileno(), offset, whence)

    def close(self) -> None:
        """Close the descriptor (idempotent)."""
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._fd < 0

    def __del__(self) -> None:
        # A file object closes its descriptor when it is dropped; so does this one (every
        # path through the channel closes it before).
        self.close()

    def __repr__(self) -> str:
        return f"<DescriptorFile fd={self._fd}>"
