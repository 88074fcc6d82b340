"""``medusa serve --workers N``: a master and N worker processes, end to end over HTTP.

Two workers answer from two processes (the status page shows both); a worker killed with
SIGKILL under load is replaced and only the connections it held are lost; SIGTERM lets a
download in flight finish; five SIGHUP reloads under load fail no request; a broken
configuration on SIGHUP leaves the old workers serving; ``--max-requests`` recycles workers
without a failed request; a worker that dies at start is restarted with a growing delay.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import (
    BACKENDS,
    Endpoint,
    Medusa,
    RawClient,
    Runner,
    refuses_connections,
    wait_until,
)

pytestmark = pytest.mark.e2e

RELOADS = 5
BURST = 200


def _status(endpoint: Endpoint) -> dict[str, Any]:
    """The status page's JSON, over a new connection."""
    conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=15)
    try:
        conn.request("GET", "/status?format=json")
        response = conn.getresponse()
        assert response.status == 200
        document: dict[str, Any] = json.loads(response.read())
        return document
    finally:
        conn.close()


def _ready_pids(endpoint: Endpoint) -> dict[int, int]:
    """The ready workers' pids by worker number."""
    rows = _status(endpoint).get("workers", [])
    return {row["index"]: row["pid"] for row in rows if row["state"] == "ready"}


def _stopped(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


class Load:
    """``clients`` threads sending ``GET /index.txt`` until stopped, counting answers and
    failures. ``keep_alive``: each thread reuses its connection (http.client reconnects by
    itself after ``Connection: close``); otherwise a new connection per request."""

    def __init__(self, endpoint: Endpoint, clients: int = 4, *, keep_alive: bool = True) -> None:
        self.endpoint = endpoint
        self.keep_alive = keep_alive
        self.ok = 0
        self.failures: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self) -> None:
        conn = http.client.HTTPConnection(self.endpoint.host, self.endpoint.port, timeout=15)
        # Bounded: stops when told, or after 200,000 requests per client at most.
        for _ in range(200_000):
            if self._stop.is_set():
                break
            try:
                conn.request("GET", "/index.txt")
                response = conn.getresponse()
                body = response.read()
                good = response.status == 200 and body == b"hello\n"
                with self._lock:
                    if good:
                        self.ok += 1
                    else:
                        self.failures.append(f"status {response.status} body {body[:40]!r}")
            except (OSError, http.client.HTTPException) as exc:
                with self._lock:
                    self.failures.append(repr(exc))
                conn.close()
            if not self.keep_alive:
                conn.close()
        conn.close()

    def count(self) -> int:
        with self._lock:
            return self.ok

    def wait_progress(self, requests: int = 50) -> None:
        """Wait until ``requests`` more requests were answered."""
        target = self.count() + requests
        wait_until(lambda: self.count() >= target, f"{requests} more answered requests")

    @contextmanager
    def running(self) -> Iterator[Load]:
        for thread in self._threads:
            thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            for thread in self._threads:
                thread.join(30)


def _site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    root.mkdir()
    (root / "index.txt").write_bytes(b"hello\n")
    return root


def _serve(runner: Runner, tmp_path: Path, *extra: str) -> Medusa:
    root = _site(tmp_path)
    process = runner.start(
        "serve", str(root), "--http", "127.0.0.1:0", "--status", "--workers", "2", *extra
    )
    wait_until(lambda: len(_ready_pids(process.endpoint)) == 2, "two ready workers")
    return process


def _config(tmp_path: Path, root: Path, extra: str = "") -> Path:
    path = tmp_path / "medusa.toml"
    path.write_text(
        f'[medusa]\nworkers = 2\n{extra}\n[[server]]\ntype = "http"\nlisten = "127.0.0.1:0"\n'
        f'root = "{root}"\n[[server.handler]]\ntype = "status"\npath = "/status"\n'
    )
    return path


def _wait_log(process: Medusa, text: str, count: int = 1) -> None:
    wait_until(
        lambda: process.stderr().count(text) >= count,
        f"{count} x {text!r} in the log\n{process.describe()}",
    )


def test_two_workers_answer_from_two_processes(runner: Runner, tmp_path: Path) -> None:
    process = _serve(runner, tmp_path)
    endpoint = process.endpoint
    pids = _ready_pids(endpoint)
    assert len(set(pids.values())) == 2
    assert process.pid not in pids.values()  # the master serves no request
    first = _status(endpoint)
    assert first["pid"] in pids.values()
    assert first["worker"] in (1, 2)
    # Only the other worker can accept while the one that answered is stopped.
    os.kill(first["pid"], signal.SIGSTOP)
    try:
        wait_until(lambda: _stopped(first["pid"]), "the worker stopped")
        second = _status(endpoint)
    finally:
        os.kill(first["pid"], signal.SIGCONT)
    assert second["pid"] != first["pid"]
    assert {first["pid"], second["pid"]} == set(pids.values())
    assert len(second["workers"]) == 2
    assert second["totals"]["requests"] >= 1
    assert process.stop() == 0, process.describe()


def test_killed_worker_is_replaced_and_only_its_connections_lost(
    runner: Runner, tmp_path: Path
) -> None:
    process = _serve(runner, tmp_path)
    endpoint = process.endpoint
    before = _ready_pids(endpoint)
    load = Load(endpoint, clients=4, keep_alive=False)
    with load.running():
        load.wait_progress()
        os.kill(before[1], signal.SIGKILL)
        wait_until(
            lambda: _ready_pids(endpoint).get(1) not in (None, before[1]),
            "worker 1 replaced",
        )
        load.wait_progress()
    # A client can lose only the connection it had on the killed worker at that moment.
    assert len(load.failures) <= 4, load.failures
    rows = {row["index"]: row for row in _status(endpoint)["workers"]}
    assert rows[1]["restarts"] == 1
    assert rows[2]["pid"] == before[2]
    died = f"worker 1 (pid {before[1]}) died (killed by SIGKILL): starting a new one"
    wait_until(lambda: died in process.stderr(), "the master's line")
    assert process.stop() == 0, process.describe()


def _big_download(process: Medusa, tmp_path: Path) -> tuple[RawClient, str]:
    """Start a 32 MiB download that the client reads slowly: the server is mid-response."""
    block = os.urandom(1024 * 1024)
    with open(tmp_path / "site" / "big.bin", "wb") as f:
        for _ in range(32):
            f.write(block)
    client = process.endpoint.client(rcvbuf=65536)
    client.get("/big.bin")
    assert client.closed_or_data(15), "no response to the download request"
    return client, hashlib.sha256(block * 32).hexdigest()


@pytest.mark.parametrize("who", ["master", "every process (systemd)", "Ctrl-C (SIGINT to all)"])
def test_a_stop_signal_lets_a_download_in_flight_finish(
    runner: Runner, tmp_path: Path, who: str
) -> None:
    process = _serve(runner, tmp_path, "--grace", "60")
    endpoint = process.endpoint
    workers = list(_ready_pids(endpoint).values())
    client, digest = _big_download(process, tmp_path)
    with client:
        signum = signal.SIGINT if who.startswith("Ctrl-C") else signal.SIGTERM
        process.send_signal(signum)
        if who != "master":  # workers get the signal too; once only, from the master, counts
            for pid in workers:
                # A worker with nothing in flight may have ended already, stopped by the
                # master's own signal: a terminal's or systemd's signal to the whole group
                # finds it gone just the same.
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
        wait_until(lambda: refuses_connections(endpoint), "new connections refused")
        assert process.running()
        response = client.read_response(timeout=60)
        assert response.status == 200
        assert hashlib.sha256(response.body).hexdigest() == digest
    assert process.wait(30) == 0, process.describe()
    assert "Traceback" not in process.stderr()


def test_a_second_signal_to_the_master_cuts_the_grace_period(
    runner: Runner, tmp_path: Path
) -> None:
    process = _serve(runner, tmp_path, "--grace", "600")
    client, _ = _big_download(process, tmp_path)
    with client:
        process.send_signal(signal.SIGTERM)
        wait_until(lambda: refuses_connections(process.endpoint), "new connections refused")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0, process.describe()  # not 600 s
        assert client.wait_closed(30) is not None
    assert "second signal: the workers close every connection now" in process.stderr()


@pytest.mark.parametrize("keep_alive", [True, False], ids=["keep-alive", "new connections"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_reloads_under_load_fail_no_request(
    runner: Runner, tmp_path: Path, backend: str, keep_alive: bool
) -> None:
    """Keep-alive clients meet the stop of their worker's connections (one more request,
    answered with ``Connection: close``); clients opening a connection per request meet the
    connections a stopping worker accepted just before it closed its listener (on uvloop
    they used to get a 503)."""
    process = _serve(runner, tmp_path, "--backend", backend)
    endpoint = process.endpoint
    first = set(_ready_pids(endpoint).values())
    load = Load(endpoint, clients=8, keep_alive=keep_alive)
    with load.running():
        load.wait_progress()
        for reload in range(RELOADS):
            process.send_signal(signal.SIGHUP)
            _wait_log(process, f"reload done: configuration {reload + 2} served by 2 workers")
            load.wait_progress()
    assert load.failures == [], load.failures[:10]
    assert load.ok > RELOADS * 50
    last = set(_ready_pids(endpoint).values())
    assert not first & last  # every worker was replaced
    assert process.stop() == 0, process.describe()
    assert "Traceback" not in process.stderr()


def test_broken_configuration_on_sighup_keeps_the_old_workers(
    runner: Runner, tmp_path: Path
) -> None:
    root = _site(tmp_path)
    config = _config(tmp_path, root)
    process = runner.start("serve", "-c", str(config))
    endpoint = process.endpoint
    wait_until(lambda: len(_ready_pids(endpoint)) == 2, "two ready workers")
    before = _ready_pids(endpoint)
    config.write_text(config.read_text() + "nonsense = [\n")
    process.send_signal(signal.SIGHUP)
    _wait_log(process, "reload refused: ")
    assert "not valid TOML" in process.stderr()
    assert _ready_pids(endpoint) == before
    config.write_text(config.read_text().replace("nonsense = [\n", ""))
    process.send_signal(signal.SIGHUP)
    _wait_log(process, "reload done: configuration 2 served by 2 workers")
    after = _ready_pids(endpoint)
    assert set(after) == {1, 2}
    assert not set(after.values()) & set(before.values())
    assert process.stop() == 0, process.describe()


def test_a_reload_can_change_the_worker_count(runner: Runner, tmp_path: Path) -> None:
    root = _site(tmp_path)
    config = _config(tmp_path, root)
    process = runner.start("serve", "-c", str(config))
    endpoint = process.endpoint
    wait_until(lambda: len(_ready_pids(endpoint)) == 2, "two ready workers")
    config.write_text(config.read_text().replace("workers = 2", "workers = 3"))
    process.send_signal(signal.SIGHUP)
    _wait_log(process, "reload done: configuration 2 served by 3 workers")
    wait_until(lambda: len(_ready_pids(endpoint)) == 3, "three ready workers")
    config.write_text(config.read_text().replace("workers = 3", "workers = 2"))
    process.send_signal(signal.SIGHUP)
    _wait_log(process, "reload done: configuration 3 served by 2 workers")
    wait_until(lambda: set(_ready_pids(endpoint)) == {1, 2}, "two ready workers again")
    wait_until(lambda: len(_status(endpoint)["workers"]) == 2, "the third worker gone")
    assert process.stop() == 0, process.describe()


def test_max_requests_recycles_workers_without_a_failure(runner: Runner, tmp_path: Path) -> None:
    process = _serve(runner, tmp_path, "--max-requests", "40", "--max-requests-jitter", "10")
    endpoint = process.endpoint
    before = set(_ready_pids(endpoint).values())
    load = Load(endpoint, clients=2, keep_alive=True)
    with load.running():
        _wait_log(process, "reached max_requests: replacing it", count=2)
        load.wait_progress()
    assert load.failures == [], load.failures[:10]
    wait_until(
        lambda: not set(_ready_pids(endpoint).values()) & before, "both first workers replaced"
    )
    assert process.stop() == 0, process.describe()


def test_a_worker_dying_at_start_is_retried_with_a_growing_delay(
    runner: Runner, tmp_path: Path
) -> None:
    root = _site(tmp_path)
    script = tmp_path / "start.py"
    script.write_text(
        "from medusa.core.workers import current_worker\n"
        "from medusa.http.server import HTTPServer\n"
        "if current_worker() is not None:\n"
        "    raise RuntimeError('this worker cannot start')\n"
        f"servers = [HTTPServer('127.0.0.1:0', root={str(root)!r})]\n"
        "workers = 2\n"
    )
    process = runner.start("run", str(script))
    # Each worker number: at once, then 1 s, then 2 s, ...
    _wait_log(process, "starting a new one in 2 s (3 failures at start in a row)")
    log = process.stderr()
    assert "cannot load the configuration: this worker cannot start" in log
    delays = [float(d) for d in re.findall(r"starting a new one in ([0-9.]+) s", log)]
    assert sorted(set(delays))[:2] == [1.0, 2.0], log
    assert process.stop() == 0, process.describe()


def test_workers_auto_is_one_per_usable_cpu(runner: Runner, tmp_path: Path) -> None:
    cpus = len(os.sched_getaffinity(0))
    if cpus < 2:
        pytest.skip("one CPU: workers = auto runs a single process")
    root = _site(tmp_path)
    process = runner.start(
        "serve", str(root), "--http", "127.0.0.1:0", "--status", "--workers", "auto"
    )
    wait_until(lambda: len(_ready_pids(process.endpoint)) == cpus, f"{cpus} ready workers")
    assert process.stop() == 0, process.describe()


def test_a_single_process_logs_sighup_and_goes_on(runner: Runner, tmp_path: Path) -> None:
    root = _site(tmp_path)
    process = runner.start("serve", str(root), "--http", "127.0.0.1:0")
    process.send_signal(signal.SIGHUP)
    _wait_log(process, "SIGHUP: a single process does not reload its configuration")
    process.send_signal(signal.SIGUSR1)  # reopens the log files: nothing to see, no exit
    conn = http.client.HTTPConnection(process.endpoint.host, process.endpoint.port, timeout=15)
    conn.request("GET", "/index.txt")
    assert conn.getresponse().read() == b"hello\n"
    conn.close()
    assert process.stop() == 0, process.describe()


def test_a_burst_of_connections_is_shared_by_the_workers(runner: Runner, tmp_path: Path) -> None:
    """BURST connections waiting at once in the queue, every medusa process on one CPU (the
    worst case: the worker that runs first could accept the whole queue before the other
    runs): each worker takes a fair part."""
    process = _serve(runner, tmp_path)
    endpoint = process.endpoint
    pids = [process.pid, *_ready_pids(endpoint).values()]
    cpu = min(os.sched_getaffinity(0))
    for pid in pids:
        os.sched_setaffinity(pid, {cpu})
    before = {row["pid"]: row["connections"] for row in _status(endpoint)["workers"]}
    workers = pids[1:]
    # The burst waits in the kernel's queue while both workers are stopped.
    for pid in workers:
        os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: all(_stopped(pid) for pid in workers), "the workers stopped")
        connections = [
            socket.create_connection((endpoint.host, endpoint.port)) for _ in range(BURST)
        ]
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGCONT)
    try:
        for conn in connections:
            conn.sendall(b"GET /index.txt HTTP/1.1\r\nHost: x\r\n\r\n")
        for conn in connections:
            conn.settimeout(15)
            assert conn.recv(4096).startswith(b"HTTP/1.1 200 ")
    finally:
        for conn in connections:
            conn.close()

    def counts() -> list[int]:
        rows = _status(endpoint)["workers"]
        return [row["connections"] - before[row["pid"]] for row in rows]

    # The rows are published once a second: wait until they count every connection.
    wait_until(lambda: sum(counts()) >= BURST, "the connections counted in the worker rows")
    assert min(counts()) >= BURST // 4, counts()
    assert process.stop() == 0, process.describe()


def test_medusa_run_workers_with_a_script_that_calls_run(runner: Runner, tmp_path: Path) -> None:
    """The README's startup script ends with ``run([...])``: under ``medusa run --workers``
    the servers it gives are served by the workers (the script used to serve them in the
    master itself)."""
    root = _site(tmp_path)
    script = tmp_path / "start.py"
    script.write_text(
        "from medusa.core import run\n"
        "from medusa.http.handlers import StatusHandler\n"
        "from medusa.http.server import HTTPServer\n"
        f"run([HTTPServer('127.0.0.1:0', root={str(root)!r}, handlers=[StatusHandler()])])\n"
    )
    process = runner.start("run", "--workers", "2", str(script))
    endpoint = process.endpoint
    wait_until(lambda: len(_ready_pids(endpoint)) == 2, "two ready workers")
    assert _status(endpoint)["pid"] != process.pid
    process.send_signal(signal.SIGHUP)
    _wait_log(process, "reload done: configuration 2 served by 2 workers")
    assert process.stop() == 0, process.describe()
    assert "cannot load the configuration" not in process.stderr()
