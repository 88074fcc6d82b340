"""A real Redis for the end-to-end tests of medusa-chat's bus (Debian's ``redis-server``
7): started on 127.0.0.1 at a port of its own with no persistence (``--save ''``,
``--appendonly no``) in a temporary directory, stopped by its PID (SIGTERM, SIGKILL after
a bounded wait), and started again at the same port (empty) for the tests of a Redis
restart. A test that uses it skips with ``apt-get install redis-server`` when it is
missing.

:class:`RedisRelay` sits between one node and Redis: it forwards everything, notes when
each chunk the node wrote arrived (the kernel's receive time stamp), and can hold Redis's
replies back, for the tests of how a node publishes.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import free_port_range

from medusa.core.testing import require_tool, stop_process

__all__ = [
    "SO_TIMESTAMPING",
    "RedisRelay",
    "RedisServer",
    "receive_stamped",
    "redis_relay",
    "redis_server",
    "stamp_receipts",
]

START_TIMEOUT = 15.0
"""Seconds redis-server gets to answer PING."""


class RedisServer:
    """One ``redis-server`` process the test owns.

    Args:
        directory: its working directory (and log file).
        port: the TCP port on 127.0.0.1 (0: a free one).
    """

    def __init__(self, directory: Path, port: int = 0) -> None:
        self.program = require_tool("redis-server", "apt-get install redis-server")
        self.directory = directory
        self.port = port or free_port_range(1)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start it and wait until it answers PING (fails after :data:`START_TIMEOUT`)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                self.program,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--daemonize",
                "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = (self.directory / "redis.log").read_text("utf-8", "replace")
                self.stop()
                raise AssertionError(f"redis-server did not start:\n{output[-3000:]}")
            time.sleep(0.02)
        return self

    def ping(self) -> bool:
        """True when the server answers ``PING`` with ``+PONG``."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        """Run one command (RESP array of bulk strings) and return the raw reply."""
        parts = [f"*{len(args)}\r\n".encode()]
        for arg in args:
            data = arg.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        with socket.create_connection(("127.0.0.1", self.port), timeout=5.0) as sock:
            sock.sendall(b"".join(parts))
            return sock.recv(65536)

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after 5 s) by its PID."""
        process, self.process = self.process, None
        if process is not None:
            stop_process(process)


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    """A started :class:`RedisServer`, stopped on exit."""
    server = RedisServer(directory).start()
    try:
        yield server
    finally:
        server.stop()


SO_TIMESTAMPING = 37
"""Linux's ``SO_TIMESTAMPING`` (``<asm-generic/socket.h>``; not in Python's socket module)."""
_STAMP_FLAGS = (1 << 3) | (1 << 4)  # SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE


def stamp_receipts(sock: socket.socket) -> None:
    """Have the kernel time-stamp what ``sock`` receives (:func:`receive_stamped`)."""
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, _STAMP_FLAGS)


def receive_stamped(sock: socket.socket, size: int = 65536) -> tuple[bytes, int]:
    """``recv`` on a socket given to :func:`stamp_receipts`: the bytes and the time the
    last of them reached the socket (``CLOCK_REALTIME`` nanoseconds, 0 if not stamped).
    Two sends made one after the other by one process to two sockets on 127.0.0.1 are
    stamped in that order (the stamp is taken in the sender's system call)."""
    data, ancillary, _, _ = sock.recvmsg(size, 256)
    stamp = 0
    for level, kind, value in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPING and len(value) >= 16:
            seconds, nanoseconds = struct.unpack_from("qq", value)
            stamp = seconds * 1_000_000_000 + nanoseconds
    return data, stamp


class RedisRelay:
    """A TCP relay on 127.0.0.1 in front of a Redis, run by a thread of its own.

    Args:
        port: the Redis port.

    Attributes:
        written: ``(stamp, data)`` of each chunk the clients wrote (stamp: when it reached
            the relay, see :func:`receive_stamped`), in arrival order.
    """

    def __init__(self, port: int) -> None:
        self.target = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.written: list[tuple[int, bytes]] = []
        self._holding = False
        self._held: list[tuple[socket.socket, bytes]] = []
        self._lock = threading.Lock()
        self._stop = False
        self._pairs: dict[socket.socket, socket.socket] = {}
        self._clients: set[socket.socket] = set()
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.listener, selectors.EVENT_READ)
        self._thread = threading.Thread(target=self._run, name="redis relay", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0`` of the relay."""
        return f"redis://127.0.0.1:{self.port}/0"

    def hold_replies(self) -> None:
        """From now on keep what Redis sends to the clients (until :meth:`release`)."""
        with self._lock:
            self._holding = True

    def release(self) -> None:
        """Forward what was held, and forward at once again."""
        with self._lock:
            self._holding = False
            held, self._held = self._held, []
        for sock, data in held:
            with contextlib.suppress(OSError):
                sock.sendall(data)

    def chunks_with(self, text: bytes) -> list[tuple[int, bytes]]:
        """The chunks written by the clients that contain ``text``."""
        with self._lock:
            return [(stamp, data) for stamp, data in self.written if text in data]

    def _run(self) -> None:
        while not self._stop:
            for key, _ in self._selector.select(0.05):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self.listener:
                    self._accept()
                    continue
                try:
                    if sock in self._clients:
                        data, stamp = receive_stamped(sock)
                    else:
                        data, stamp = sock.recv(65536), 0
                except OSError:
                    data = b""
                if not data:
                    self._drop(sock)
                    continue
                peer = self._pairs[sock]
                with self._lock:
                    if sock in self._clients:
                        self.written.append((stamp, data))
                    elif self._holding:
                        self._held.append((peer, data))
                        continue
                with contextlib.suppress(OSError):
                    peer.sendall(data)

    def _accept(self) -> None:
        client, _ = self.listener.accept()
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target), timeout=5.0)
        except OSError:
            client.close()
            return
        stamp_receipts(client)
        self._clients.add(client)
        self._pairs[client] = upstream
        self._pairs[upstream] = client
        for sock in (client, upstream):
            self._selector.register(sock, selectors.EVENT_READ)

    def _drop(self, sock: socket.socket) -> None:
        peer = self._pairs.pop(sock, None)
        for one in (sock, peer):
            if one is not None:
                self._pairs.pop(one, None)
                self._clients.discard(one)
                with contextlib.suppress(KeyError, ValueError):
                    self._selector.unregister(one)
                one.close()

    def close(self) -> None:
        """Stop the thread and close every socket."""
        self._stop = True
        self._thread.join(5.0)
        for sock in list(self._pairs):
            self._drop(sock)
        self._selector.close()
        self.listener.close()


@contextlib.contextmanager
def redis_relay(server: RedisServer) -> Iterator[RedisRelay]:
    """A :class:`RedisRelay` in front of ``server``, closed on exit."""
    relay = RedisRelay(server.port)
    try:
        yield relay
    finally:
        relay.close()
