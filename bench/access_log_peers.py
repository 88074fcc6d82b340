"""What an access log costs a peer: uvicorn answering ``GET /hello`` with and without its
access log, in the same conditions as ``bench/logging_bench.py`` (not a test).

Run from the repository root::

    hatch run bench:python bench/access_log_peers.py [--duration 5] [--rounds 3]

uvicorn (uvloop, httptools, the application of ``bench/servers/uvicorn_hello.py``) runs pinned
to CPU 0 and is loaded by ``wrk -t1 -c50`` pinned to CPU 1, in rounds that alternate
``--no-access-log`` with its default access log (the standard library's ``logging``, one
line per response, ``--log-level info``) written to a file (the server's stdout). Printed:
req/s and server CPU per request (all threads, from ``/proc``) for each, and the access
log's cost as in ``logging_bench.py``: median CPU per request against the no-log median,
and paired with the no-log run just before.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.logging_bench import count_lines, cpu_seconds
from bench.measure import MeasureError, run_wrk
from bench.peers import SERVERS_DIR, free_port, http_get


def wait_ready(port: int, timeout: float) -> bool:
    """Poll ``GET /hello`` on ``port`` until it answers 200 or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if http_get(port, "/hello")[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def run_one(logged: bool, args: argparse.Namespace, tmp: Path) -> tuple[float, float, int]:
    """One loaded run of uvicorn: (req/s, server CPU microseconds per request, access-log
    lines written)."""
    port = free_port()
    log_path = tmp / "uvicorn-output.log"
    argv = [
        "taskset", "-c", str(args.server_cpu), sys.executable, "-m", "uvicorn",
        "uvicorn_hello:app", "--app-dir", str(SERVERS_DIR), "--host", "127.0.0.1",
        "--port", str(port), "--loop", "uvloop", "--http", "httptools",
        "--log-level", "info" if logged else "warning",
        "--access-log" if logged else "--no-access-log",
    ]  # fmt: skip
    with log_path.open("wb") as output:  # uvicorn writes its access log to stdout
        server = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
    try:
        if not wait_ready(port, 30.0):
            raise MeasureError("uvicorn did not start or did not answer /hello with 200")
        cpu_before = cpu_seconds(server.pid)
        wrk = run_wrk(f"http://127.0.0.1:{port}/hello", 50, args.duration, args.client_cpu)
        cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        server.wait(60)
    lines = count_lines(log_path, b'"GET /hello HTTP/1.1" 200')
    return wrk.requests_per_s, cpu * 1e6 / max(1, wrk.requests), lines


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds of load per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    args = parser.parse_args(argv)
    runs: dict[bool, list[tuple[float, float, int]]] = {False: [], True: []}
    paired: list[float] = []
    with tempfile.TemporaryDirectory(prefix="medusa-access-log-peers-") as tmpdir:
        for round_no in range(args.rounds):
            for logged in (False, True):
                run = run_one(logged, args, Path(tmpdir))
                runs[logged].append(run)
                label = "access log" if logged else "no access log"
                print(f"round {round_no + 1} uvicorn {label:14s} {run[0]:8.0f} req/s "
                      f"{run[1]:6.1f} us/req  lines {run[2]}", flush=True)  # fmt: skip
            paired.append(runs[True][-1][1] / runs[False][-1][1] - 1)
    base_cpu = statistics.median(r[1] for r in runs[False])
    log_cpu = statistics.median(r[1] for r in runs[True])
    print(f"\nuvicorn GET /hello, wrk -t1 -c50 -d{args.duration}s, {args.rounds} rounds")
    print(f"no access log: {statistics.median(r[0] for r in runs[False]):,.0f} req/s, "
          f"{base_cpu:.1f} us CPU per request")  # fmt: skip
    print(f"access log:    {statistics.median(r[0] for r in runs[True]):,.0f} req/s, "
          f"{log_cpu:.1f} us CPU per request")  # fmt: skip
    print(f"access log cost: {log_cpu / base_cpu - 1:+.0%} CPU per request (median), "
          f"{statistics.median(paired):+.0%} paired with the run before")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
