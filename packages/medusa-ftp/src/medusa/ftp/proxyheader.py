"""Reading a PROXY protocol header (HAProxy's ``proxy-protocol.txt``, versions 1 and 2) off
an accepted passive data socket, before any transport exists for it.

Behind HAProxy in TCP mode the passive port range is forwarded too, so a data connection
arrives from HAProxy's address; with ``send-proxy``/``send-proxy-v2`` on that backend its
first bytes are a header naming the client, and the port-theft check (RFC 2577 §5) compares
that client with the session's. The control connection's header is read by
:class:`~medusa.core.channel.Channel`; a data connection cannot use that path because under
``PROT P`` (RFC 4217 §9) its TLS handshake runs before the channel sees a byte, while the
header comes before the handshake. So the header is read here from the raw socket, exactly
its bytes and no more (the bytes after it, a TLS ClientHello or an upload's first bytes,
stay in the socket for the transport): each read peeks at what arrived, the sans-IO parser
(:func:`medusa.core.proxyprotocol.parse_proxy_header`) says where the header ends, and only
that much is consumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

from medusa.core.proxyprotocol import (
    MAX_V2_LENGTH,
    ProxyHeader,
    ProxyProtocolError,
    parse_proxy_header,
)

__all__ = ["read_proxy_header"]

_PEEK_LIMIT = 16 + MAX_V2_LENGTH
"""Bytes looked at once: the longest header accepted (a version 2 header's fixed part and
its largest accepted body)."""


class _HeaderReader:
    """Consumes a header from a non-blocking socket as its bytes arrive."""

    def __init__(self, sock: socket.socket, future: asyncio.Future[ProxyHeader]) -> None:
        self.sock = sock
        self.future = future
        self.buffer = b""

    def readable(self) -> None:
        if self.future.done():
            return
        sock = self.sock
        try:
            peeked = sock.recv(_PEEK_LIMIT - len(self.buffer), socket.MSG_PEEK)
            if not peeked:
                raise ProxyProtocolError("connection closed before its PROXY header")
            result = parse_proxy_header(self.buffer + peeked)
            # Incomplete: everything that arrived belongs to the header; complete: only
            # its bytes are taken, the client's own bytes stay in the socket.
            wanted = len(peeked) if result is None else result[1] - len(self.buffer)
            taken = sock.recv(wanted)
        except (BlockingIOError, InterruptedError):
            return
        except (OSError, ProxyProtocolError) as exc:
            self.future.set_exception(exc)
            return
        self.buffer += taken
        if result is not None and len(taken) == wanted:
            self.future.set_result(result[0])


async def read_proxy_header(sock: socket.socket, timeout: float) -> ProxyHeader:
    """Read one PROXY protocol header (version 1 or 2) from the start of ``sock``, leaving
    every byte after it unread.

    Args:
        sock: a connected TCP socket nobody reads yet (made non-blocking here).
        timeout: seconds the whole header may take to arrive.

    Returns:
        The parsed header (its ``source`` is None for ``LOCAL``/``UNKNOWN``: no client
        address given).

    Raises:
        ProxyProtocolError: for a malformed or truncated header (the connection closed
            before its end), or bytes that are no header at all.
        TimeoutError: when the header did not arrive within ``timeout`` seconds.
        OSError: for a socket error.
    """
    loop = asyncio.get_running_loop()
    sock.setblocking(False)
    future: asyncio.Future[ProxyHeader] = loop.create_future()
    reader = _HeaderReader(sock, future)
    fileno = sock.fileno()
    loop.add_reader(fileno, reader.readable)
    try:
        return await asyncio.wait_for(future, timeout)
    finally:
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(fileno)
