"""File descriptors of a real ``medusa serve`` process, on both loops (issue 13, items 2
and 3).

* Clients that pipeline 64 GETs of a large file each and do not read make the process hold
  a few descriptors per connection (counted in ``/proc/PID/fd``), not one per request; every
  response is right once they read.
* Started under ``prlimit --nofile=64``, the process says that it lowered
  ``max_connections`` (and how to raise the limit); the connection past it gets 503 and a
  log line; once connections close, new ones are served.
* When its limit is lowered while it runs (``prlimit --pid``): a new connection near the
  limit gets 503 (logged); a file that cannot be opened gets 503 (logged); when ``accept``
  itself fails, the standard loop logs it and retries (uvloop closes the waiting
  connections); the process does not spin, serves again once the limit is back, and stops
  with status 0 without a traceback.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from tests.conftest import BACKENDS, Medusa, RawClient, Runner, medusa_command, wait_until

from medusa.core.testing import require_tool

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc"),
]

BIG = 1_000_000


def _tree(root: Path) -> bytes:
    big = os.urandom(BIG)
    (root / "big.bin").write_bytes(big)
    (root / "other.bin").write_bytes(big)
    (root / "hello.txt").write_bytes(b"hello\n")
    return big


def _descriptors(pid: int) -> list[int]:
    return sorted(int(name) for name in os.listdir(f"/proc/{pid}/fd"))


def _lowest_free(pid: int) -> int:
    """The number the process's next descriptor gets (the lowest one not in use)."""
    used = set(_descriptors(pid))
    fd = 0
    while fd in used:
        fd += 1
    return fd


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _set_soft_limit(pid: int, soft: int) -> None:
    prlimit = require_tool("prlimit", "apt-get install util-linux")
    subprocess.run([prlimit, "--pid", str(pid), f"--nofile={soft}:"], check=True, timeout=30)


def _status(process: Medusa, path: str = "/hello.txt") -> int | None:
    """The status of ``GET path`` on a new connection, or None when the connection is
    closed (or reset) without an answer."""
    try:
        with process.endpoint.client(timeout=10) as client:
            client.get(path)
            if not client.closed_or_data(10) or not client.buffer:
                return None
            return client.read_response().status
    except (ConnectionResetError, BrokenPipeError):
        return None


@pytest.mark.parametrize("backend", BACKENDS)
def test_pipelined_clients_hold_few_descriptors(
    runner: Runner, tmp_path: Path, backend: str
) -> None:
    big = _tree(tmp_path)
    process = runner.start("serve", str(tmp_path), "--http", "127.0.0.1:0", "--backend", backend)
    before = len(_descriptors(process.pid))
    clients = 10
    socks = [process.endpoint.connect(rcvbuf=4096) for _ in range(clients)]
    try:
        for sock in socks:
            sock.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n" * 64)
        # Every request is answered (its access-log line written) before its turn to send.
        wait_until(
            lambda: process.stderr().count('"GET /big.bin HTTP/1.1" 200') >= clients * 64,
            "all 640 requests answered",
        )
        held = len(_descriptors(process.pid)) - before
        assert held <= 3 * clients, f"{held} descriptors for {clients} pipelining clients"
        digest = hashlib.sha256(big).digest()
        for sock in socks:
            reader = RawClient(sock)
            for _ in range(64):
                response = reader.read_response(timeout=60)
                assert response.status == 200
                assert hashlib.sha256(response.body).digest() == digest
    finally:
        for sock in socks:
            sock.close()
    assert process.stop() == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_low_descriptor_limit_at_start(runner: Runner, tmp_path: Path, backend: str) -> None:
    prlimit = require_tool("prlimit", "apt-get install util-linux")
    _tree(tmp_path)
    serve = ["serve", str(tmp_path), "--http", "127.0.0.1:0", "--backend", backend]
    process = Medusa(
        [prlimit, "--nofile=64:64", *medusa_command(), *serve],
        cwd=tmp_path,
        log_dir=tmp_path,
        env=runner.env,
    )
    runner.processes.append(process)
    process.wait_listening()
    wait_until(lambda: "ulimit -n" in process.stderr(), "the warning")  # written by a thread
    match = re.search(r"max_connections lowered from 10000 to (\d+)", process.stderr())
    assert match, process.describe()
    assert "ulimit -n" in process.stderr()
    allowed = int(match.group(1))
    assert 1 <= allowed < 64
    clients: list[RawClient] = []
    try:
        for _ in range(allowed):
            client = process.endpoint.client()
            clients.append(client)
            client.get("/hello.txt")
            assert client.read_response().status == 200
        with process.endpoint.client() as extra:
            extra.get("/hello.txt")
            refused = extra.read_response()
            assert refused.status == 503
            assert refused.header("Retry-After") == "1"
        wait_until(lambda: "max_connections)" in process.stderr(), "the refusal logged", timeout=15)
    finally:
        for client in clients:
            client.close()
    wait_until(lambda: _status(process) == 200, "served again once connections closed")
    assert process.stop() == 0, process.describe()
    assert "Traceback" not in process.stderr()


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_of_descriptors_while_serving(runner: Runner, tmp_path: Path, backend: str) -> None:
    _tree(tmp_path)
    process = runner.start("serve", str(tmp_path), "--http", "127.0.0.1:0", "--backend", backend)
    pid = process.pid
    limits = re.search(r"Max open files\s+(\d+)", Path(f"/proc/{pid}/limits").read_text())
    assert limits, "no 'Max open files' line in /proc/PID/limits"
    soft = int(limits.group(1))
    kept = process.endpoint.client()
    try:
        kept.get("/hello.txt")
        assert kept.read_response().status == 200
        in_use = len(_descriptors(pid))

        # A few descriptors left: new connections are refused with 503, and logged.
        _set_soft_limit(pid, _lowest_free(pid) + 4)
        wait_until(lambda: _status(process) == 503, "a 503 near the descriptor limit")
        wait_until(lambda: "out of descriptors" in process.stderr(), "the refusal logged")

        # None left: a file cannot be opened (503, logged); accept fails.
        wait_until(lambda: len(_descriptors(pid)) <= in_use, "the refused connections closed")
        _set_soft_limit(pid, _lowest_free(pid))
        cpu, start = _cpu_seconds(pid), time.monotonic()
        kept.get("/big.bin")
        response = kept.read_response()
        assert response.status == 503, response
        assert response.header("Retry-After") == "1"
        wait_until(lambda: "cannot open '/big.bin'" in process.stderr(), "the log line")
        waiting = process.endpoint.client()
        waiting.get("/other.bin")
        if backend == "asyncio":
            # The standard loop logs and retries each second (the connection waits).
            wait_until(
                lambda: process.stderr().count("cannot accept connections") >= 2,
                "two accept failures logged",
            )
        else:
            # uvloop (libuv) closes the connections it cannot take.
            assert waiting.closed_or_data(15)
        spent = _cpu_seconds(pid) - cpu
        elapsed = time.monotonic() - start
        assert spent < 0.5 * elapsed + 0.2, f"{spent:.2f} s of CPU in {elapsed:.2f} s"
        assert process.running()

        # The limit back: served again (the waiting connection too, on the standard loop).
        _set_soft_limit(pid, soft)
        wait_until(lambda: _status(process) == 200, "served again")
        if backend == "asyncio":
            answer = waiting.read_response(timeout=15)
            assert (answer.status, len(answer.body)) == (200, BIG)
        waiting.close()
        kept.get("/big.bin")
        assert len(kept.read_response().body) == BIG
    finally:
        kept.close()
    assert process.stop() == 0, process.describe()
    assert "Traceback" not in process.stderr(), process.stderr()[-3000:]


def test_accept_batch_keeps_the_kernel_queue(runner: Runner, tmp_path: Path) -> None:
    """The standard loop is given a small accept batch, but the listening socket keeps the
    configured queue length: ``backlog`` connections can wait without being refused."""
    _tree(tmp_path)
    config = tmp_path / "medusa.toml"
    config.write_text(
        '[[server]]\ntype = "http"\nlisten = "127.0.0.1:0"\nroot = "."\nbacklog = 200\n'
    )
    process = runner.start("serve", "-c", str(config), "--backend", "asyncio")
    process.send_signal(signal.SIGSTOP)  # nothing is accepted while stopped
    socks: list[socket.socket] = []
    try:
        for _ in range(150):
            sock = socket.create_connection((process.endpoint.host, process.endpoint.port), 5)
            socks.append(sock)
    finally:
        process.send_signal(signal.SIGCONT)
    for sock in socks:
        sock.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    for sock in socks:
        client = RawClient(sock)
        assert client.read_response().status == 200
        client.close()
