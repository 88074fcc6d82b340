"""The load of bench/ftp_bench.py's capacity measurement: many FTP sessions at once from one
lean client, so that the server's CPU, not the client's, bounds the sessions per second.

    hatch run bench:python bench/ftp_load.py PORT [--clients 32] [--sessions 2000]
        [--user NAME --password SECRET]

``clients`` sessions run at the same time, each started again as soon as it ends, until
``sessions`` have ended. A session is what the sequential measurement does: connect, ``220``,
``USER``/``PASS`` (``331``, ``230``), ``PASV`` (``227``), a connection to the passive port,
``LIST list`` (``125`` or ``150``), the listing read to its end, ``226``, ``QUIT`` (``221``);
every reply code is checked (RFC 959 §4.2, §5.4), and the listing's line count.

The client is one thread: an epoll loop (:class:`select.epoll`, a dictionary from descriptor to
callback: leaner than :mod:`selectors`' keys) over non-blocking raw sockets, each session a
small state machine driven by its sockets' readiness (no ftplib, no asyncio). It reports its
own CPU time (this process's user + system) per session next to the server's, so that a
reader sees whether the client was the bottleneck. Linux only.
"""

from __future__ import annotations

import argparse
import errno
import re
import select
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

HOST = "127.0.0.1"
LIST_ENTRIES = 24
TIMEOUT = 60.0  # seconds without any progress before the run is given up

PASV_REPLY = re.compile(rb"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)")

# What a session waits for.
GREETING, USER, PASS, PASV, LIST, TRANSFER, QUIT = range(7)


class LoadError(RuntimeError):
    """A session went wrong: an unexpected reply, a short listing, a closed connection."""


@dataclass
class LoadResult:
    """One run of :func:`run_load`.

    Attributes:
        sessions: sessions that ended with ``221``.
        seconds: wall-clock time from the first connect to the last ``221``.
        client_cpu: this process's user + system CPU time meanwhile, seconds.
    """

    sessions: int
    seconds: float
    client_cpu: float

    @property
    def per_second(self) -> float:
        """Sessions per second."""
        return self.sessions / self.seconds


class Poller:
    """The loop's readiness: an epoll set and the callback of each registered descriptor."""

    def __init__(self) -> None:
        self.epoll = select.epoll()
        self.callbacks: dict[int, Callable[[], None]] = {}

    def register(self, sock: socket.socket, events: int, callback: Callable[[], None]) -> None:
        fd = sock.fileno()
        self.epoll.register(fd, events)
        self.callbacks[fd] = callback

    def modify(self, sock: socket.socket, events: int, callback: Callable[[], None]) -> None:
        fd = sock.fileno()
        self.epoll.modify(fd, events)
        self.callbacks[fd] = callback

    def close_socket(self, sock: socket.socket) -> None:
        """Forget ``sock`` and close it (closing removes it from the epoll set)."""
        del self.callbacks[sock.fileno()]
        sock.close()

    def run_once(self, timeout: float) -> int:
        """Wait at most ``timeout`` seconds and call the callbacks of the ready
        descriptors; return how many were ready."""
        events = self.epoll.poll(timeout)
        callbacks = self.callbacks
        for fd, _ in events:
            callbacks[fd]()
        return len(events)


def start_connect(port: int, what: str) -> socket.socket:
    """Return a non-blocking TCP socket connecting to 127.0.0.1:``port``.

    Raises:
        LoadError: when the connect fails at once (``what`` names it).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    code = sock.connect_ex((HOST, port))
    if code not in (0, errno.EINPROGRESS):
        sock.close()
        raise LoadError(f"{what}: {errno.errorcode.get(code, code)}")
    return sock


class Session:
    """One FTP session's state machine over two non-blocking sockets (control and data).

    ``on_control`` and ``on_data`` are called by the loop when the socket is readable (the
    data socket first when its connect completes: writable). ``done`` is called with the
    session when ``221`` came and both sockets are closed.
    """

    __slots__ = (
        "account",
        "buffer",
        "control",
        "data",
        "data_done",
        "done",
        "lines",
        "listed",
        "poller",
        "state",
    )

    def __init__(
        self,
        poller: Poller,
        port: int,
        account: tuple[bytes, bytes],
        done: Callable[[Session], None],
    ) -> None:
        self.poller = poller
        self.account = account
        self.done = done
        self.buffer = b""
        self.state = GREETING
        self.lines = 0
        self.data_done = False
        self.listed = False
        self.data: socket.socket | None = None
        # No TCP_NODELAY: the client sends a command only once the previous one's reply
        # came (which acknowledged it), so Nagle's algorithm never holds one back.
        self.control = control = start_connect(port, "connect")
        # The greeting says the connection is open: wait for it, not for writability.
        poller.register(control, select.EPOLLIN, self.on_control)

    def on_control(self) -> None:
        try:
            data = self.control.recv(65536)
        except ConnectionError as exc:
            raise LoadError(f"control connection: {exc!r} in state {self.state}") from exc
        if not data:
            raise LoadError(f"the server closed the control connection in state {self.state}")
        buffer = self.buffer + data
        while True:
            end = buffer.find(b"\r\n")
            if end < 0:
                break
            if buffer[3:4] == b"-":  # a multi-line reply ends with the line "NNN text"
                last = buffer.find(b"\r\n" + buffer[:3] + b" ")
                end = buffer.find(b"\r\n", last + 2) if last >= 0 else -1
                if end < 0:
                    break
            reply, buffer = buffer[: end + 2], buffer[end + 2 :]
            self.on_reply(reply)
        self.buffer = buffer

    def send(self, line: bytes) -> None:
        # A command is a few bytes on a fresh socket: it always fits the send buffer.
        self.control.send(line)

    def on_reply(self, reply: bytes) -> None:
        state, code = self.state, reply[:3]
        if state == GREETING and code == b"220":
            self.send(b"USER " + self.account[0] + b"\r\n")
            self.state = USER
        elif state == USER and code == b"331":
            self.send(b"PASS " + self.account[1] + b"\r\n")
            self.state = PASS
        elif state == PASS and code == b"230":
            self.send(b"PASV\r\n")
            self.state = PASV
        elif state == PASV and code == b"227":
            self.open_data(reply)
            self.state = LIST
        elif state == LIST and code in (b"125", b"150"):
            self.state = TRANSFER
        elif state == TRANSFER and code == b"226":
            self.listed = True
            self.maybe_quit()
        elif state == QUIT and code == b"221":
            self.poller.close_socket(self.control)
            if self.lines != LIST_ENTRIES:
                raise LoadError(f"LIST gave {self.lines} lines, not {LIST_ENTRIES}")
            self.done(self)
        else:
            raise LoadError(f"state {state}: unexpected reply {reply!r}")

    def open_data(self, reply: bytes) -> None:
        """Connect to the passive port of a ``227`` reply (RFC 959 §4.1.2, PASV); ``LIST``
        goes once the connection is open."""
        found = PASV_REPLY.search(reply)
        if found is None:
            raise LoadError(f"no address in {reply!r}")
        port = int(found[5]) * 256 + int(found[6])
        self.data = data = start_connect(port, "data connect")
        self.poller.register(data, select.EPOLLOUT, self.on_connected)

    def on_connected(self) -> None:
        assert self.data is not None
        code = self.data.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise LoadError(f"data connect: {errno.errorcode.get(code, code)}")
        self.poller.modify(self.data, select.EPOLLIN, self.on_data)
        self.send(b"LIST list\r\n")

    def on_data(self) -> None:
        assert self.data is not None
        chunk = self.data.recv(65536)
        if chunk:
            self.lines += chunk.count(b"\n")
            return
        self.poller.close_socket(self.data)
        self.data = None
        self.data_done = True
        self.maybe_quit()

    def maybe_quit(self) -> None:
        """``QUIT`` once both the listing's end and its ``226`` came (in either order)."""
        if self.data_done and self.listed:
            self.send(b"QUIT\r\n")
            self.state = QUIT


def run_load(
    port: int,
    clients: int,
    sessions: int,
    account: tuple[str, str] = ("anonymous", "bench@example.org"),
) -> LoadResult:
    """Run ``sessions`` sessions against 127.0.0.1:``port``, ``clients`` at a time.

    Raises:
        LoadError: on the first session that goes wrong, or after :data:`TIMEOUT` seconds
            without any socket becoming ready.
    """
    poller = Poller()
    encoded = (account[0].encode(), account[1].encode())
    started = ended = 0
    live: set[Session] = set()

    def done(session: Session) -> None:
        nonlocal started, ended
        ended += 1
        live.discard(session)
        if started < sessions:
            started += 1
            live.add(Session(poller, port, encoded, done))

    cpu, start = time.process_time(), time.perf_counter()
    try:
        for _ in range(min(clients, sessions)):
            started += 1
            live.add(Session(poller, port, encoded, done))
        while ended < sessions:
            if not poller.run_once(TIMEOUT):
                raise LoadError(f"no progress for {TIMEOUT} s ({ended} of {sessions} ended)")
        seconds = time.perf_counter() - start
        client_cpu = time.process_time() - cpu
    finally:
        for session in live:
            for sock in (session.control, session.data):
                if sock is not None:
                    sock.close()
        poller.epoll.close()
    return LoadResult(ended, seconds, client_cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--sessions", type=int, default=2000)
    parser.add_argument("--user", default="anonymous")
    parser.add_argument("--password", default="bench@example.org")
    args = parser.parse_args()
    result = run_load(args.port, args.clients, args.sessions, (args.user, args.password))
    print(
        f"{result.sessions} sessions in {result.seconds:.2f} s: {result.per_second:,.0f}/s, "
        f"client CPU {result.client_cpu / result.sessions * 1e6:.0f} us per session",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
