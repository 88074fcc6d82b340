"""Tests of :class:`medusa.core.server.Server` and :func:`medusa.core.loop.serve` on real
sockets: TCP on IPv4 and IPv6, Unix-domain sockets, port 0, connection limits, counters
and graceful shutdown. Every wait is on a condition with a deadline."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from medusa.core.address import Address, AddressError
from medusa.core.channel import Channel
from medusa.core.listener import socket_file_identity
from medusa.core.loop import new_event_loop, serve
from medusa.core.producers import SimpleProducer
from medusa.core.server import Server
from medusa.core.testing import ServerThread, loop_backends, wait_until

try:
    import uvloop  # noqa: F401
except ImportError:  # pragma: no cover - the dev environment installs uvloop
    HAVE_UVLOOP = False
else:
    HAVE_UVLOOP = True

TIMEOUT = 20.0


@pytest.fixture(params=loop_backends())
def backend(request: pytest.FixtureRequest) -> str:
    """The event loop the test runs on."""
    return str(request.param)


def pattern(n: int) -> bytes:
    return (b"0123456789abcdef" * (n // 16 + 1))[:n]


class LineChannel(Channel):
    """Echoes lines; ``BIG n`` answers n bytes from a producer."""

    terminator = b"\n"

    def found_terminator(self) -> None:
        line = self.get_incoming()
        assert self.server is not None
        self.server.counters.requests += 1
        if line.startswith(b"BIG "):
            self.push_with_producer(SimpleProducer(pattern(int(line[4:]))))
        else:
            self.push(line + b"\n")


class LineServer(Server):
    name = "line"

    def make_channel(self) -> Channel:
        return LineChannel(self)


def ipv6_available() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.fixture
def sock_dir() -> Iterator[str]:
    # A short directory: Unix socket paths are limited to about 100 bytes.
    with tempfile.TemporaryDirectory(prefix="mds") as d:
        yield d


def connect(address: Any, family: socket.AddressFamily = socket.AF_INET) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    try:
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        data = sock.recv(min(n - len(buf), 1 << 20))
        if not data:
            pytest.fail(f"EOF after {len(buf)} of {n} bytes")
        buf += data
    return bytes(buf)


def recv_until_eof(sock: socket.socket) -> bytes:
    buf = bytearray()
    while data := sock.recv(65536):
        buf += data
    return bytes(buf)


def echo_once(sock: socket.socket, line: bytes = b"hello") -> None:
    sock.sendall(line + b"\n")
    assert recv_exactly(sock, len(line) + 1) == line + b"\n"


# -- listening -------------------------------------------------------------------------------


def test_tcp_ipv4_port_zero(backend: str) -> None:
    server = LineServer(("127.0.0.1", 0))
    assert server.port == 0
    assert server.listening == []
    with ServerThread([server], backend=backend):
        port = server.port
        assert port > 0
        assert server.listening == [f"127.0.0.1:{port}"]
        with connect(("127.0.0.1", port)) as sock:
            echo_once(sock)
    with pytest.raises(ConnectionRefusedError), connect(("127.0.0.1", port)):
        pass


@pytest.mark.skipif(not ipv6_available(), reason="no IPv6 loopback")
def test_tcp_ipv6(backend: str) -> None:
    server = LineServer("[::1]:0")
    with ServerThread([server], backend=backend):
        port = server.port
        assert server.listening == [f"[::1]:{port}"]
        with connect(("::1", port), socket.AF_INET6) as sock:
            echo_once(sock)


def test_unix_socket(backend: str, sock_dir: str) -> None:
    path = os.path.join(sock_dir, "medusa.sock")
    server = LineServer(f"unix:{path}")
    with ServerThread([server], backend=backend):
        assert server.listening == [f"unix:{path}"]
        assert server.port == 0
        assert os.path.exists(path)
        with connect(path, socket.AF_UNIX) as sock:
            echo_once(sock)
    assert not os.path.exists(path)  # removed on close


def test_a_replaced_unix_socket_outlives_the_old_server(backend: str, sock_dir: str) -> None:
    """A worker that replaces another during a reload binds the same path while the old one
    still listens (the loop removes the old socket file first); the old server, closing
    afterwards, must leave the new socket file alone, also when the file system gave it the
    old file's inode number (ext4 reuses a freed inode at once)."""
    path = os.path.join(sock_dir, "replaced.sock")
    old = ServerThread([LineServer(f"unix:{path}")], backend=backend).start()
    try:
        old_inode = os.lstat(path).st_ino
        with ServerThread([LineServer(f"unix:{path}")], backend=backend):
            reused = os.lstat(path).st_ino == old_inode
            old.stop()
            assert os.path.exists(path), f"the new socket file was removed (inode reused: {reused})"
            with connect(path, socket.AF_UNIX) as sock:
                echo_once(sock)
    finally:
        old.stop()
    assert not os.path.exists(path)  # the new server removed its own file


def test_a_new_socket_file_is_told_from_the_old_one_whose_inode_it_took(sock_dir: str) -> None:
    """The reload race: the old worker's listener closed, the new worker removed the file
    and bound the path, and the file system gave the new file the freed inode number (ext4
    does at once). The old server must not take the new file for its own."""
    path = os.path.join(sock_dir, "reused.sock")
    with socket.socket(socket.AF_UNIX) as first:
        first.bind(path)
        old = socket_file_identity(path)
    os.unlink(path)
    with socket.socket(socket.AF_UNIX) as second:
        second.bind(path)
        new = socket_file_identity(path)
    assert old is not None
    assert new is not None
    assert new != old, f"inode reused: {new[1] == old[1]}"
    assert socket_file_identity(os.path.join(sock_dir, "missing")) is None
    regular = os.path.join(sock_dir, "regular")
    with open(regular, "w"):
        pass
    assert socket_file_identity(regular) is None  # not a socket


def test_a_late_server_that_cannot_start_is_logged_and_the_others_run(
    backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A late server (a worker's own monitor) whose start fails for a reason of its own,
    not a listening error, is logged; the next late server still starts."""
    caplog.set_level(logging.INFO, logger="medusa")

    class FailingServer(LineServer):
        async def start(self) -> None:
            raise PermissionError("the socket directory is open to others")

    started: list[Server] = []
    failing = FailingServer(0)
    working = LineServer(0)

    async def main() -> None:
        stop = asyncio.Event()

        def on_late_start(server: Server) -> None:
            started.append(server)
            stop.set()

        await serve(
            [],
            stop=stop,
            late=[failing, working],
            on_late_start=on_late_start,
            handle_signals=False,
            grace=1.0,
        )

    loop = new_event_loop(backend)
    try:
        loop.run_until_complete(asyncio.wait_for(main(), TIMEOUT))
    finally:
        loop.close()
    assert started == [working]
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert lines == [
        "line server cannot start on 127.0.0.1:0: the socket directory is open to others; "
        "serving without it"
    ]
    assert not [r for r in caplog.records if r.exc_info]


def test_several_servers_in_one_loop(backend: str, sock_dir: str) -> None:
    servers = [LineServer(0), LineServer(0), LineServer(Address(None, 0, f"{sock_dir}/s"))]
    with ServerThread(servers, backend=backend):
        with connect(("127.0.0.1", servers[0].port)) as a:
            echo_once(a, b"a")
        with connect(("127.0.0.1", servers[1].port)) as b:
            echo_once(b, b"b")
        with connect(f"{sock_dir}/s", socket.AF_UNIX) as c:
            echo_once(c, b"c")


def test_address_in_use_is_reported(backend: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        first = LineServer(0)
        server = LineServer(port)
        with pytest.raises(OSError, match="in use") as info:
            ServerThread([first, server], backend=backend).start()
        assert info.value.errno == errno.EADDRINUSE
        assert first.listening == []  # the server started before the failure was closed


def test_constructor_forms_and_errors() -> None:
    assert LineServer(8080).address == Address("127.0.0.1", 8080)
    assert LineServer(("::1", 81)).address == Address("::1", 81)
    assert LineServer("*:82").address == Address(None, 82)
    assert LineServer(Address(None, 0, "/x")).address.path == "/x"
    with pytest.raises(AddressError):
        LineServer("nonsense")
    with pytest.raises(ValueError, match="write_low_water"):
        LineServer(0, write_high_water=100, write_low_water=200)
    with pytest.raises(ValueError, match="0 or more"):
        LineServer(0, write_low_water=-1)
    assert repr(LineServer(0)) == "<LineServer 127.0.0.1:0>"


# -- limits and counters ---------------------------------------------------------------------


def test_max_connections_refuses_cleanly(backend: str) -> None:
    server = LineServer(0, max_connections=2)
    with ServerThread([server], backend=backend) as st, contextlib.ExitStack() as stack:
        a = stack.enter_context(connect(("127.0.0.1", server.port)))
        b = stack.enter_context(connect(("127.0.0.1", server.port)))
        echo_once(a, b"a")
        echo_once(b, b"b")
        extra = stack.enter_context(connect(("127.0.0.1", server.port)))
        assert recv_until_eof(extra) == b""  # closed by the server, not reset
        wait_until(lambda: st.call(lambda: server.counters.refused) == 1, TIMEOUT, "refusal")
        echo_once(a, b"still a")
        echo_once(b, b"still b")
        counters = st.call(lambda: server.counters.as_dict())
        assert counters["connections"] == 3
        assert counters["refused"] == 1
        assert counters["active"] == 2
        # A place freed is a place taken again.
        a.close()
        wait_until(lambda: st.call(lambda: server.counters.active) == 1, TIMEOUT, "close")
        c = stack.enter_context(connect(("127.0.0.1", server.port)))
        echo_once(c, b"c")
        assert st.call(lambda: server.counters.refused) == 1


def test_counters(backend: str) -> None:
    server = LineServer(0)
    with ServerThread([server], backend=backend) as st:
        with connect(("127.0.0.1", server.port)) as sock:
            echo_once(sock, b"hello")  # 6 bytes each way
            sock.sendall(b"BIG 100000\n")
            assert recv_exactly(sock, 100000) == pattern(100000)
        wait_until(lambda: st.call(lambda: server.counters.active) == 0, TIMEOUT, "close")
        counters = st.call(lambda: server.counters.as_dict())
    assert counters["connections"] == 1
    assert counters["refused"] == 0
    assert counters["requests"] == 2
    assert counters["bytes_in"] == 6 + len(b"BIG 100000\n")
    assert counters["bytes_out"] == 6 + 100000
    assert counters["errors"] == 0
    assert counters["started"] > 0


def test_incoming_overflow_closes_and_counts(backend: str) -> None:
    server = LineServer(0)
    with ServerThread([server], backend=backend) as st:
        with connect(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"x" * 70000)  # over max_incoming (64 KiB) without a newline
            with contextlib.suppress(ConnectionResetError):
                assert recv_until_eof(sock) == b""
        wait_until(lambda: st.call(lambda: server.counters.errors) == 1, TIMEOUT, "the error")


# -- shutdown --------------------------------------------------------------------------------


def wait_refused(port: int) -> None:
    """Wait until nothing accepts on ``port`` any more (the listener is closed)."""

    def refused() -> bool:
        try:
            sock = connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
        except ConnectionResetError:
            return False  # queued on the listener as it closed: try again
        sock.close()
        return False

    wait_until(refused, TIMEOUT, "the listener to close")


def test_shutdown_lets_a_response_in_flight_finish(backend: str) -> None:
    size = 16 << 20
    server = LineServer(0)
    st = ServerThread([server], backend=backend, grace=TIMEOUT * 3).start()
    stopper: threading.Thread | None = None
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.settimeout(TIMEOUT)
        with sock:
            sock.connect(("127.0.0.1", server.port))
            sock.sendall(b"BIG %d\n" % size)
            first = recv_exactly(sock, 1000)  # the response is under way
            wait_until(lambda: st.call(lambda: server.counters.requests) == 1, TIMEOUT, "req")
            port = server.port
            stopper = threading.Thread(target=st.stop)
            stopper.start()
            wait_refused(port)  # no new connections while the old one finishes
            rest = recv_until_eof(sock)
            assert first + rest == pattern(size)
        stopper.join(TIMEOUT)
        assert not stopper.is_alive(), "serve() did not return once the response was sent"
    finally:
        if stopper is None:
            st.stop()


def race_the_shutdown(backend: str) -> None:
    """Stop a server while four clients keep connecting to it."""
    server = LineServer(0)
    st = ServerThread([server], backend=backend).start()
    port = server.port
    done = threading.Event()
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            while not done.is_set():
                try:
                    sock = connect(("127.0.0.1", port))
                except (ConnectionRefusedError, ConnectionResetError):
                    continue
                with sock, contextlib.suppress(OSError):
                    sock.sendall(b"x\n")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: st.call(lambda: server.counters.connections) >= 20, TIMEOUT, "load")
    finally:
        st.stop()
        done.set()
        for t in threads:
            t.join(TIMEOUT)
    assert not errors, errors
    assert server.channels == set()


def test_connections_racing_the_shutdown_are_not_leaked(backend: str) -> None:
    """Connections accepted while the listener closes must be closed too (on CPython
    3.11's standard loop one accepted in the closing iteration used to leak its socket,
    seen as a ResourceWarning once garbage-collected)."""
    for _ in range(3):
        race_the_shutdown(backend)
        gc.collect()  # an unclosed socket is reported here


def test_shutdown_grace_aborts_laggards(backend: str) -> None:
    size = 16 << 20  # far more than the kernel buffers hold
    server = LineServer(0)
    st = ServerThread([server], backend=backend, grace=0.2).start()
    stopped = False
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        sock.settimeout(TIMEOUT)
        with sock:
            sock.connect(("127.0.0.1", server.port))
            sock.sendall(b"BIG %d\n" % size)  # and never read
            wait_until(lambda: st.call(lambda: server.counters.requests) == 1, TIMEOUT, "req")
            st.stop(timeout=TIMEOUT)  # returns after the grace period, not after 64 MiB
            stopped = True
            got = 0
            with contextlib.suppress(ConnectionResetError):
                while data := sock.recv(1 << 20):
                    got += len(data)
            assert got < size
        assert server.channels == set()
    finally:
        if not stopped:
            st.stop()


async def _serve_directly(stop: asyncio.Event, server: Server) -> list[str]:
    started: list[str] = []

    def on_start(servers: Any) -> None:
        started.extend(servers[0].listening)

    task = asyncio.ensure_future(
        serve([server], grace=1.0, stop=stop, on_start=on_start, handle_signals=False)
    )
    for _ in range(int(TIMEOUT / 0.01)):
        if started or task.done():
            break
        await asyncio.sleep(0.01)
    assert started, f"serve() did not start: {task}"
    assert not task.done()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"ping\n")
    assert await asyncio.wait_for(reader.readline(), TIMEOUT) == b"ping\n"
    stop.set()
    await asyncio.wait_for(task, TIMEOUT)
    assert server.listening == []  # the listener is closed
    # The idle connection was closed by the shutdown.
    assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    return started


def test_serve_with_a_stop_event(backend: str) -> None:
    server = LineServer(0)
    loop = new_event_loop(backend)
    try:
        started = loop.run_until_complete(_serve_directly(asyncio.Event(), server))
    finally:
        loop.close()
    assert len(started) == 1
    assert started[0].startswith("127.0.0.1:")
    assert server.channels == set()


def test_new_event_loop_backends() -> None:
    loop = new_event_loop("asyncio")
    try:
        assert type(loop).__module__.startswith("asyncio")
    finally:
        loop.close()
    if HAVE_UVLOOP:
        for name in ("uvloop", "auto"):
            loop = new_event_loop(name)
            try:
                assert type(loop).__module__.startswith("uvloop")
            finally:
                loop.close()
    with pytest.raises(ValueError, match="unknown loop backend"):
        new_event_loop("tokio")
