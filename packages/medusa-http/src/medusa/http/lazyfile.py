"""A file opened only when its bytes are about to be sent.

A pipelined response (RFC 9112 §9.3.2) waits behind the responses before it on the same
connection. If it held its file open while waiting, a client that pipelines many requests
for a large file and never reads would make the server hold one descriptor per request
(64 per connection with ``max_pipeline`` 64) and run the process out of descriptors. So
the file handler, when a response cannot go to the socket at once, decides the response
from a first open (status, length, validators), closes that descriptor, and gives the
response a :class:`LazyFile`: the file is opened again by its checked real path only when
the channel starts sending it (``fileno()`` from the zero-copy path, or ``more()``), and
closed when it is sent. A connection then holds at most one open file, the one being sent.

The second open must find the very file the response describes: the same device, inode,
size and modification time. A file replaced, changed or removed in between (or an open that
fails, out of descriptors for instance) cannot be sent under the length already announced:
the failure is logged and the connection is cut, as for a file that shrinks while it is sent.
"""

from __future__ import annotations

import errno
import os

from medusa.core.log import error_logger, printable

__all__ = ["LazyFile"]

_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)


def _identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


class LazyFile:
    """The file-object part that :class:`~medusa.core.producers.FileProducer` uses
    (``fileno``, ``seek``, ``read``, ``close``), opening the file on the first ``fileno()``.

    Args:
        real: the file's real path, as checked against the served root when the response
            was decided (``OpenFile.real``).
        st: the file's ``stat`` at that time; the second open must match its device,
            inode, size and modification time (ns).

    ``fileno()`` raises :class:`OSError` when the file cannot be opened again or is no
    longer the same (logged once, with the path and the reason); ``read()`` then returns
    ``b""``, which the producer reports as a file cut short, and the channel closes the
    connection.
    """

    __slots__ = ("_fd", "_identity", "_state", "real")

    def __init__(self, real: str, st: os.stat_result) -> None:
        self.real = real
        self._identity = _identity(st)
        self._fd = -1
        self._state = "waiting"  # then "open", "failed" or "closed"

    def fileno(self) -> int:
        """Return the descriptor, opening the file on the first call.

        Raises:
            OSError: when the file cannot be opened, is no longer the one described
                (``ESTALE``), or was closed already (``EBADF``).
        """
        if self._fd >= 0:
            return self._fd
        if self._state != "waiting":
            raise OSError(errno.EBADF, f"{self.real}: {self._state}")
        try:
            fd = os.open(self.real, _FLAGS)
        except OSError as exc:
            self._fail(exc.strerror or str(exc))
            raise
        try:
            same = _identity(os.fstat(fd)) == self._identity
        except OSError:
            same = False
        if not same:
            os.close(fd)
            self._fail("the file changed after its response head was made")
            raise OSError(errno.ESTALE, "file changed", self.real)
        self._fd = fd
        self._state = "open"
        return fd

    def _fail(self, reason: str) -> None:
        self._state = "failed"
        error_logger.warning(
            "cannot send %s in a pipelined response: %s", printable(self.real), reason
        )

    def seek(self, offset: int, whence: int = 0) -> int:
        """Reached only when ``fileno()`` failed: nothing to position."""
        return offset

    def read(self, size: int = -1) -> bytes:
        """Reached only when ``fileno()`` failed: the file is cut short (``b""``)."""
        return b""

    def close(self) -> None:
        """Close the descriptor if the file was opened (idempotent)."""
        fd, self._fd = self._fd, -1
        if self._state != "failed":
            self._state = "closed"
        if fd >= 0:
            os.close(fd)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called or opening failed."""
        return self._state in ("closed", "failed")
