"""Benchmark of medusa-logging: an HTTP server under wrk load with its access log going
through each logger, against the same server with no access log, in the same run.

Run from the repository root: ``hatch run bench:python bench/logging_bench.py
[--duration 6] [--rounds 3] [--kinds file,socket,...]``.

For each logger kind, in rounds that alternate with the no-log baseline (this machine's
speed drifts within minutes), a fresh server process pinned to CPU 0 is loaded by
``wrk -t1 -c50`` pinned to CPU 1 on ``GET /hello``; every response writes one access-log
record, so a run of a few seconds sends well over 100,000 records. The receivers (rsyslogd
with UDP and TCP inputs, a line-counting TCP collector) run on CPU 1 with wrk. Afterwards
the server closes its logger (writing what is queued) and reports requests served and the
logger's counters; the records that reached the destination are counted there. ``null`` is a
logger that discards every line: the cost of making the access-log line in medusa-http, which
every logger pays too. ``console`` is what ``medusa serve`` does by default: core's console
queue (here writing to a file in place of standard error).

Printed per kind (medians over rounds): req/s, req/s relative to the baseline, server CPU
per request, records sent, records that arrived, records lost (sent - arrived), and the
logger's own drop count. Targets: no record lost with the default buffer, throughput cost
under 10%.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import MeasureError, run_wrk
from bench.peers import free_port, http_get

from medusa.logging.testing import Rsyslog

BENCH_DIR = Path(__file__).resolve().parent
SCRIPT = BENCH_DIR / "logging_server.py"
KINDS = ("null", "console", "file", "socket", "syslog-udp", "syslog-tcp", "multi", "bridge")


@dataclass
class Row:
    """Runs of one kind."""

    rps: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)  # server CPU per request
    paired_base: list[float] = field(default_factory=list)  # the no-log run just before
    paired_cpu: list[float] = field(default_factory=list)  # its CPU per request
    sent: list[int] = field(default_factory=list)
    arrived: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count_lines(path: Path, needle: bytes | None = None) -> int:
    """Lines of ``path`` (containing ``needle`` when given)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return 0
    if needle is None:
        return data.count(b"\n")
    return sum(1 for line in data.split(b"\n") if needle in line)


def wait_stable(count: Callable[[], int], expected: int, timeout: float = 30.0) -> int:
    """Poll ``count()`` until it reaches ``expected`` or stops growing for 2 s."""
    deadline = time.monotonic() + timeout
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        now = count()
        if now >= expected:
            return int(now)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > 2.0:
            break
        time.sleep(0.1)
    return int(count())


def run_one(
    kind: str, args: argparse.Namespace, tmp: Path, rsyslog: Rsyslog
) -> tuple[float, float, int, int, int]:
    """One loaded run: (req/s, server CPU microseconds per request, records sent, records
    arrived, dropped by the logger)."""
    for old in tmp.glob("access-*.log"):
        old.unlink()
    python = sys.executable
    collector = None
    collector_port = free_port()
    if kind == "socket":
        collector = subprocess.Popen(
            [
                "taskset",
                "-c",
                str(args.client_cpu),
                python,
                str(SCRIPT),
                "collect",
                str(collector_port),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert collector.stdout is not None
        collector.stdout.readline()
    port = free_port()
    before = count_lines(rsyslog.output, f'"app":"bench-{kind}"'.encode())
    server = subprocess.Popen(
        [
            "taskset", "-c", str(args.server_cpu), python, str(SCRIPT), "serve", str(port), kind,
            str(tmp), str(rsyslog.udp_port), str(rsyslog.tcp_port), str(collector_port),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert server.stdout is not None
    if server.stdout.readline().strip() != "ready":
        raise MeasureError(f"{kind}: the server did not start")
    status, _ = http_get(port, "/hello")
    if status != 200:
        raise MeasureError(f"{kind}: /hello answered {status}")
    try:
        cpu_before = cpu_seconds(server.pid)
        wrk = run_wrk(f"http://127.0.0.1:{port}/hello", 50, args.duration, args.client_cpu)
        cpu = cpu_seconds(server.pid) - cpu_before
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=120)
    report = json.loads(out.strip().splitlines()[-1])
    sent = int(report["requests"])
    dropped = sum(int(s["dropped"]) for s in report["loggers"].values())
    if kind in ("none", "null"):
        arrived = sent
    elif kind in ("file", "bridge"):
        arrived = count_lines(tmp / f"access-{kind}.log")
    elif kind == "console":
        arrived = count_lines(tmp / "access-console.log", b" medusa.http.access INFO ")
    elif kind == "socket":
        assert collector is not None
        try:
            cout, _ = collector.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            collector.terminate()
            cout, _ = collector.communicate(timeout=10)
        arrived = int(json.loads(cout.strip().splitlines()[-1])["lines"])
    else:
        app = "bench-multi" if kind == "multi" else f"bench-{kind}"
        needle = f'"app":"{app}"'.encode()
        arrived = wait_stable(lambda: count_lines(rsyslog.output, needle), before + sent) - before
        if kind == "multi":
            arrived = min(arrived, count_lines(tmp / "access-multi.log"))
    return wrk.requests_per_s, cpu * 1e6 / max(1, wrk.requests), sent, arrived, dropped


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=6, help="seconds of load per run")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each kind")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    args = parser.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    for tool in ("wrk", "taskset", "rsyslogd"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            sys.exit(f"{tool} is not installed")
    os.environ.pop("PYTHONASYNCIODEBUG", None)
    rows: dict[str, Row] = {k: Row() for k in ["none", *kinds]}
    with tempfile.TemporaryDirectory(prefix="medusa-logging-bench-") as tmpdir:
        tmp = Path(tmpdir)
        rsyslog_dir = tmp / "rsyslog"
        rsyslog_dir.mkdir()
        with Rsyslog(rsyslog_dir) as rsyslog:
            assert rsyslog.process is not None
            # rsyslogd's threads share CPU 1 with wrk (-a: every thread of the process).
            subprocess.run(
                ["taskset", "-apc", str(args.client_cpu), str(rsyslog.process.pid)],
                check=False,
                capture_output=True,
            )
            for round_no in range(args.rounds):
                for kind in kinds:
                    for k in ("none", kind):
                        rps, cpu_us, sent, arrived, dropped = run_one(k, args, tmp, rsyslog)
                        row = rows[k]
                        if k != "none":
                            row.paired_base.append(rows["none"].rps[-1])
                            row.paired_cpu.append(rows["none"].cpu_us[-1])
                        row.rps.append(rps)
                        row.cpu_us.append(cpu_us)
                        row.sent.append(sent)
                        row.arrived.append(arrived)
                        row.dropped.append(dropped)
                        print(
                            f"round {round_no + 1} {k:11s} {rps:9.0f} req/s  {cpu_us:5.1f} us/req  "
                            f"sent {sent:7d}  "
                            f"arrived {arrived:7d}  dropped {dropped}",
                            file=sys.stderr,
                            flush=True,
                        )
    base = statistics.median(rows["none"].rps)
    print(f"\nmedusa-http GET /hello, wrk -t1 -c50 -d{args.duration}s, {args.rounds} rounds")
    print(f"baseline (no access log): {base:,.0f} req/s (median of {len(rows['none'].rps)})\n")
    base_cpu = statistics.median(rows["none"].cpu_us)
    print(f"baseline server CPU: {base_cpu:.1f} us per request\n")
    header = ("logger", "req/s", "vs none", "CPU us/req", "CPU cost", "paired", "records")
    print(
        "{:12s} {:>9s} {:>8s} {:>10s} {:>8s} {:>8s} {:>9s} {:>9s} {:>6s} {:>8s}".format(
            *header, "arrived", "lost", "dropped"
        )
    )
    for kind in kinds:
        row = rows[kind]
        rps = statistics.median(row.rps)
        ratio = statistics.median(r / b for r, b in zip(row.rps, row.paired_base, strict=True))
        lost = sum(s - a for s, a in zip(row.sent, row.arrived, strict=True))
        cpu = statistics.median(row.cpu_us)
        paired = statistics.median(
            c / b - 1 for c, b in zip(row.cpu_us, row.paired_cpu, strict=True)
        )
        print(
            f"{kind:12s} {rps:9,.0f} {ratio:8.2f} {cpu:10.1f} {cpu / base_cpu - 1:+8.0%} "
            f"{paired:+8.0%} "
            f"{min(row.sent):9,d} "
            f"{min(row.arrived):9,d} {lost:6d} {sum(row.dropped):8d}"
        )
    print("\nvs none: median over rounds of req/s divided by the no-log run just before it;")
    print("CPU us/req: the server process's CPU time (all threads, from /proc) per request,")
    print("which the machine's drifting speed (CPU steal) disturbs less than req/s;")
    print("CPU cost: that against the baseline's median; paired: median over rounds of the CPU")
    print("per request against the no-log run just before it;")
    print("\nrecords: fewest sent in one run; lost: sent - arrived, summed over the rounds;")
    print("dropped: counted by the logger itself (buffer full), summed over the rounds.")


if __name__ == "__main__":
    main(sys.argv[1:])
