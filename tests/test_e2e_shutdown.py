"""Shutdown of ``medusa serve`` by signal, on both loops.

SIGTERM while a large download is in flight: new connections are refused from then on,
the download still completes (the grace period), and the process exits 0. When the grace
period is over, what is left is cut and the process exits all the same. An upload whose
body is arriving at the signal (raw socket, chunked, ``curl --limit-rate -T``) is received,
stored whole and answered 201 with ``Connection: close``; nothing after it is read.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
from pathlib import Path

import pytest
from tests.conftest import BACKENDS, Medusa, RawClient, Runner, refuses_connections, wait_until

from medusa.core.testing import require_tool

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


# -- requests being received at the signal (issue 13, item 1) ------------------------------

UPLOAD_SIZE = 4 * 1024 * 1024


def _put_server(runner: Runner, tmp_path: Path, backend: str) -> tuple[Medusa, Path]:
    """``medusa serve -c`` with a PUT handler on ``www`` (and its files served)."""
    www = tmp_path / "www"
    www.mkdir()
    (www / "hello.txt").write_bytes(b"hello\n")
    config = tmp_path / "medusa.toml"
    config.write_text(
        '[[server]]\ntype = "http"\nlisten = "127.0.0.1:0"\nroot = "www"\n'
        '[[server.handler]]\ntype = "put"\nroot = "www"\nmax_size = 100_000_000\n'
    )
    process = runner.start("serve", "-c", str(config), "--backend", backend, "--grace", "60")
    return process, www


def _upload_in_progress(www: Path) -> int:
    """Bytes in the upload's temporary file so far (0 when there is none yet)."""
    return sum(p.stat().st_size for p in www.glob(".*.upload"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_lets_an_upload_in_progress_finish(
    runner: Runner, tmp_path: Path, backend: str
) -> None:
    """SIGTERM in the middle of a PUT's body: the body is still received and stored whole,
    the answer is 201 with ``Connection: close``, a request sent after it on the same
    connection is not read, and the process exits 0."""
    process, www = _put_server(runner, tmp_path, backend)
    body = hashlib.sha256(b"seed").digest() * (UPLOAD_SIZE // 32)
    half = len(body) // 2
    with process.endpoint.client() as client:
        client.send(
            f"PUT /upload.bin HTTP/1.1\r\nHost: {client.host}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:half]
        )
        # The first half has reached the temporary file (less what a write buffer holds).
        wait_until(lambda: _upload_in_progress(www) >= half - 65536, "the first half stored")
        process.send_signal(signal.SIGTERM)
        wait_until(lambda: refuses_connections(process.endpoint), "refused after SIGTERM")
        assert process.running(), "exited while an upload was in progress"
        client.send(
            body[half:] + f"GET /hello.txt HTTP/1.1\r\nHost: {client.host}\r\n\r\n".encode()
        )
        response = client.read_response(timeout=60)
        assert response.status == 201, response
        assert response.closes
        assert client.wait_closed() == b"", "a request after the signal was answered"
    assert (www / "upload.bin").read_bytes() == body
    assert _upload_in_progress(www) == 0
    assert process.wait(30) == 0, process.describe()
    assert "Traceback" not in process.stderr()


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_lets_a_chunked_upload_finish(runner: Runner, tmp_path: Path, backend: str) -> None:
    """The same with a chunked body, sent in several pieces after the signal."""
    process, www = _put_server(runner, tmp_path, backend)
    piece = b"0123456789abcdef" * 4096  # 64 KiB
    with process.endpoint.client() as client:
        client.send(
            f"PUT /chunked.bin HTTP/1.1\r\nHost: {client.host}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
            + b"%x\r\n%b\r\n" % (len(piece), piece) * 4
        )
        wait_until(lambda: _upload_in_progress(www) >= 3 * len(piece), "the first chunks stored")
        process.send_signal(signal.SIGTERM)
        wait_until(lambda: refuses_connections(process.endpoint), "refused after SIGTERM")
        for _ in range(4):
            client.send(b"%x\r\n%b\r\n" % (len(piece), piece))
        client.send(b"0\r\n\r\n")
        response = client.read_response(timeout=60)
        assert response.status == 201, response
        assert response.closes
        assert client.wait_closed() == b""
    assert (www / "chunked.bin").read_bytes() == piece * 8
    assert process.wait(30) == 0, process.describe()


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_with_curl_limit_rate_upload(runner: Runner, tmp_path: Path, backend: str) -> None:
    """The issue's reproduction: ``curl -T`` at a limited rate, SIGTERM one second into it
    (detected by the temporary file, not timed): curl gets 201 and the file is whole."""
    curl = require_tool("curl", "apt-get install curl")
    process, www = _put_server(runner, tmp_path, backend)
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(6 * 1024 * 1024))
    url = process.endpoint.url + "/rated.bin"
    upload = subprocess.Popen(
        [
            curl,
            "-sS",
            "--noproxy",
            "*",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--limit-rate",
            "3M",
            "-T",
            str(source),
            url,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(lambda: _upload_in_progress(www) >= 1024 * 1024, "the upload under way")
        process.send_signal(signal.SIGTERM)
        out, err = upload.communicate(timeout=60)
    finally:
        if upload.poll() is None:
            upload.kill()
            upload.wait()
    assert out == b"201", (out, err)
    assert (www / "rated.bin").read_bytes() == source.read_bytes()
    assert process.wait(30) == 0, process.describe()
