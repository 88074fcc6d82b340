"""Basic authentication under attack, through real sockets on both event loops (issue 13,
item 6): pipelined wrong-password requests on many connections that close do not run one
scrypt check each, a correct login from another address is answered promptly, the checks of
closed connections are dropped, the queue is bounded per connection, repeated failures from
one address are slowed and then answered 429 without a check, and concurrent requests with
the same credentials share one check.

The password file counts its checks (and can hold them until the test lets them go, so the
order of events is fixed without relying on timing); everything else is real."""

from __future__ import annotations

import base64
import contextlib
import http.client
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from medusa.core.passwords import PasswordFile, set_password
from medusa.core.testing import ServerThread, wait_until
from medusa.http import FileHandler, HTTPServer
from medusa.http.auth import BasicAuthHandler

BACKENDS = ["asyncio", "uvloop"]
RIGHT = "wonder land"  # alice's password


class CountingPasswords(PasswordFile):
    """A real password file that counts its scrypt checks; while :attr:`gate` is clear,
    each check waits for it (at most 30 s)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.calls = 0
        self._lock = threading.Lock()
        self.gate = threading.Event()
        self.gate.set()

    def verify(self, user: str, password: str) -> bool:
        with self._lock:
            self.calls += 1
        self.gate.wait(30)
        return super().verify(user, password)


@dataclass
class Setup:
    server: HTTPServer
    auth: BasicAuthHandler
    passwords: CountingPasswords
    thread: ServerThread

    def idle(self) -> bool:
        auth = self.auth
        return self.thread.call(lambda: auth._running == 0 and len(auth.queue) == 0)


@pytest.fixture
def password_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new entry (a new salt) per test: core remembers successful checks per entry for
    the whole process, and each test counts its own checks."""
    path = tmp_path_factory.mktemp("throttle") / "passwords"
    set_password(path, "alice", RIGHT)
    return path


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.contextmanager
def serve(tmp_path: Path, password_file: Path, backend: str, **options: float) -> Iterator[Setup]:
    (tmp_path / "file.txt").write_bytes(b"file body")
    passwords = CountingPasswords(password_file)
    auth = BasicAuthHandler(FileHandler(tmp_path), passwords, **options)  # type: ignore[arg-type]
    server = HTTPServer(("127.0.0.1", 0), handlers=[auth], access_log=False)
    try:
        # A short grace: refusals still delayed at the end need not be waited for.
        with ServerThread([server], backend=backend, grace=0.5) as thread:
            yield Setup(server, auth, passwords, thread)
    finally:
        passwords.gate.set()


def basic(password: str, user: str = "alice") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def raw_get(password: str) -> bytes:
    return (
        f"GET /file.txt HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {basic(password)}\r\n\r\n"
    ).encode()


def connect(port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=(source, 0))
    return sock


def read_statuses(sock: socket.socket, count: int) -> list[tuple[int, dict[str, str]]]:
    """Read ``count`` responses (with Content-Length) from ``sock``: statuses and headers."""
    stream = sock.makefile("rb")
    out = []
    for _ in range(count):
        status = int(stream.readline().split()[1])
        headers = {}
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        stream.read(int(headers.get("content-length", "0")))
        out.append((status, headers))
    return out


def get(port: int, password: str, source: str = "127.0.0.1") -> http.client.HTTPResponse:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        conn.request("GET", "/file.txt", headers={"Authorization": basic(password)})
        response = conn.getresponse()
        response.read()
        return response
    finally:
        conn.close()


def test_attack_on_closed_connections_does_not_delay_another_address(
    tmp_path: Path, password_file: Path, backend: str
) -> None:
    """40 connections pipeline 50 wrong-password requests each and close; a correct login
    from 127.0.0.2 is then answered at once, and few of the 2,000 checks ever ran (the
    default limits: at most 4 checks per address, a lockout after 10 failures)."""
    with serve(tmp_path, password_file, backend) as setup:
        port = setup.server.port
        for c in range(40):
            with connect(port) as sock:
                sock.sendall(b"".join(raw_get(f"guess {c}.{n}") for n in range(50)))
        started = time.monotonic()
        response = get(port, RIGHT, source="127.0.0.2")
        elapsed = time.monotonic() - started
        assert response.status == 200
        assert elapsed < 5.0, f"the correct login took {elapsed:.1f} s"
        wait_until(setup.idle, 30, "the checks to end")
        # 10 failures lock 127.0.0.1 out; at most 4 of its checks were admitted at a time.
        assert setup.passwords.calls <= 10 + 4 + 1, setup.passwords.calls


def test_failures_from_one_address_lead_to_429_without_a_check(
    tmp_path: Path, password_file: Path, backend: str
) -> None:
    with serve(tmp_path, password_file, backend, max_failures=3, failure_delay=0) as setup:
        port = setup.server.port
        with connect(port) as sock:
            for n in range(3):
                sock.sendall(raw_get(f"wrong {n}"))
                [(status, headers)] = read_statuses(sock, 1)
                assert status == 401
                assert "www-authenticate" in headers
            for password in ("wrong 3", RIGHT):  # even the right one: locked out
                sock.sendall(raw_get(password))
                [(status, headers)] = read_statuses(sock, 1)
                assert status == 429
                assert 290 <= int(headers["retry-after"]) <= 300
        assert setup.passwords.calls == 3
        assert get(port, RIGHT, source="127.0.0.2").status == 200  # others unaffected
        assert setup.passwords.calls == 4


def test_refusals_are_slowed(tmp_path: Path, password_file: Path) -> None:
    with serve(tmp_path, password_file, "asyncio", max_failures=0, failure_delay=0.2) as setup:
        port = setup.server.port
        with connect(port) as sock:
            for least in (0.2, 0.4, 0.8):
                started = time.monotonic()
                sock.sendall(raw_get("wrong"))
                [(status, _)] = read_statuses(sock, 1)
                assert status == 401
                assert time.monotonic() - started >= least


def test_checks_per_connection_are_bounded(
    tmp_path: Path, password_file: Path, backend: str
) -> None:
    with serve(
        tmp_path, password_file, backend, max_failures=0, failure_delay=0, max_checks=4
    ) as setup:
        setup.passwords.gate.clear()
        with connect(setup.server.port) as sock:
            sock.sendall(b"".join(raw_get(f"wrong {n}") for n in range(5)))
            wait_until(lambda: setup.thread.call(lambda: setup.auth.throttled) == 3)
            assert setup.passwords.calls <= 2
            setup.passwords.gate.set()
            statuses = [status for status, _ in read_statuses(sock, 5)]
        assert statuses == [401, 401, 429, 429, 429]
        assert setup.passwords.calls == 2


def _reset(sock: socket.socket) -> None:
    """Close with a reset (SO_LINGER 0), as a client that went away."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_checks_of_closed_connections_are_dropped(
    tmp_path: Path, password_file: Path, backend: str
) -> None:
    with serve(
        tmp_path,
        password_file,
        backend,
        max_failures=0,
        failure_delay=0,
        max_checks=1,
        max_checks_per_address=10,
    ) as setup:
        port, auth, passwords = setup.server.port, setup.auth, setup.passwords
        passwords.gate.clear()
        first = connect(port)
        first.sendall(raw_get("wrong"))
        wait_until(lambda: passwords.calls == 1, 10, "the first check to start")
        others = [connect(port) for _ in range(5)]
        for n, sock in enumerate(others):
            sock.sendall(raw_get(f"wrong {n}"))
        wait_until(lambda: setup.thread.call(lambda: len(auth.queue)) == 5, 10, "5 queued")
        for sock in others:
            _reset(sock)
        server = setup.server
        wait_until(lambda: setup.thread.call(lambda: server.counters.active) == 1, 10, "closes")
        passwords.gate.set()
        [(status, _)] = read_statuses(first, 1)
        first.close()
        assert status == 401
        wait_until(setup.idle, 10, "the queue to empty")
        assert passwords.calls == 1
        assert auth.checks_dropped == 5


def test_same_credentials_share_one_check(
    tmp_path: Path, password_file: Path, backend: str
) -> None:
    with serve(tmp_path, password_file, backend) as setup:
        setup.passwords.gate.clear()
        with connect(setup.server.port) as sock:
            sock.sendall(raw_get(RIGHT) * 3)
            wait_until(lambda: setup.passwords.calls == 1, 10, "the check to start")
            setup.passwords.gate.set()
            statuses = [status for status, _ in read_statuses(sock, 3)]
        assert statuses == [200, 200, 200]
        assert setup.passwords.calls == 1
