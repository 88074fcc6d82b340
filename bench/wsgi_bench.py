"""WSGI hello under wrk: Medusa's WSGIHandler against gunicorn (sync worker, 1 worker) and
waitress (its default 4 threads), issue 17's WSGI target (not a test).

Run from the repository root::

    hatch run bench:python bench/wsgi_bench.py [--runs 3] [--duration 5] [--connections 32]
    hatch run bench:python bench/wsgi_bench.py --instructions 2000

Every server runs ``bench/apps/wsgi_hello.py`` (13 bytes with their ``Content-Length``),
pinned to CPU 0 (``--server-cpu``), wrk on CPU 1 (``--client-cpu``). Rows: Medusa with its
access log off and with its default access log (lines to standard output, drained by
``cat`` on the client CPU); gunicorn and waitress as installed, whose defaults write no
access log (so their one row is both "logs off" and "default logs"). The servers' runs are
interleaved; each figure is the median of ``--runs`` runs, and each ratio the median of the
ratios of the same round. Besides requests per second, the server's CPU seconds per
request (``/proc/PID/stat``, threads and children included) are shown: the steadier figure
on a shared machine.

``--instructions N``: Medusa's user-space instructions per WSGI hello request under
callgrind (a server process, a keep-alive client outside valgrind): the difference between
a run of ``N`` requests and one of none, each after the same warm-up, divided by ``N``.
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import callgrind_total, run_wrk
from bench.peers import ServerSpec, StartError, Workspace, free_port, start_server

APPS = Path(__file__).resolve().parent / "apps"


def _medusa(logs: bool) -> Callable[[Workspace, int], list[str]]:
    def command(ws: Workspace, port: int) -> list[str]:
        return [ws.python, str(APPS / "wsgi_medusa.py"), str(port), "logs" if logs else "nologs"]

    return command


def _gunicorn(ws: Workspace, port: int) -> list[str]:
    return [
        ws.python, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync",
        "--bind", f"127.0.0.1:{port}", "--chdir", str(APPS), "wsgi_hello:app",
    ]  # fmt: skip


def _waitress(ws: Workspace, port: int) -> list[str]:
    return [ws.python, "-c", WAITRESS, str(APPS), str(port)]


WAITRESS = (
    "import sys; sys.path.insert(0, sys.argv[1]); import waitress, wsgi_hello; "
    "waitress.serve(wsgi_hello.app, host='127.0.0.1', port=int(sys.argv[2]))"
)

SPECS = [
    ServerSpec("medusa", "medusa wsgi, logs off", False, _medusa(False)),
    ServerSpec("medusa", "medusa wsgi, default log", False, _medusa(True), default_logs=True),
    ServerSpec("gunicorn", "gunicorn sync, 1 worker", False, _gunicorn),
    ServerSpec("waitress", "waitress, 4 threads", False, _waitress),
]


def measure(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="wsgi-bench-") as tmp:
        ws = Workspace.create(
            Path(tmp), sys.executable, args.server_cpu, args.client_cpu, args.connections
        )
        results: dict[str, list[tuple[float, float]]] = {spec.key: [] for spec in SPECS}
        for round_no in range(args.runs):
            for spec in SPECS:
                try:
                    server = start_server(spec, ws)
                except StartError as exc:
                    print(f"{spec.label}: cannot start: {exc}", file=sys.stderr)
                    continue
                try:
                    url = f"http://127.0.0.1:{server.port}/hello"
                    run_wrk(url, args.connections, 1, args.client_cpu)  # warm-up
                    cpu = server.cpu_seconds()
                    run = run_wrk(url, args.connections, args.duration, args.client_cpu)
                    cpu = server.cpu_seconds() - cpu
                finally:
                    server.stop()
                per_request = cpu / run.requests if run.requests else float("nan")
                results[spec.key].append((run.requests_per_s, per_request))
                print(
                    f"round {round_no + 1}: {spec.label}: {run.requests_per_s:,.0f} req/s, "
                    f"{per_request * 1e6:.1f} us CPU/request, errors {run.socket_errors}, "
                    f"non-2xx {run.non_2xx}",
                    file=sys.stderr,
                )
        report(results, args)


def report(results: dict[str, list[tuple[float, float]]], args: argparse.Namespace) -> None:
    print(
        f"WSGI hello, {args.connections} connections, {args.duration} s x {args.runs} runs, "
        f"server on CPU {args.server_cpu}, wrk on CPU {args.client_cpu}"
    )
    print(f"{'server':<28} {'req/s (median)':>15} {'us CPU/request':>15}")
    for spec in SPECS:
        rows = results[spec.key]
        if not rows:
            print(f"{spec.label:<28} {'-':>15} {'-':>15}")
            continue
        rps = statistics.median(r for r, _ in rows)
        cpu = statistics.median(c for _, c in rows)
        print(f"{spec.label:<28} {rps:>15,.0f} {cpu * 1e6:>15.1f}")
    for mine in ("medusa", "medusa+logs"):
        for peer in ("gunicorn", "waitress"):
            pairs = list(zip(results[mine], results[peer], strict=False))
            if not pairs:
                continue
            ratio = statistics.median(a[0] / b[0] for a, b in pairs)
            cpu_ratio = statistics.median(b[1] / a[1] for a, b in pairs)
            print(
                f"{mine} / {peer}: {ratio:.2f}x req/s, {cpu_ratio:.2f}x less CPU per request "
                f"(medians of {len(pairs)} same-round ratios)"
            )


def instructions(args: argparse.Namespace) -> None:
    """Instructions per request of Medusa's WSGI hello under callgrind."""
    warmup = 200
    totals = []
    with tempfile.TemporaryDirectory(prefix="wsgi-callgrind-") as tmp:
        for count in (0, args.instructions):
            out = Path(tmp) / f"callgrind.{count}"
            port = free_port()
            argv = [
                "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                sys.executable, str(APPS / "wsgi_medusa.py"), str(port), "nologs",
            ]  # fmt: skip
            env = {**os.environ, "PYTHONMALLOC": "malloc"}
            process = subprocess.Popen(
                argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
            )
            try:
                connection = _connect(port, deadline=time.monotonic() + 120)
                for _ in range(warmup + count):
                    connection.request("GET", "/hello")
                    response = connection.getresponse()
                    if response.read() != b"Hello, World!":
                        raise SystemExit("unexpected answer")
                connection.close()
            finally:
                process.send_signal(signal.SIGTERM)
                process.wait(120)
            totals.append(callgrind_total(out))
    per_request = (totals[1] - totals[0]) / args.instructions
    print(
        f"medusa WSGI hello: {per_request:,.0f} instructions per request (callgrind, "
        f"{args.instructions} requests on one keep-alive connection, after {warmup})"
    )


def _connect(port: int, deadline: float) -> http.client.HTTPConnection:
    while True:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request("GET", "/hello")
            connection.getresponse().read()
            return connection
        except OSError:
            connection.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--runs", type=int, default=3, help="wrk runs per server (medians are kept)")
    add("--duration", type=int, default=5, metavar="SECONDS", help="length of each wrk run")
    add("--connections", type=int, default=32, help="wrk connections")
    add("--server-cpu", type=int, default=0)
    add("--client-cpu", type=int, default=1)
    add("--instructions", type=int, default=0, metavar="N",
        help="count Medusa's instructions per request over N requests instead")  # fmt: skip
    args = parser.parse_args()
    if args.instructions:
        instructions(args)
    else:
        measure(args)


if __name__ == "__main__":
    main()
