"""Measurements: wrk load runs (and parsing wrk's report), the idle-connection memory test,
and reading callgrind's instruction total."""

from __future__ import annotations

import json
import re
import select
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bench.peers import RunningServer

BENCH_DIR = Path(__file__).resolve().parent

_TIME_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}


class MeasureError(Exception):
    """A measurement could not be taken (wrk or the idle client failed or said nonsense)."""


@dataclass
class WrkRun:
    """One wrk run. Sizes are bytes (wrk's KB/MB/GB are powers of 1024), times seconds."""

    requests_per_s: float
    bytes_per_s: float
    latency_p50_s: float
    latency_p99_s: float
    requests: int
    socket_errors: int
    non_2xx: int


def callgrind_total(path: Path) -> int:
    """The instructions a process executed, from the callgrind output file ``path``.

    Raises:
        MeasureError: the file has no ``summary:`` or ``totals:`` line.
    """
    for line in path.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise MeasureError(f"no instruction total in {path}")


def callgrind_run(
    out: Path, argv: list[str], *options: str, env: Mapping[str, str] | None = None
) -> int:
    """Run ``argv`` under ``valgrind --tool=callgrind`` (with ``options``; ``env``: its
    environment, default this process's), its output in ``out``, and return the
    instructions it executed (see :func:`callgrind_total`).

    Raises:
        subprocess.CalledProcessError: the command failed.
    """
    command = ["valgrind", "--tool=callgrind", *options, f"--callgrind-out-file={out}", *argv]
    subprocess.run(command, check=True, capture_output=True, env=env)
    return callgrind_total(out)


def parse_time(value: str, unit: str) -> float:
    return float(value) * _TIME_UNITS[unit]


def parse_size(value: str, unit: str) -> float:
    return float(value) * _SIZE_UNITS[unit]


def _search(pattern: str, text: str) -> re.Match[str]:
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        raise MeasureError(f"wrk output has no match for {pattern!r}: {text.strip()[-300:]!r}")
    return match


def parse_wrk(output: str) -> WrkRun:
    """Parse the report of ``wrk --latency``."""
    rps = _search(r"^Requests/sec:\s+([\d.]+)", output)
    transfer = _search(r"^Transfer/sec:\s+([\d.]+)([KMGT]?B)", output)
    p50 = _search(r"^\s+50(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", output)
    p99 = _search(r"^\s+99(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", output)
    total = _search(r"^\s*(\d+) requests in ", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkRun(
        requests_per_s=float(rps.group(1)),
        bytes_per_s=parse_size(transfer.group(1), transfer.group(2)),
        latency_p50_s=parse_time(p50.group(1), p50.group(2)),
        latency_p99_s=parse_time(p99.group(1), p99.group(2)),
        requests=int(total.group(1)),
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
    )


def wrk_command(url: str, connections: int, duration: int, client_cpu: int) -> list[str]:
    return [
        "taskset", "-c", str(client_cpu),
        "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", url,
    ]  # fmt: skip


def run_wrk(url: str, connections: int, duration: int, client_cpu: int) -> WrkRun:
    argv = wrk_command(url, connections, duration, client_cpu)
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, timeout=duration + 30, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise MeasureError(f"wrk did not finish within {duration + 30} s") from exc
    if result.returncode != 0:
        raise MeasureError(f"wrk exited with {result.returncode}: {result.stderr.strip()[-300:]}")
    return parse_wrk(result.stdout)


# --------------------------------------------------------------------------- idle connections


@dataclass
class IdleResult:
    """Server memory before and after holding ``established`` idle keep-alive connections."""

    connections: int
    established: int
    failed: int
    still_open: int
    rss_before_kb: int
    rss_after_kb: int
    connect_seconds: float
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def per_connection_kb(self) -> float | None:
        if self.established == 0:
            return None
        return (self.rss_after_kb - self.rss_before_kb) / self.established


def _read_event(stream: IO[str], timeout: float) -> dict[str, Any]:
    """The next JSON line from the idle client, waiting at most ``timeout`` seconds."""
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        raise MeasureError(f"idle client said nothing within {timeout:.0f} s")
    line = stream.readline()
    if not line:
        raise MeasureError("idle client exited early")
    event: dict[str, Any] = json.loads(line)
    return event


def measure_idle(
    server: RunningServer,
    connections: int,
    client_cpu: int,
    deadline: float = 120.0,
    settle: float = 1.0,
    path: str = "/hello",
) -> IdleResult:
    """Open ``connections`` keep-alive connections from a client process, one ``GET path``
    each.

    RSS is read after ``settle`` seconds of quiet before and after; the client holds the
    connections until the "after" reading is taken.
    """
    time.sleep(settle)
    before = server.rss_kb()
    argv = [
        "taskset", "-c", str(client_cpu),
        sys.executable, str(BENCH_DIR / "idle_clients.py"),
        "--port", str(server.port), "--path", path, "--connections", str(connections),
        "--deadline", str(deadline), "--hold", str(deadline),
    ]  # fmt: skip
    client = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert client.stdin is not None
    assert client.stdout is not None
    try:
        ready = _read_event(client.stdout, deadline + 30)
        time.sleep(settle)
        after = server.rss_kb()
        client.stdin.write("measured\n")
        client.stdin.flush()
        done = _read_event(client.stdout, 30)
        client.wait(timeout=60)
        return IdleResult(
            connections=connections,
            established=int(ready["established"]),
            failed=int(ready["failed"]),
            still_open=int(done["still_open"]),
            rss_before_kb=before,
            rss_after_kb=after,
            connect_seconds=float(ready["seconds"]),
            errors={str(k): int(v) for k, v in ready["errors"].items()},
        )
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired) as exc:
        raise MeasureError(f"idle client: {type(exc).__name__}: {exc}") from exc
    finally:
        if client.poll() is None:
            client.kill()
        client.wait()
