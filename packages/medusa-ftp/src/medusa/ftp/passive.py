"""Passive data connections (``PASV``, RFC 959 §4.1.2; ``EPSV``, RFC 2428 §3): a listening
socket on a port from the configured range, which accepts one connection from the control
connection's peer and drops connections from any other address before a transport is made
for them (port theft, RFC 2577 §5).

Behind a proxy that relays the passive ports (HAProxy in TCP mode), data connections come
from the proxy's address: from a trusted proxy (the server's ``proxy_trusted``, with
``proxy_protocol`` on) a PROXY protocol header is required first (read by
:func:`medusa.ftp.proxyheader.read_proxy_header`), and the client it names is what the
port-theft check compares with the session's client. The listener keeps listening while
such headers are awaited (at most :data:`MAX_PENDING_HEADERS` at once), so a connection
through the proxy from another client cannot take the port from the real one.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import itertools
import secrets
import socket
import time
from collections.abc import Callable, Iterable

from medusa.core.log import error_logger
from medusa.core.proxyprotocol import ProxyProtocolError
from medusa.ftp.dataconn import DataChannel, DataOwner
from medusa.ftp.hostport import canonical_host
from medusa.ftp.proxyheader import read_proxy_header

__all__ = ["MAX_PENDING_HEADERS", "PassiveListener", "PassivePortsExhaustedError"]

MAX_PENDING_HEADERS = 4
"""Connections from trusted proxies whose PROXY header one passive listener awaits at once;
more are closed at once (each holds a descriptor until its header or its timeout)."""


# Created non-blocking (one system call less per listener) where the OS can.
_SOCK_NONBLOCK: int = getattr(socket, "SOCK_NONBLOCK", 0)
_STREAM_NONBLOCK: int = socket.SOCK_STREAM | _SOCK_NONBLOCK


class PassivePortsExhaustedError(OSError):
    """No port of the passive range could be bound."""


def _bind(host: str, ports: range | None) -> tuple[socket.socket, int]:
    """Return a listening, non-blocking socket on ``host`` and a port of ``ports`` (any free
    port when ``None``), and that port, trying the range's ports in turn from a random one
    (wrapping around), so that the next port is not predictable and no list of the range is
    made.

    Raises:
        PassivePortsExhaustedError: when every port of the range is taken.
        OSError: for other bind errors.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    candidates: Iterable[int] = (0,)
    if ports is not None:
        first = secrets.randbelow(len(ports)) if len(ports) else 0
        candidates = itertools.chain(ports[first:], ports[:first])
    for port in candidates:
        sock = socket.socket(family, _STREAM_NONBLOCK)
        try:
            # A port whose earlier data connections are in TIME_WAIT (the server closes
            # first after a download or a listing, so each one leaves the port there for a
            # minute) can be listened on again; a port another socket listens on cannot.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(5)
            if not _STREAM_NONBLOCK & _SOCK_NONBLOCK:
                sock.setblocking(False)
        except OSError as exc:
            sock.close()
            if exc.errno == errno.EADDRINUSE and ports is not None:
                continue
            raise
        return sock, port or int(sock.getsockname()[1])
    raise PassivePortsExhaustedError(errno.EADDRINUSE, "every passive port is in use")


async def attach_socket(owner: DataOwner, channel: DataChannel, conn: socket.socket) -> None:
    """Make a transport for the connected socket ``conn`` with ``channel`` as its protocol;
    under ``PROT P`` run the TLS handshake first, as the server (RFC 4217 §9). A failure is
    reported to ``owner.data_failed``.

    Args:
        owner: the session.
        channel: the new data channel.
        conn: a connected socket (the loop makes it non-blocking; closed on failure).
    """
    loop = asyncio.get_running_loop()
    context = owner.data_tls()
    try:
        if context is None:
            await loop.connect_accepted_socket(lambda: channel, conn)
        else:
            await loop.connect_accepted_socket(
                lambda: channel, conn, ssl=context, ssl_handshake_timeout=30.0
            )
    except (TimeoutError, OSError, ConnectionError) as exc:
        conn.close()
        owner.data_failed(f"{type(exc).__name__}: {exc}")


class PassiveListener:
    """A passive-mode listening socket for one data connection.

    Args:
        owner: the session told of the connection (and of refused ones).
        host: the local address to listen on (the control connection's local address).
        expected_host: the only peer address accepted (the control connection's peer).
        ports: the configured passive port range, or ``None`` for any free port.
        trusted: tells whether a peer address (canonical text) is a trusted proxy whose
            connections must open with a PROXY protocol header; ``None``: no proxies.
        header_timeout: seconds a trusted proxy's connection gets to send its header.

    Attributes:
        port: the port listened on.
        opened: :func:`time.monotonic` time the listener was opened (the session closes a
            listener nobody connected to within ``data_timeout``).

    Raises:
        PassivePortsExhaustedError, OSError: when no socket could be bound.
    """

    def __init__(
        self,
        owner: DataOwner,
        host: str,
        expected_host: str,
        ports: range | None = None,
        *,
        trusted: Callable[[str], bool] | None = None,
        header_timeout: float = 10.0,
    ) -> None:
        self.owner = owner
        self.expected_host = expected_host
        self.trusted = trusted
        self.header_timeout = header_timeout
        self._pending: set[asyncio.Task[None]] = set()
        self._sock: socket.socket | None
        self._sock, self.port = _bind(host, ports)
        self.opened = time.monotonic()
        self._loop = asyncio.get_running_loop()
        self._watched = False

    def poll(self) -> None:
        """Take the connections waiting in the backlog now (a transfer command came before
        the loop reported them): those from other addresses are dropped, until the
        client's is handed to the owner (before this returns) or none is left. Nothing
        after :meth:`close`."""
        while self._sock is not None and self._accept():
            pass

    def start(self) -> None:
        """Accept from the loop (idempotent; nothing after :meth:`close`). The socket
        listens from its creation: a client that connects before this call waits in its
        backlog, so the session announces the port first and starts accepting after."""
        sock = self._sock
        if sock is not None and not self._watched:
            self._watched = True
            self._loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> bool:
        """Take one connection off the backlog: the client's is handed to the owner, one
        from a trusted proxy waits for its PROXY header, others are dropped. Returns False
        when none was waiting."""
        sock = self._sock
        if sock is None:
            return False
        try:
            conn, peer = sock.accept()
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            error_logger.warning("passive accept failed: %s", exc)
            return False
        host = canonical_host(str(peer[0]))
        if self.trusted is not None and self.trusted(host):
            if len(self._pending) >= MAX_PENDING_HEADERS:
                conn.close()
                self.owner.data_refused(host, "too many PROXY headers awaited")
                return True
            task = self._loop.create_task(self._accept_proxied(conn, host))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            return True
        if host != self.expected_host:
            conn.close()
            self.owner.data_refused(host)
            return True
        self._take(conn, None)
        return True

    async def _accept_proxied(self, conn: socket.socket, proxy: str) -> None:
        """Read the PROXY header of a connection from the trusted proxy ``proxy``, then
        take the connection when the client it names is the session's."""
        try:
            header = await read_proxy_header(conn, self.header_timeout)
        except asyncio.CancelledError:
            conn.close()
            raise
        except (ProxyProtocolError, TimeoutError, OSError) as exc:
            conn.close()
            reason = "no PROXY header in time" if isinstance(exc, TimeoutError) else exc
            self.owner.data_refused(proxy, f"bad PROXY header: {reason}")
            return
        source = header.source
        client = canonical_host(source[0]) if source is not None else proxy
        if client != self.expected_host or self._sock is None:
            conn.close()
            self.owner.data_refused(f"{client} through {proxy}")
            return
        task = asyncio.current_task()
        if task is not None:
            self._pending.discard(task)  # close() cancels the others, not this one
        self._take(conn, source)

    def _take(self, conn: socket.socket, client: tuple[str, int] | None) -> None:
        """Stop listening and hand ``conn``, whose client was checked (``client``: its
        address from a PROXY header, else None), to the owner."""
        self.close()
        self.owner.data_accepted(conn, client)

    def close(self) -> None:
        """Stop listening (idempotent); a connection already accepted goes on, those whose
        PROXY header is awaited are closed."""
        pending, self._pending = self._pending, set()
        for task in pending:
            task.cancel()
        sock, self._sock = self._sock, None
        if sock is not None:
            if self._watched:
                with contextlib.suppress(ValueError, OSError):
                    self._loop.remove_reader(sock.fileno())
            sock.close()

    @property
    def listening(self) -> bool:
        """True until a connection was accepted or :meth:`close` was called."""
        return self._sock is not None
