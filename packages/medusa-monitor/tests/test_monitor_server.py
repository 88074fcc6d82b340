"""The monitor server on real sockets (TCP, TLS, Unix) with the blocking client
connection, on both event loops: login, delayed refusal, lockout, sessions, cancel, audit."""

from __future__ import annotations

import os
import socket
import ssl
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from medusa.core.testing import ServerThread, wait_until
from medusa.monitor import LoginRefusedError, MonitorConnection, MonitorServer, wire
from medusa.monitor.channel import MonitorChannel

BACKENDS = ["asyncio", "uvloop"]
SECRET = b"a monitor secret, 32 bytes long!"


class ListLogger:
    """A Logger that keeps its lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)


def address(server: MonitorServer) -> str:
    path = server.address.path
    return f"unix:{path}" if path else f"127.0.0.1:{server.port}"


def connect(server: MonitorServer, **kwargs: Any) -> MonitorConnection:
    return MonitorConnection.open(address(server), timeout=10, **kwargs)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


@pytest.fixture
def monitor(backend: str) -> Iterator[tuple[MonitorServer, ListLogger]]:
    log = ListLogger()
    server = MonitorServer(
        ("127.0.0.1", 0),
        secret=SECRET,
        audit_log=log,
        failure_delay=0.2,
        max_failures=3,
        lockout=300,
        output_limit=2000,
        max_source=10000,
        namespace={"answer": 42},
    )
    with ServerThread([server], backend=backend):
        yield server, log


def test_login_and_run(monitor: tuple[MonitorServer, ListLogger]) -> None:
    server, log = monitor
    with connect(server) as conn:
        banner = conn.login(SECRET)
        assert "Medusa monitor" in banner
        assert f"127.0.0.1:{server.port}" in banner
        assert conn.execute("answer + 1").output == "43\n"
        reply = conn.execute("servers['monitor'] is monitor, monitor.counters.active")
        assert reply.output == "(True, 1)\n"
        assert conn.line("if True:").more
        assert conn.line("    x = 'multi'").more
        assert conn.line("") == wire_reply(True, "")
        assert conn.line("x") == wire_reply(True, "'multi'\n")
        assert conn.line("await asyncio.sleep(0, loop is asyncio.get_running_loop())") == (
            wire_reply(True, "True\n")
        )
        assert conn.line("def f(:").output.splitlines()[-1].startswith("SyntaxError")
        assert conn.line("for i in []:").more
        assert conn.reset() == wire_reply(True, "")
        assert conn.line("i").output.endswith("NameError: name 'i' is not defined\n")
    client = [line for line in log.lines if "127.0.0.1:" in line]
    assert any(line.endswith(" logged in") for line in client)
    assert any(line.endswith(">>> answer + 1") for line in client)
    assert any(line.endswith("...     x = 'multi'") for line in client)
    wait_until(lambda: any(line.endswith(" disconnected") for line in log.lines))


def wire_reply(ok: bool, output: str) -> Any:
    from medusa.monitor import Reply

    return Reply(more=False, ok=ok, output=output)


def test_sessions_have_their_own_names(monitor: tuple[MonitorServer, ListLogger]) -> None:
    server, _ = monitor
    with connect(server) as one, connect(server) as two:
        one.login(SECRET)
        two.login(SECRET)
        one.execute("mine = 1")
        assert not two.execute("mine").ok
        assert two.execute("len(monitor.channels)").output == "2\n"


def test_wrong_secret_refused_after_the_delay(monitor: tuple[MonitorServer, ListLogger]) -> None:
    server, log = monitor
    with connect(server) as conn:
        started = time.monotonic()
        with pytest.raises(LoginRefusedError) as info:
            conn.login(b"not the secret, but long enough")
        elapsed = time.monotonic() - started
    assert info.value.reason == "secret"
    assert elapsed >= 0.2
    assert any("login failed; refused after 0.2 s" in line for line in log.lines)
    assert server.counters.errors == 1
    with connect(server) as conn:  # the next failure waits twice as long
        started = time.monotonic()
        with pytest.raises(LoginRefusedError):
            conn.login(b"still not the secret, long enough")
        assert time.monotonic() - started >= 0.4
    with connect(server) as conn:  # a success forgets the failures
        conn.login(SECRET)
    assert server.throttle.failures("127.0.0.1", time.monotonic()) == 0


def test_repeated_failures_lock_the_address_out(
    monitor: tuple[MonitorServer, ListLogger],
) -> None:
    server, log = monitor
    socks = [socket.create_connection(("127.0.0.1", server.port), 10) for _ in range(4)]
    try:
        replies = []
        for sock in socks:  # four wrong answers at once: only three count before the lock
            first = sock.recv(200)
            if first.startswith(b"HELLO "):
                sock.sendall(wire.auth(bytes(32)))
                replies.append(sock.recv(200))
            else:  # accepted after the lock: refused at once, without a challenge
                replies.append(first)
        assert replies[:3] == [b"DENIED secret\n"] * 3
        assert replies[3] == b"DENIED locked\n"
    finally:
        for sock in socks:
            sock.close()
    assert any("locked out for 300 s" in line for line in log.lines)
    with connect(server) as conn, pytest.raises(LoginRefusedError) as info:
        conn.login(SECRET)  # even the right secret
    assert info.value.reason == "locked"


def test_garbage_and_long_lines_count_as_failures(
    monitor: tuple[MonitorServer, ListLogger],
) -> None:
    server, _ = monitor
    with socket.create_connection(("127.0.0.1", server.port), 10) as sock:
        assert sock.recv(200).startswith(b"HELLO medusa-monitor/1 hmac-sha256 ")
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert sock.recv(200) == b"DENIED secret\n"
        assert sock.recv(200) == b""
    with socket.create_connection(("127.0.0.1", server.port), 10) as sock:
        sock.recv(200)
        sock.sendall(b"x" * 5000)
        assert sock.recv(200) == b"DENIED secret\n"
    assert server.throttle.failures("127.0.0.1", time.monotonic()) == 2


def test_errors_and_floods_leave_the_server_serving(
    monitor: tuple[MonitorServer, ListLogger],
) -> None:
    server, _ = monitor
    with connect(server) as conn:
        conn.login(SECRET)
        reply = conn.execute("import sys\nsys.exit(1)")
        assert reply.ok
        with pytest.raises(ConnectionError):
            conn.execute("1")
    with connect(server) as conn:
        conn.login(SECRET)
        reply = conn.execute("print('x' * 1_000_000)\n'after'")
        assert len(reply.output) < 2200
        assert "[output truncated: " in reply.output
        assert not conn.execute("raise KeyboardInterrupt").ok
        assert not conn.execute("await asyncio.sleep(0)\nraise SystemError('boom')").ok
        assert not conn.execute("x" * 20000).ok  # over max_source: a protocol error
        assert conn.execute("'still here'").output == "'still here'\n"


def test_cancel_awaited_code(monitor: tuple[MonitorServer, ListLogger]) -> None:
    server, _ = monitor
    with connect(server) as conn:
        conn.login(SECRET)
        conn.sock.sendall(wire.exec_block("print('waiting')\nawait asyncio.sleep(3600)"))
        wait_until(lambda: any(isinstance(c, MonitorChannel) and c.busy for c in server.channels))
        with connect(server) as other:  # the loop is free while the code awaits
            other.login(SECRET)
            assert other.execute("1").output == "1\n"
        conn.cancel()
        reply = conn.read_reply()
        assert reply == wire_reply(False, "waiting\ncancelled\n")
        assert conn.execute("2").output == "2\n"


def test_login_timeout(backend: str) -> None:
    server = MonitorServer(("127.0.0.1", 0), secret=SECRET, login_timeout=0.2, audit_log=False)
    with (
        ServerThread([server], backend=backend),
        socket.create_connection(("127.0.0.1", server.port), 10) as sock,
    ):
        assert sock.recv(200).startswith(b"HELLO ")
        assert sock.recv(200) == b""  # closed without an answer


def test_login_timeouts_count_as_failures(backend: str) -> None:
    """Connections held open without answering (to fill max_connections and keep the
    administrator out) lock their address out like wrong secrets; another address is not
    affected."""
    server = MonitorServer(
        ("127.0.0.1", 0), secret=SECRET, login_timeout=0.2, max_failures=3, audit_log=False
    )
    with ServerThread([server], backend=backend):
        socks = [socket.create_connection(("127.0.0.1", server.port), 10) for _ in range(3)]
        try:
            for sock in socks:
                assert sock.recv(200).startswith(b"HELLO ")
            for sock in socks:
                assert sock.recv(200) == b""  # timed out
        finally:
            for sock in socks:
                sock.close()
        with socket.create_connection(("127.0.0.1", server.port), 10) as sock:
            assert sock.recv(200) == b"DENIED locked\n"
        other = socket.create_connection(
            ("127.0.0.1", server.port), 10, source_address=("127.0.0.2", 0)
        )
        with MonitorConnection(other) as conn:
            conn.login(SECRET)


def test_unix_socket_mode_and_peer_login(backend: str, tmp_path: Path) -> None:
    path = tmp_path / "run" / "monitor.sock"
    log = ListLogger()
    server = MonitorServer(f"unix:{path}", audit_log=log)
    with ServerThread([server], backend=backend):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        with connect(server) as conn:
            assert "Medusa monitor" in conn.login(None)  # no secret: the peer's uid decides
            assert conn.execute("session.credentials.uid").output == f"{os.geteuid()}\n"
    assert any(f"unix:pid={os.getpid()},uid={os.geteuid()} logged in" in x for x in log.lines)
    assert not path.exists()


def test_unix_socket_with_secret(backend: str, tmp_path: Path) -> None:
    server = MonitorServer(f"unix:{tmp_path}/m.sock", secret=SECRET, audit_log=False)
    with ServerThread([server], backend=backend):
        with connect(server) as conn, pytest.raises(ValueError, match="asks for a secret"):
            conn.login(None)
        with connect(server) as conn:
            conn.login(lambda: SECRET)
            assert conn.execute("1 + 1").output == "2\n"


def test_unix_socket_refused_in_a_shared_directory(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    server = MonitorServer(f"unix:{shared}/m.sock", audit_log=False)
    with pytest.raises(PermissionError, match="chmod 700"):
        ServerThread([server]).start()
    assert not (shared / "m.sock").exists()


def test_tls(backend: str, tmp_path: Path) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile, cafile = tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    server = MonitorServer(
        ("127.0.0.1", 0),
        secret=SECRET,
        certfile=str(certfile),
        keyfile=str(keyfile),
        audit_log=False,
    )
    assert server.url_scheme == "monitors"
    context = ssl.create_default_context(cafile=str(cafile))
    with ServerThread([server], backend=backend):
        with connect(server, ssl_context=context) as conn:
            conn.login(SECRET)
            assert (
                conn.execute("session.transport.get_extra_info('sslcontext') is not None").output
                == "True\n"
            )
        with socket.create_connection(("127.0.0.1", server.port), 10) as plain:
            plain.sendall(wire.auth(bytes(32)))  # no TLS: the handshake fails, no greeting
            try:
                data = plain.recv(200)
            except ConnectionResetError:
                data = b""
            assert not data.startswith(b"HELLO")
