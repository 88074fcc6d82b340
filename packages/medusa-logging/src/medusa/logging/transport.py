"""Blocking socket plumbing for the writer threads: connect, send whole frames, notice a
closed peer.

Only writer threads call these; the event loop never does.
"""

from __future__ import annotations

import select
import socket
from collections.abc import Callable, Iterable, Sequence

from medusa.core.address import Address
from medusa.logging.queued import PartialWriteError

__all__ = [
    "connect_datagram",
    "connect_stream",
    "peer_closed",
    "send_datagrams",
    "send_frames",
    "send_stream",
]


def connect_stream(address: Address, timeout: float) -> socket.socket:
    """Open a TCP connection (``host:port``) or a Unix stream connection (``unix:/path``).

    Args:
        address: where to connect.
        timeout: seconds for the connect and for each later send.

    Raises:
        OSError: when the connection cannot be made (refused, unreachable, no such name).
    """
    if address.path is not None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(address.path)
        except OSError:
            sock.close()
            raise
        return sock
    sock = socket.create_connection((address.host or "127.0.0.1", address.port), timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.settimeout(timeout)
    return sock


def connect_datagram(address: Address, timeout: float) -> socket.socket:
    """Open a connected UDP socket (``host:port``) or Unix datagram socket (``unix:/path``,
    such as ``/dev/log``), so that errors (refused, missing socket) surface on send.

    Raises:
        OSError: when the name cannot be resolved or the Unix socket cannot be reached.
    """
    if address.path is not None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        target: str | tuple[str, int] = address.path
    else:
        host = address.host or "127.0.0.1"
        info = socket.getaddrinfo(host, address.port, type=socket.SOCK_DGRAM)
        family, kind, proto, _, sockaddr = info[0]
        sock = socket.socket(family, kind, proto)
        target = sockaddr[:2]  # type: ignore[assignment]
    try:
        sock.settimeout(timeout)
        sock.connect(target)
    except OSError:
        sock.close()
        raise
    return sock


def peer_closed(sock: socket.socket) -> bool:
    """True when a stream peer has closed its side (EOF or reset pending): writing now would
    lose data the peer never reads. Syslog receivers send nothing, so anything readable is
    the end."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True
    return not data


def send_frames(sock: socket.socket, frames: Sequence[bytes]) -> None:
    """Send ``frames`` back to back on a stream socket (see :func:`send_stream`).

    Raises:
        PartialWriteError: as :func:`send_stream`.
    """
    send_stream(sock, b"".join(frames), lambda: [len(f) for f in frames])


def send_stream(sock: socket.socket, data: bytes, sizes: Callable[[], Iterable[int]]) -> None:
    """Send ``data``, a batch of records back to back, on a stream socket, with as few
    system calls as the socket's buffer allows.

    Args:
        sock: a connected stream socket (blocking, with a timeout).
        data: the records' bytes, concatenated.
        sizes: called only after a failure: the byte length of each record in ``data``, in
            order (so that a batch can be encoded in one piece and measured only when needed).

    Raises:
        PartialWriteError: when sending failed; ``written`` is the number of records that went
            out completely (a record cut in the middle is lost with the connection, so it is
            counted as not written and sent again after the reconnect).
    """
    view = memoryview(data)
    sent = 0
    try:
        while sent < len(data):
            sent += sock.send(view[sent:])
    except OSError as exc:
        complete = 0
        end = 0
        for size in sizes():
            end += size
            if end > sent:
                break
            complete += 1
        raise PartialWriteError(complete, exc) from exc


def send_datagrams(sock: socket.socket, datagrams: Sequence[bytes]) -> None:
    """Send one datagram per message on a connected datagram socket.

    Raises:
        PartialWriteError: when a send failed; ``written`` datagrams went out before it.
    """
    for index, datagram in enumerate(datagrams):
        try:
            sock.send(datagram)
        except OSError as exc:
            raise PartialWriteError(index, exc) from exc
