"""Zero-copy file sending for channels: ``os.sendfile`` on the socket of a plain TCP or
Unix transport, on the standard loop and on uvloop (which has no ``loop.sendfile``), and
``TCP_CORK`` so that a response's headers share segments with its file (nginx's
``tcp_nopush``).

Bytes stay in order because ``sendfile`` runs only while the transport's own buffer is
empty. When the socket is full, the channel waits for it to become writable without copying
anything: a duplicate of the socket's descriptor is watched with ``loop.add_writer`` (both
loops refuse a writer on a transport's own descriptor, not on a duplicate), and sending goes
on from :meth:`Channel._refill` when the socket has room. Where that watch cannot be set,
the rest of the file goes through the transport (``more()``), as without ``sendfile``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from medusa.core.log import error_logger
from medusa.core.producers import FileProducer

if TYPE_CHECKING:
    from medusa.core.channel import Channel

__all__ = ["HAVE_SENDFILE", "release", "send_file", "set_cork", "stop_waiting"]

HAVE_SENDFILE = hasattr(os, "sendfile")
"""Whether this platform has ``os.sendfile``."""

SENDFILE_MAX = 1 << 30
"""Largest count passed to one ``os.sendfile`` call, bytes."""

SENDFILE_SLICE = 8 << 20
"""Bytes one :func:`send_file` call may send before it lets the loop run other callbacks
(a fast reader must not monopolize the loop)."""

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


def send_file(
    channel: Channel, producer: FileProducer, transport: asyncio.Transport
) -> bool | None:
    """Send ``producer``'s file with ``os.sendfile`` on the channel's socket.

    Args:
        channel: the channel whose fifo holds ``producer`` at its head.
        producer: the file, offset and remaining count to send.
        transport: the channel's transport (a plain socket, not TLS).

    Returns:
        True when the file is fully sent (or the connection was aborted); False when
        waiting for the socket to drain (or, after :data:`SENDFILE_SLICE` bytes, for the
        next loop iteration); None when ``sendfile`` cannot send this file (the caller
        falls back to ``more()``; what was sent so far is recorded in the producer).
    """
    if producer.remaining <= 0:
        producer.close()
        return True
    if channel in _WAITING:
        return False  # the socket is full: _writable continues
    try:
        infd = producer.file.fileno()
    except (AttributeError, OSError, ValueError):
        return None  # no descriptor (io.BytesIO): the buffered path reads it
    if transport.get_write_buffer_size():
        channel._wait_for_drain(transport)
        return False
    sock: Any = transport.get_extra_info("socket")
    try:
        fd = sock.fileno()
    except (AttributeError, OSError):
        channel._sockfd = -1
        return None
    counters = channel.server.counters if channel.server is not None else None
    budget = SENDFILE_SLICE
    while producer.remaining > 0:
        if budget <= 0:
            # Let other channels run; continue from the next loop iteration.
            asyncio.get_running_loop().call_soon(channel._refill)
            return False
        try:
            sent = os.sendfile(fd, infd, producer.offset, min(producer.remaining, SENDFILE_MAX))
        except BlockingIOError:
            # The socket is full: wait until it has room, copying nothing.
            if _wait_writable(channel, fd):
                return False
            channel._sockfd = -1  # no watch possible: the buffered path from here on
            return None
        except OSError as exc:
            if exc.errno in _NO_SENDFILE:
                channel._sockfd = -1  # not for this socket or file: buffered from now on
                return None
            if exc.errno not in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                error_logger.warning("sendfile to %r failed: %s", channel.peer, exc)
            producer.close()
            channel.abort()
            return True
        if sent == 0:
            # The file is shorter than promised: the response cannot be completed.
            error_logger.warning("file shrank while being sent to %r", channel.peer)
            producer.truncated = True
            producer.close()
            if counters is not None:
                counters.errors += 1
            channel.abort()
            return True
        producer.advance(sent)
        budget -= sent
        channel.bytes_out += sent
        if counters is not None:
            counters.bytes_out += sent
    channel.last_activity = time.monotonic()
    if channel._corked:
        set_cork(channel, False)
    return True


_WAITING: dict[Channel, int] = {}
"""Channels waiting for their socket to take more of a file: the duplicate descriptor
watched for each."""


def _wait_writable(channel: Channel, fd: int) -> bool:
    """Watch a duplicate of the socket descriptor ``fd`` until it is writable, then go on
    with the channel's output; False when the loop cannot watch it."""
    loop = asyncio.get_running_loop()
    try:
        dup = os.dup(fd)
    except OSError:
        return False
    try:
        loop.add_writer(dup, _writable, channel)
    except (OSError, RuntimeError, NotImplementedError, ValueError):
        os.close(dup)
        return False
    _WAITING[channel] = dup
    return True


def _writable(channel: Channel) -> None:
    stop_waiting(channel)
    channel._refill()


def stop_waiting(channel: Channel) -> None:
    """Stop watching the channel's socket for room (it has room, or the connection is
    gone): the duplicate descriptor is closed. Nothing happens to a channel not waiting."""
    dup = _WAITING.pop(channel, None)
    if dup is not None:
        with contextlib.suppress(Exception):
            asyncio.get_running_loop().remove_writer(dup)
        os.close(dup)


_CORK_SOCKETS: dict[Channel, socket.socket] = {}
"""A socket object over the descriptor of each channel that corked its socket, made on its
first cork and kept until the connection is lost (:func:`release`): uvloop's transport
socket makes a new socket object, with a ``getsockname`` system call, for each
``setsockopt``; this one makes a single call per connection."""


def set_cork(channel: Channel, on: bool) -> None:
    """Set or clear ``TCP_CORK`` on the channel's socket; a socket or platform without it
    (Unix sockets, non-Linux) is left alone, and so is a closing transport (its descriptor
    may be closed already)."""
    transport = channel.transport
    if _TCP_CORK is None or transport is None or transport.is_closing():
        channel._corked = False
        return
    sock = _CORK_SOCKETS.get(channel)
    try:
        if sock is None:
            base: Any = transport.get_extra_info("socket")
            sock = socket.socket(base.family, base.type, base.proto, base.fileno())
            _CORK_SOCKETS[channel] = sock
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, 1 if on else 0)
    except (OSError, AttributeError, ValueError):
        release(channel)
        channel._corked = False
        return
    channel._corked = on


def release(channel: Channel) -> None:
    """Forget the channel's socket: called when its connection is lost (the descriptor,
    which the transport owns, is left open for it to close). Nothing happens to a channel
    that never corked."""
    sock = _CORK_SOCKETS.pop(channel, None)
    if sock is not None:
        sock.detach()
