"""Zero-copy file sending: ``os.sendfile`` on the socket of a plain TCP or Unix transport,
on the standard loop and on uvloop (which has no ``loop.sendfile``), and ``TCP_CORK`` so
that a response's headers share segments with its file (nginx's ``tcp_nopush``).

A :class:`ZeroCopySender` holds one connection's zero-copy state (whether ``sendfile``
works on its socket, the cork, the socket watched for room); the channel makes one when
it first sends a file (an idle connection holds none) and acts on what
:meth:`ZeroCopySender.send` returns: the sender never calls the channel, it is given the
transport, the file and the callback to run when the socket has room.

Bytes stay in order because ``sendfile`` runs only while the transport's own buffer is
empty (:data:`DRAIN` asks the caller to wait for that). When the socket is full, the sender
waits for it to become writable without copying anything: a duplicate of the socket's
descriptor is watched with ``loop.add_writer`` (both loops refuse a writer on a transport's
own descriptor, not on a duplicate). Where that watch cannot be set, or ``sendfile`` does
not work on the socket, the sender says :data:`UNSUPPORTED` from then on and files go
through the transport (``more()``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
from collections.abc import Callable
from typing import Any

from medusa.core.producers import FileProducer

__all__ = [
    "BROKEN",
    "DONE",
    "DRAIN",
    "HAVE_SENDFILE",
    "SENDFILE_MAX",
    "SENDFILE_SLICE",
    "SHRANK",
    "UNSUPPORTED",
    "WAITING",
    "YIELD",
    "ZeroCopySender",
]

HAVE_SENDFILE = hasattr(os, "sendfile")
"""Whether this platform has ``os.sendfile``."""

SENDFILE_MAX = 1 << 30
"""Largest count passed to one ``os.sendfile`` call, bytes."""

SENDFILE_SLICE = 8 << 20
"""Bytes one :meth:`ZeroCopySender.send` call may send before it lets the loop run other
callbacks (a fast reader must not monopolize the loop)."""

DONE = 0
"""The file is sent (its producer closed)."""
WAITING = 1
"""The socket is full: the sender watches it and runs the callback once it has room."""
DRAIN = 2
"""The transport still holds bytes: the caller waits until its buffer is empty."""
YIELD = 3
""":data:`SENDFILE_SLICE` bytes were sent: the caller goes on at the next loop iteration."""
UNSUPPORTED = 4
"""``sendfile`` cannot send this file (no descriptor) or on this socket (then never again):
the caller reads the rest with ``more()``; what was sent is recorded in the producer."""
BROKEN = 5
"""The peer is gone (``EPIPE``, ``ECONNRESET``): the producer is closed, the caller aborts."""
SHRANK = 6
"""The file ended before its count (``producer.truncated`` is set, the producer closed):
the response cannot be completed, the caller aborts."""

_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)

_NO_SENDFILE = frozenset(
    e
    for e in (
        errno.EINVAL,
        errno.ENOSYS,
        errno.ENOTSUP,
        errno.EOPNOTSUPP,
        errno.ESPIPE,
        getattr(errno, "EOVERFLOW", None),
    )
    if e is not None
)
"""``os.sendfile`` errors meaning "not for this file or socket": use ``more()`` instead."""

_GONE = frozenset((errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN))
"""``os.sendfile`` errors meaning the peer is gone (no log line)."""


class ZeroCopySender:
    """One connection's zero-copy sending: ``os.sendfile`` on its socket, ``TCP_CORK``,
    and the watch for room in a full socket.

    Attributes:
        usable: False once ``sendfile`` proved impossible on the socket (every later
            :meth:`send` says :data:`UNSUPPORTED`).
        corked: whether ``TCP_CORK`` is set (by :meth:`set_cork`).
    """

    __slots__ = ("_cork_socket", "_watched", "corked", "usable")

    def __init__(self) -> None:
        self.usable = True
        self.corked = False
        # A socket object over the transport's descriptor, made at the first cork and kept
        # until close(): uvloop's transport socket makes a new socket object, with a
        # getsockname system call, for each setsockopt; this one makes a single call.
        self._cork_socket: socket.socket | None = None
        self._watched = -1  # the duplicate descriptor watched for room, or -1

    @property
    def waiting(self) -> bool:
        """True while the sender watches the socket for room (:data:`WAITING`)."""
        return self._watched >= 0

    def send(
        self,
        producer: FileProducer,
        transport: asyncio.Transport,
        on_writable: Callable[[], None],
    ) -> int:
        """Send ``producer``'s file with ``os.sendfile`` on ``transport``'s socket, from
        ``producer.offset`` for ``producer.remaining`` bytes (both advanced as it goes),
        at most :data:`SENDFILE_SLICE` bytes in one call; uncork once it is complete.

        Args:
            producer: the file (a descriptor, an offset and a count of bytes).
            transport: a plain (not TLS) transport whose own buffer the caller keeps
                empty of anything meant to follow the file.
            on_writable: called from the loop once a full socket has room again (after
                :data:`WAITING`).

        Returns:
            One of :data:`DONE`, :data:`WAITING`, :data:`DRAIN`, :data:`YIELD`,
            :data:`UNSUPPORTED`, :data:`BROKEN`, :data:`SHRANK`.

        Raises:
            OSError: ``sendfile`` failed for another reason (the producer is closed; the
                caller logs it and aborts the connection).
        """
        if producer.remaining <= 0:
            producer.close()
            return DONE
        if self._watched >= 0:
            return WAITING  # the socket is full: on_writable continues
        if not self.usable:
            return UNSUPPORTED
        try:
            infd = producer.file.fileno()
        except (AttributeError, OSError, ValueError):
            return UNSUPPORTED  # no descriptor (io.BytesIO): the buffered path reads it
        if transport.get_write_buffer_size():
            return DRAIN
        sock: Any = transport.get_extra_info("socket")
        try:
            fd = sock.fileno()
        except (AttributeError, OSError):
            self.usable = False
            return UNSUPPORTED
        budget = SENDFILE_SLICE
        while producer.remaining > 0:
            if budget <= 0:
                return YIELD
            try:
                sent = os.sendfile(fd, infd, producer.offset, min(producer.remaining, SENDFILE_MAX))
            except BlockingIOError:
                # The socket is full: wait until it has room, copying nothing.
                if self._watch(fd, on_writable):
                    return WAITING
                self.usable = False  # no watch possible: the buffered path from here on
                return UNSUPPORTED
            except OSError as exc:
                if exc.errno in _NO_SENDFILE:
                    self.usable = False  # not for this socket or file: buffered from now on
                    return UNSUPPORTED
                producer.close()
                if exc.errno in _GONE:
                    return BROKEN
                raise
            if sent == 0:
                producer.truncated = True
                producer.close()
                return SHRANK
            producer.advance(sent)
            budget -= sent
        if self.corked:
            self.set_cork(transport, False)
        return DONE

    def _watch(self, fd: int, on_writable: Callable[[], None]) -> bool:
        """Watch a duplicate of the socket descriptor ``fd`` until it is writable, then
        call ``on_writable``; False when the loop cannot watch it."""
        loop = asyncio.get_running_loop()
        try:
            dup = os.dup(fd)
        except OSError:
            return False
        try:
            loop.add_writer(dup, self._writable, on_writable)
        except (OSError, RuntimeError, NotImplementedError, ValueError):
            os.close(dup)
            return False
        self._watched = dup
        return True

    def _writable(self, on_writable: Callable[[], None]) -> None:
        self.stop_waiting()
        on_writable()

    def stop_waiting(self) -> None:
        """Stop watching the socket for room (it has room, or the connection is gone):
        the duplicate descriptor is closed. Nothing happens when not waiting."""
        dup = self._watched
        if dup >= 0:
            self._watched = -1
            with contextlib.suppress(Exception):
                asyncio.get_running_loop().remove_writer(dup)
            os.close(dup)

    def set_cork(self, transport: asyncio.Transport, on: bool) -> None:
        """Set or clear ``TCP_CORK`` on ``transport``'s socket; a socket or platform
        without it (Unix sockets, non-Linux) is left alone, and so is a closing transport
        (its descriptor may be closed already). :attr:`corked` tells the outcome."""
        if _TCP_CORK is None or transport.is_closing():
            self.corked = False
            return
        sock = self._cork_socket
        try:
            if sock is None:
                base: Any = transport.get_extra_info("socket")
                sock = socket.socket(base.family, base.type, base.proto, base.fileno())
                self._cork_socket = sock
            sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, 1 if on else 0)
        except (OSError, AttributeError, ValueError):
            self.forget_socket()
            self.corked = False
            return
        self.corked = on

    def forget_socket(self) -> None:
        """Let go of the socket object made for the cork (the descriptor, which the
        transport owns, is left open for it to close)."""
        sock = self._cork_socket
        if sock is not None:
            self._cork_socket = None
            sock.detach()

    def close(self) -> None:
        """The connection is lost: stop waiting and let go of the socket."""
        self.stop_waiting()
        self.forget_socket()
