"""Shutdown of ``medusa serve`` by signal, on both loops.

SIGTERM while a large download is in flight: new connections are refused from then on,
the download still completes (the grace period), and the process exits 0. When the grace
period is over, what is left is cut and the process exits all the same.
"""

from __future__ import annotations

import hashlib
import signal
from pathlib import Path

import pytest
from tests.conftest import BACKENDS, Medusa, RawClient, Runner, refuses_connections, wait_until

pytestmark = pytest.mark.e2e

BIG_SIZE = 32 * 1024 * 1024
"""Much more than the kernel's socket buffers (4 MiB send, 64 KiB receive as set below)."""


def _big_file(root: Path) -> str:
    block = bytes(range(256)) * 4096  # 1 MiB
    digest = hashlib.sha256()
    with open(root / "big.bin", "wb") as f:
        for i in range(BIG_SIZE // len(block)):
            piece = i.to_bytes(4, "big") + block[4:]
            f.write(piece)
            digest.update(piece)
    return digest.hexdigest()


def _start_download(process: Medusa) -> RawClient:
    """Request big.bin with a small receive buffer and read only the head and a little of
    the body: the server is then blocked on a full socket, mid-response."""
    client = process.endpoint.client(rcvbuf=65536)
    client.get("/big.bin")
    assert client.closed_or_data(15), "no response to the download request"
    assert client.buffer.startswith(b"HTTP/1.1 200 "), bytes(client.buffer[:100])
    return client


def _finish_download(client: RawClient) -> tuple[int, str]:
    response = client.read_response(timeout=60)
    assert response.status == 200
    return len(response.body), hashlib.sha256(response.body).hexdigest()


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_lets_download_finish(runner: Runner, tmp_path: Path, backend: str) -> None:
    digest = _big_file(tmp_path)
    process = runner.start(
        "serve", str(tmp_path), "--http", "127.0.0.1:0", "--backend", backend, "--grace", "60"
    )
    endpoint = process.endpoint
    with _start_download(process) as client:
        process.send_signal(signal.SIGTERM)
        wait_until(lambda: refuses_connections(endpoint), "new connections refused after SIGTERM")
        assert process.running(), "exited while a download was in flight"
        size, got = _finish_download(client)
        assert size == BIG_SIZE
        assert got == digest
        assert client.wait_closed() == b""
    assert process.wait(30) == 0, process.describe()
    assert "Traceback" not in process.stderr()


@pytest.mark.parametrize("backend", BACKENDS)
def test_grace_period_expires(runner: Runner, tmp_path: Path, backend: str) -> None:
    """A client that stops reading cannot hold the process past the grace period."""
    _big_file(tmp_path)
    process = runner.start(
        "serve", str(tmp_path), "--http", "127.0.0.1:0", "--backend", backend, "--grace", "0.5"
    )
    with _start_download(process) as client:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, process.describe()
        received = len(client.buffer) + len(client.wait_closed(30))
        assert received < BIG_SIZE, "the whole file went through a stalled client"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_idle_server_stops_on_signal(
    runner: Runner, tmp_path: Path, backend: str, signum: int
) -> None:
    (tmp_path / "a.txt").write_bytes(b"a")
    process = runner.start("serve", str(tmp_path), "--http", "127.0.0.1:0", "--backend", backend)
    with process.endpoint.client() as idle:  # an idle keep-alive connection
        idle.get("/a.txt")
        assert idle.read_response().body == b"a"
        assert process.stop(signum, timeout=30) == 0, process.describe()
        assert idle.wait_closed() == b"", "the idle connection was not closed"
    assert refuses_connections(process.endpoint)
    assert "Traceback" not in process.stderr()


@pytest.mark.parametrize("backend", BACKENDS)
def test_keepalive_request_in_flight_then_close(
    runner: Runner, tmp_path: Path, backend: str
) -> None:
    """A response in flight at SIGTERM completes and announces Connection: close."""
    digest = _big_file(tmp_path)
    process = runner.start(
        "serve", str(tmp_path), "--http", "127.0.0.1:0", "--backend", backend, "--grace", "60"
    )
    client = process.endpoint.client(rcvbuf=65536)
    with client:
        client.get("/big.bin")
        assert client.closed_or_data(15), "no response to the download request"
        process.send_signal(signal.SIGTERM)
        wait_until(lambda: refuses_connections(process.endpoint), "refused after SIGTERM")
        response = client.read_response(timeout=60)
        assert hashlib.sha256(response.body).hexdigest() == digest
        client.wait_closed()
    assert process.wait(30) == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_second_signal_cuts_the_grace_period(runner: Runner, tmp_path: Path, backend: str) -> None:
    """A second SIGTERM during a long grace period closes what is left at once (the first
    lets responses finish), and the process still exits 0."""
    _big_file(tmp_path)
    process = runner.start(
        "serve", str(tmp_path), "--http", "127.0.0.1:0", "--backend", backend, "--grace", "3600"
    )
    with _start_download(process) as client:
        process.send_signal(signal.SIGTERM)
        wait_until(lambda: refuses_connections(process.endpoint), "connections refused")
        assert process.running(), "exited while a download was in flight"
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, process.describe()
        received = len(client.buffer) + len(client.wait_closed(30))
        assert received < BIG_SIZE, "the whole file went through a stalled client"
    assert "second signal" in process.stderr()
    assert "Traceback" not in process.stderr()
