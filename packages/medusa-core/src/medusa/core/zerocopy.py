"""Zero-copy file sending for channels: ``os.sendfile`` on the socket of a plain TCP or
Unix transport, on the standard loop and on uvloop (which has no ``loop.sendfile``), and
``TCP_CORK`` so that a response's headers share segments with its file (nginx's
``tcp_nopush``).

Bytes stay in order because ``sendfile`` runs only while the transport's own buffer is
empty. When the socket is full, a small piece goes through the transport with its write
limits at zero, so the transport calls ``resume_writing`` once the socket has room and
sending goes on from :meth:`Channel._refill`.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import time
from typing import TYPE_CHECKING, Any

from medusa.core.log import error_logger
from medusa.core.producers import FileProducer

if TYPE_CHECKING:
    from medusa.core.channel import Channel

__all__ = ["HAVE_SENDFILE", "send_file", "set_cork"]

HAVE_SENDFILE = hasattr(os, "sendfile")
"""Whether this platform has ``os.sendfile``."""

SENDFILE_MAX = 1 << 30
"""Largest count passed to one ``os.sendfile`` call, bytes."""

SENDFILE_SLICE = 8 << 20
"""Bytes one :func:`send_file` call may send before it lets the loop run other callbacks
(a fast reader must not monopolize the loop)."""

BRIDGE_SIZE = 16384
"""Bytes copied through the transport when ``os.sendfile`` would block: the transport's
buffered write tells the channel (``resume_writing``) when the socket has room again."""

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
            # The socket is full: copy a small piece through the transport, which buffers
            # it and tells the channel (resume_writing) when the socket has room.
            sent = 0
            data = os.pread(infd, min(BRIDGE_SIZE, producer.remaining), producer.offset)
            if data:
                producer.advance(len(data))
                channel.bytes_out += len(data)
                if counters is not None:
                    counters.bytes_out += len(data)
                transport.write(data)
                if transport.get_write_buffer_size():
                    channel._wait_for_drain(transport)
                    return False
                continue
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


def set_cork(channel: Channel, on: bool) -> None:
    """Set or clear ``TCP_CORK`` on the channel's socket; a socket or platform without it
    (Unix sockets, non-Linux) is left alone."""
    transport = channel.transport
    sock: Any = transport.get_extra_info("socket") if transport is not None else None
    try:
        if _TCP_CORK is None:
            raise AttributeError("TCP_CORK")
        sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, 1 if on else 0)
    except (OSError, AttributeError):
        channel._corked = False
        return
    channel._corked = on
