"""What a transfer moves: an upload's file (written under a temporary name, made durable
with ``fsync`` and renamed on completion, so that an aborted upload never leaves half a
file under the real name and a completed one survives a crash), the ``TYPE A`` download
producer, and the record of one transfer for the transfer log.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from typing import BinaryIO

from medusa.core.producers import Producer
from medusa.core.uploads import ftp_temporary_name, lock_upload
from medusa.core.vfs import Filesystem
from medusa.ftp.linefeeds import FromNetwork, ToNetwork

__all__ = ["AsciiProducer", "Transfer", "UploadFile"]


class UploadFile:
    """The file an upload writes to.

    ``STOR`` and ``STOU`` write a temporary file beside the target
    (``.name.XXXXXXXX.part``, see :mod:`medusa.core.uploads`), locked with ``flock``
    while the upload runs (so that :func:`medusa.core.uploads.remove_stale_uploads` can
    tell a live upload from one a killed process left) and renamed over the target by
    :meth:`commit`; :meth:`discard` removes it. ``APPE`` and a ``STOR`` resumed with
    ``REST`` write the target itself (the client asked to continue that very file).

    Completing an upload takes three steps: :meth:`finish` (on the loop's thread),
    :meth:`sync` (``fsync``, which may take long: in a worker thread), then :meth:`commit`
    (the rename, as the user).

    Args:
        fs: the session's filesystem (file operations run as the user there).
        path: the virtual path of the target.
        offset: for a resumed ``STOR``: where writing starts in the existing file (bytes);
            the file is cut there when the first data arrives (or at completion), never
            before, so that an upload without data leaves it as it was.
        append: ``APPE``: add to the end of the target (created if missing).
        ascii: ``TYPE A``: CRLF from the network becomes LF.
        exclusive: ``STOU``: the commit fails rather than replace an existing file.

    Attributes:
        replaces: True when the upload goes to a temporary file that replaces the target
            (``STOR``, ``STOU``), False when it writes the target itself.
        written: bytes written to the file.
        temp: the virtual path of the temporary file, ``None`` when the target itself is
            written (or once renamed or removed).

    Raises:
        OSError: when the file cannot be opened or created (with the virtual path).
    """

    def __init__(
        self,
        fs: Filesystem,
        path: str,
        *,
        offset: int = 0,
        append: bool = False,
        ascii: bool = False,
        exclusive: bool = False,
    ) -> None:
        self.fs = fs
        self.path = fs.normalize(path)
        self.exclusive = exclusive
        self.replaces = not (append or offset)
        self.written = 0
        self._decoder = FromNetwork() if ascii else None
        self.temp: str | None = None
        self._truncate_at: int | None = None
        if append:
            self.file: BinaryIO = fs.open(self.path, "ab")
        elif offset:
            # RFC 959 §4.1.3 (REST): the file restarts at the marker. The target is cut
            # there only when the first data arrives (or at completion of an empty
            # upload): a resumed STOR that never gets its data connection (425) or is
            # aborted before any data leaves the file exactly as it was.
            self.file = fs.open(self.path, "r+b")
            try:
                self.file.seek(offset)
            except BaseException:
                self.file.close()
                raise
            self._truncate_at = offset
        else:
            temp = ftp_temporary_name(self.path)
            self.file = fs.open(temp, "xb")
            self.temp = temp
            lock_upload(self.file.fileno())  # a filesystem without locks: no marker

    def write(self, data: bytes) -> None:
        """Write ``data`` (converted in ``TYPE A``).

        Raises:
            OSError: when the disk refuses it (full, quota).
        """
        if self._decoder is not None:
            data = self._decoder.convert(data)
        if data:
            self._cut()
        self.file.write(data)
        self.written += len(data)

    def _cut(self) -> None:
        """A resumed ``STOR``'s first data (or its completion): cut the target at the
        ``REST`` offset, once."""
        if self._truncate_at is not None:
            offset, self._truncate_at = self._truncate_at, None
            self.file.truncate(offset)
            self.file.seek(offset)

    def finish(self) -> None:
        r"""All data arrived: write what ``TYPE A`` conversion held back and flush the
        file's buffer to the kernel.

        Raises:
            OSError: when the disk refuses it (the caller then :meth:`discard`\ s).
        """
        if self._decoder is not None:
            rest = self._decoder.flush()
            if rest:
                self._cut()
                self.file.write(rest)
                self.written += len(rest)
        self._cut()  # an empty resumed STOR: the file ends at the offset
        self.file.flush()

    def sync(self) -> None:
        """``fsync`` the file: its data reaches the disk before :meth:`commit` makes it
        visible under the target's name. Safe in a worker thread (it touches only the
        open descriptor).

        Raises:
            OSError: when the disk reports an error.
        """
        os.fsync(self.file.fileno())

    def commit(self) -> None:
        """Close the file and rename the temporary file to the target.

        Raises:
            FileExistsError: for ``STOU`` when the target appeared meanwhile (the
                temporary file is removed).
            OSError: when the file cannot be closed or renamed (it is removed).
        """
        try:
            self.file.close()
            if self.temp is not None:
                if self.exclusive and self.fs.exists(self.path):
                    raise FileExistsError(17, "File exists", self.path)
                self.fs.rename(self.temp, self.path)
                self.temp = None
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        """Give up: close the file and remove the temporary file (the target is left as it
        was). Never raises."""
        with contextlib.suppress(OSError):
            self.file.close()
        temp, self.temp = self.temp, None
        if temp is not None:
            with contextlib.suppress(OSError):
                self.fs.remove(temp)


class AsciiProducer:
    """A download in ``TYPE A``: another producer's bytes with LF turned into CRLF.

    Args:
        inner: the file's producer.
    """

    __slots__ = ("_encoder", "_inner")

    def __init__(self, inner: Producer) -> None:
        self._inner = inner
        self._encoder = ToNetwork()

    def more(self) -> bytes:
        """Return the next converted piece, ``b""`` at the end."""
        data = self._inner.more()
        return self._encoder.convert(data) if data else b""

    def close(self) -> None:
        """Close the inner producer (its file)."""
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


@dataclass(slots=True)
class Transfer:
    """One transfer on a data connection, from its command to its end.

    Attributes:
        verb: the command (``RETR``, ``STOR``, ``LIST``...).
        path: the virtual path transferred (for the log; a directory for listings).
        producer: what to send (downloads and listings).
        upload: where to write (uploads).
        ascii: ``TYPE A``.
        started: :func:`time.monotonic` time of the command.
        connected: True once the data connection is up.
        bytes: bytes moved, known at the end.
        size: the file's size when known (for the log).
        storing: an upload whose data all arrived, being synced and renamed.
        window_start: :func:`time.monotonic` time the current rate window began (the
            data timeout's check of the minimum rate).
        window_bytes: bytes moved when it began.
    """

    verb: str
    path: str
    producer: Producer | None = None
    upload: UploadFile | None = None
    ascii: bool = False
    started: float = field(default_factory=time.monotonic)
    connected: bool = False
    bytes: int = 0
    size: int = 0
    storing: bool = False
    window_start: float = 0.0
    window_bytes: int = 0

    @property
    def incoming(self) -> bool:
        """True for uploads."""
        return self.upload is not None

    @property
    def is_file(self) -> bool:
        """True for file transfers (logged in the transfer log), False for listings."""
        return self.verb in ("RETR", "STOR", "STOU", "APPE")

    def release(self) -> None:
        """Free what the transfer holds when it ends without running: close the producer's
        file, discard the upload."""
        if self.upload is not None:
            self.upload.discard()
        close = getattr(self.producer, "close", None)
        if close is not None:
            with contextlib.suppress(OSError):
                close()
