"""CPU cost of one access-log record, in-process, without wrk: the steadier companion of
``bench/logging_bench.py`` on a noisy machine.

Run from the repository root: ``hatch run bench:python bench/logging_cost.py
[--records 100000] [--rate 40000] [--rounds 5] [--kinds null,file,...]``.

For each logger kind a medusa-http :class:`~medusa.http.HTTPServer` (not started) gets that
logger as its access log, and ``server.log_access(request)`` is called for ``--records``
finished ``GET /hello`` requests, in bursts of 40 paced to ``--rate`` records per second (the
load of the wrk benchmark), then the logger is flushed. Measured with CPU clocks, so time
stolen by other machines' work counts far less than in a req/s figure:

* ``loop us``: CPU of the calling thread (what the event loop pays): making the Common Log
  Format line and ``log()``;
* ``writer us``: CPU of every other thread of the process (the logger's writer thread:
  formatting, system calls, wake-ups);
* ``total us``: the sum, per record, and ``vs null``: what the logger adds to making the line.

Destinations: a file in a temporary directory, and a sink subprocess (on another CPU when
there is one) that reads and discards TCP and UDP. Medians over ``--rounds``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.logging_server import NullLogger

from medusa.core.log import Logger
from medusa.http import HTTPServer, Request
from medusa.logging import FileLogger, SocketLogger, SyslogLogger

KINDS = ("null", "file", "socket", "syslog-udp", "syslog-tcp")
BURST = 40


class Peer:
    """Stands in for an HTTP channel: only its ``peer`` is read by the access log."""

    peer = ("127.0.0.1", 50123)
    log_host = ""


def sink(tcp_port: int, udp_port: int) -> None:
    """Read and discard everything sent to ``tcp_port`` (any number of connections) and
    ``udp_port``, until killed."""
    listener = socket.create_server(("127.0.0.1", tcp_port))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    udp.bind(("127.0.0.1", udp_port))

    def drain(conn: socket.socket) -> None:
        with conn:
            while conn.recv(1 << 20):
                pass

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=drain, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    print("ready", flush=True)
    while True:
        udp.recv(65536)


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A port nobody listens on now (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def make_logger(kind: str, tmp: Path, tcp: int, udp: int) -> Logger:
    """The access log of one row."""
    if kind == "null":
        return NullLogger()
    if kind == "file":
        return FileLogger(tmp / "access.log", reopen_on_sighup=False)
    if kind == "socket":
        return SocketLogger(tcp)
    if kind == "syslog-udp":
        return SyslogLogger(transport="udp", port=udp)
    if kind == "syslog-tcp":
        return SyslogLogger(transport="tcp", port=tcp)
    raise SystemExit(f"unknown kind {kind!r}")


def measure(
    kind: str, records: int, rate: float, tmp: Path, tcp: int, udp: int
) -> tuple[float, float]:
    """One run: (loop CPU, writer CPU) in microseconds per record."""
    logger = make_logger(kind, tmp, tcp, udp)
    server = HTTPServer(("127.0.0.1", 0), handlers=[], access_log=logger)
    channel: Any = Peer()
    requests = []
    for n in range(BURST):
        request = Request(channel, "GET", f"/hello?{n}", "/hello", str(n), "1.1", {}, True, 0.0)
        request.bytes_out = 13
        requests.append(request)
    flush = getattr(logger, "flush", None)
    if flush is not None:  # connect first, outside the measurement
        logger.log("warm-up")
        flush(10.0)
    log_access = server.log_access
    period = BURST / rate
    loop_cpu = 0.0
    process_before = time.process_time()
    loop_before = time.thread_time()
    next_burst = time.monotonic()
    for _ in range(records // BURST):
        for request in requests:
            log_access(request)
        next_burst += period
        pause = next_burst - time.monotonic()
        if pause > 0:
            loop_cpu += time.thread_time() - loop_before
            time.sleep(pause)
            loop_before = time.thread_time()
    loop_cpu += time.thread_time() - loop_before
    if flush is not None:
        flush(60.0)
    process = time.process_time() - process_before
    close = getattr(logger, "close", None)
    if close is not None:
        close(10.0)
        stats = logger.stats()  # type: ignore[attr-defined]
        if stats["dropped"]:
            print(f"{kind}: {stats['dropped']} dropped", file=sys.stderr)
    done = records // BURST * BURST
    return loop_cpu * 1e6 / done, (process - loop_cpu) * 1e6 / done


def main(argv: list[str]) -> None:
    if argv[:1] == ["sink"]:
        sink(int(argv[1]), int(argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=40_000, help="records per second")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--cpu", type=int, default=0, help="CPU of this process (-1: any)")
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    if args.cpu >= 0 and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    tcp, udp = free_port(), free_port(socket.SOCK_DGRAM)
    others = sorted(os.sched_getaffinity(0) if args.cpu < 0 else set(range(os.cpu_count() or 1)))
    sink_cpus = [c for c in others if c != args.cpu] or others
    sink_process = subprocess.Popen(
        ["taskset", "-c", ",".join(map(str, sink_cpus)), sys.executable, __file__, "sink",
         str(tcp), str(udp)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert sink_process.stdout is not None
    sink_process.stdout.readline()
    rows: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
    try:
        with tempfile.TemporaryDirectory(prefix="medusa-logging-cost-") as tmpdir:
            for round_no in range(args.rounds):
                for kind in kinds:
                    loop, writer = measure(kind, args.records, args.rate, Path(tmpdir), tcp, udp)
                    rows[kind].append((loop, writer))
                    print(
                        f"round {round_no + 1} {kind:11s} loop {loop:5.2f} us  "
                        f"writer {writer:5.2f} us",
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        sink_process.kill()
        sink_process.wait()
    print(
        f"\nCPU per access-log record, {args.records:,} records at {args.rate:,.0f}/s, "
        f"median of {args.rounds} rounds\n"
    )
    print(f"{'logger':12s} {'loop us':>8s} {'writer us':>10s} {'total us':>9s} {'vs null':>8s}")
    null_total = None
    for kind in kinds:
        loop = statistics.median(r[0] for r in rows[kind])
        writer = statistics.median(r[1] for r in rows[kind])
        total = statistics.median(r[0] + r[1] for r in rows[kind])
        if kind == "null":
            null_total = total
        extra = f"{total - null_total:+8.2f}" if null_total is not None else f"{'':>8s}"
        print(f"{kind:12s} {loop:8.2f} {writer:10.2f} {total:9.2f} {extra}")


if __name__ == "__main__":
    main(sys.argv[1:])
