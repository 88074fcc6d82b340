"""Benchmark of medusa-chat's message fan-out against miniircd (not a test).

500 clients join one channel; 10 of them send messages (each carrying its send time) with
at most ``--window`` messages in flight (sent but not yet received by the first member),
for ``--duration`` seconds after a warm-up. Every other member receives each message:
deliveries per second and the delivery latency (send to receipt, p50/p99, from every
``--sample``-th member) are measured by one load process pinned to CPU 1, while the server
under test runs pinned to CPU 0 (``taskset``). Servers: medusa-chat on uvloop and on the
standard asyncio loop (``medusa serve -c medusa.toml``), and miniircd (a Python IRC server
from PyPI), one after another on the same machine.

Windows from light load (5, 20 in flight: the servers spend most of their time in one
``send()`` per recipient and waiting for the next message) to saturation (200, 400: the
server under test is busy all the time, or the load process is). The summary gives each
server's capacity, its highest median deliveries/s over the windows run, and the ratio of
capacities (the issue's target: medusa-chat >= 3x miniircd).

Each run also prints the server's CPU use and CPU time per delivery (less sensitive to a
shared machine than the rate), the time it waited for a CPU held by other work, lines per
chunk received (how many lines each server write carried), the load process's own CPU use
(near 100%: the figure measures the load process, not the server) and any client the
server dropped. Latency is sampled by every 50th member: with every 10th, parsing their
lines made the load process the bottleneck above 3.5 million deliveries/s.

Run: ``hatch run bench:python bench/chat_bench.py [--clients 500] [--window 5,20,200,400]
[--duration 5] [--runs 3] [--sample 50]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib.util
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

MARK = b" PRIVMSG #bench :"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Stats:
    deliveries: int = 0
    reads: int = 0
    latencies: list[int] = field(default_factory=list)
    joined: int = 0
    completed: int = 0
    dropped: int = 0
    measuring: bool = False


class Member(asyncio.Protocol):
    """One channel member: counts the channel messages it receives.

    Once joined, a member counts deliveries by counting line ends in each chunk received
    (the only lines then are the channel's messages, and a rare PING, answered); only the
    ``timed`` members (a sample spread over the join order) and the ``probe`` (whose
    receipts close the send window) parse each line, for its send time. The load process
    must not be the bottleneck: a per-line Python loop for all 500 members would cap it
    near the servers' own rates.
    """

    def __init__(self, stats: Stats, wake: asyncio.Event, probe: bool, timed: bool) -> None:
        self.stats = stats
        self.wake = wake
        self.probe = probe
        self.parse = probe or timed
        self.buffer = b""
        self.joined = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.dropped += 1

    def data_received(self, data: bytes) -> None:
        if (
            self.joined
            and not self.parse
            and b"PING" not in data
            and b"PING" not in self.buffer[-3:] + data[:3]
        ):
            # The fast path: count line ends; keep the last partial line (for PING).
            stats = self.stats
            if stats.measuring:
                stats.deliveries += data.count(b"\n")
                stats.reads += 1
            self.buffer = data[data.rfind(b"\n") + 1 :]
            return
        now = time.monotonic_ns()
        stats = self.stats
        lines = (self.buffer + data).split(b"\n")
        self.buffer = lines.pop()
        count = 0
        for line in lines:
            index = line.find(MARK)
            if index < 0:
                if not self.joined and b" 366 " in line:
                    self.joined = True
                    stats.joined += 1
                    self.wake.set()
                elif line.startswith(b"PING"):
                    assert self.transport is not None
                    self.transport.write(b"PONG" + line[4:] + b"\n")
                continue
            count += 1
            if stats.measuring and self.parse:
                stats.latencies.append(now - int(line[index + len(MARK) :].rstrip(b"\r")))
        if count:
            if stats.measuring:
                stats.deliveries += count
                stats.reads += 1
            if self.probe:
                stats.completed += count
                self.wake.set()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` so far (Linux ``/proc``), seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_wait_seconds(pid: int) -> float:
    """Time process ``pid``'s main thread spent runnable but waiting for a CPU (Linux
    ``/proc/PID/schedstat``), seconds: on a shared machine, how much other work kept the
    server from running."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9
    except (OSError, IndexError, ValueError):
        return float("nan")


@dataclass
class Result:
    rate: float  # deliveries per second
    p50: float  # ms
    p99: float  # ms
    server_cpu: float  # fraction of one core used by the server while measuring
    load_cpu: float  # fraction of one core used by this load process while measuring
    dropped: int  # clients the server disconnected
    server_wait: float  # fraction of the time the server was runnable but not running
    per_read: float  # deliveries per chunk received (at least the server's lines per write)


async def load(
    port: int,
    server_pid: int,
    clients: int,
    senders: int,
    window: int,
    warmup: float,
    duration: float,
    sample: int,
) -> Result:
    """Run one measurement; every ``sample``-th member records delivery latencies."""
    loop = asyncio.get_running_loop()
    stats = Stats()
    wake = asyncio.Event()
    members: list[Member] = []
    for i in range(clients):
        transport, member = await loop.create_connection(
            functools.partial(Member, stats, wake, i == 0, i % sample == 0), "127.0.0.1", port
        )
        member.transport = transport
        transport.write(f"NICK b{i}\r\nUSER b{i} 0 * :bench\r\nJOIN #bench\r\n".encode())
        members.append(member)
        if i % 50 == 49:
            await asyncio.sleep(0)
    deadline = time.monotonic() + 60
    while stats.joined < clients:
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), max(0.01, deadline - time.monotonic()))
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {stats.joined} of {clients} clients joined")
    talkers = [m.transport for m in members[1 : senders + 1] if m.transport is not None]
    sent = 0
    started = time.monotonic()
    measure_from = started + warmup
    end = measure_from + duration
    next_talker = 0
    server_cpu = load_cpu = server_wait = 0.0
    while True:
        now = time.monotonic()
        if not stats.measuring and now >= measure_from:
            stats.measuring = True
            stats.deliveries = stats.reads = 0
            stats.latencies.clear()
            measure_from = now
            server_cpu = cpu_seconds(server_pid)
            server_wait = cpu_wait_seconds(server_pid)
            load_cpu = time.process_time()
        if now >= end:
            break
        while sent - stats.completed < window:
            transport = talkers[next_talker]
            next_talker = (next_talker + 1) % len(talkers)
            assert transport is not None
            transport.write(b"PRIVMSG #bench :%d\r\n" % time.monotonic_ns())
            sent += 1
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), 1.0)
    elapsed = time.monotonic() - measure_from
    stats.measuring = False
    server_cpu = (cpu_seconds(server_pid) - server_cpu) / elapsed
    load_cpu = (time.process_time() - load_cpu) / elapsed
    server_wait = (cpu_wait_seconds(server_pid) - server_wait) / elapsed
    rate = stats.deliveries / elapsed
    lat = sorted(stats.latencies)
    p50 = lat[len(lat) // 2] / 1e6 if lat else float("nan")
    p99 = lat[int(len(lat) * 0.99)] / 1e6 if lat else float("nan")
    dropped = stats.dropped
    for member in members:
        if member.transport is not None:
            member.transport.close()
    await asyncio.sleep(0.2)
    per_read = stats.deliveries / stats.reads if stats.reads else float("nan")
    return Result(rate, p50, p99, server_cpu, load_cpu, dropped, server_wait, per_read)


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError("server did not start")


@contextlib.contextmanager
def server(name: str, tmp: Path, cpu: int) -> Iterator[tuple[int, int]]:
    port = free_port()
    pin = ["taskset", "-c", str(cpu)] if shutil.which("taskset") else []
    if name.startswith("medusa"):
        backend = "asyncio" if name.endswith("asyncio") else "uvloop"
        config = tmp / f"{name}.toml"
        config.write_text(
            f"""[medusa]
backend = "{backend}"

[[server]]
type = "chat"
listen = "127.0.0.1:{port}"
flood_rate = 0
max_clients_per_address = 5000
ping_interval = 0
registration_timeout = 0
"""
        )
        medusa = Path(sys.executable).with_name("medusa")
        argv = [*pin, str(medusa), "serve", "-c", str(config), "--log-level", "warning"]
    else:
        spec = importlib.util.find_spec("miniircd")
        if spec is None or spec.origin is None:
            raise RuntimeError("miniircd is not installed (hatch run bench:python ...)")
        argv = [
            *pin,
            sys.executable,
            spec.origin,
            "--listen",
            "127.0.0.1",
            "--ports",
            str(port),
        ]
        if os.geteuid() == 0:  # miniircd refuses to run as root unless told so
            argv += ["--setuid", "root"]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, proc)
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--senders", type=int, default=10)
    parser.add_argument(
        "--window",
        default="5,20,200,400",
        help="messages in flight; a comma list runs each (light load to saturation)",
    )
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument(
        "--sample", type=int, default=50, help="every N-th member records latencies"
    )
    parser.add_argument("--only", default="medusa,medusa-asyncio,miniircd")
    args = parser.parse_args()
    if os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
        os.sched_setaffinity(0, {1})
    try:
        import uvloop

        new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    except ImportError:
        new_loop = asyncio.new_event_loop
    names = args.only.split(",")
    windows = [int(w) for w in args.window.split(",")]
    results: dict[tuple[int, str], list[Result]] = {(w, n): [] for w in windows for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            for window in windows:
                for name in names:
                    with server(name, Path(tmp), 0) as (port, pid):
                        loop = new_loop()
                        try:
                            result = loop.run_until_complete(
                                load(
                                    port,
                                    pid,
                                    args.clients,
                                    args.senders,
                                    window,
                                    args.warmup,
                                    args.duration,
                                    args.sample,
                                )
                            )
                        finally:
                            loop.close()
                    results[window, name].append(result)
                    print(
                        f"run {run + 1} window {window:3} {name:16} {describe(result)}", flush=True
                    )
    best: dict[str, tuple[float, int, float]] = {}  # name: (rate, window, server CPU)
    for window in windows:
        print(
            f"\n{args.clients} clients in one channel, {args.senders} senders, "
            f"{window} messages in flight, medians of {args.runs} run(s)"
        )
        print(
            f"{'server':16} {'deliveries/s':>14} {'p50 ms':>8} {'p99 ms':>8}"
            f" {'server CPU':>10} {'us/delivery':>11}"
        )
        medians: dict[str, Result] = {}
        cost: dict[str, float] = {}  # median server CPU per delivery, us
        for name in names:
            runs = results[window, name]
            med = Result(
                *(statistics.median(getattr(r, f.name) for r in runs) for f in fields(Result))
            )
            medians[name] = med
            if name not in best or med.rate > best[name][0]:
                best[name] = (med.rate, window, med.server_cpu)
            cost[name] = statistics.median(cpu_per_delivery(r) for r in runs)
            print(
                f"{name:16} {med.rate:14,.0f} {med.p50:8.2f} {med.p99:8.2f}"
                f" {med.server_cpu:10.0%} {cost[name]:11.2f}"
            )
        if "miniircd" in medians:
            base = medians["miniircd"]
            for name, med in medians.items():
                if name != "miniircd":
                    print(
                        f"{name} / miniircd: {med.rate / base.rate:.2f}x deliveries/s"
                        f" (target >= 3x), {cost['miniircd'] / cost[name]:.2f}x"
                        f" less server CPU per delivery, p99 {med.p99:.2f} vs {base.p99:.2f} ms"
                    )
    print_capacity(best)
    return 0


def print_capacity(best: dict[str, tuple[float, int, float]]) -> None:
    """Each server's capacity: its highest median deliveries/s over the windows run (the
    load at which it delivers most), and the ratio of capacities against miniircd."""
    print("\ncapacity: each server's highest median deliveries/s over the windows run")
    for name, (rate, window, cpu) in best.items():
        bound = "" if cpu >= 0.9 else " (server CPU under 90%: the load process set the pace)"
        print(f"{name:16} {rate:14,.0f} at window {window}, server CPU {cpu:.0%}{bound}")
    if "miniircd" in best:
        base = best["miniircd"][0]
        for name, (rate, _, _) in best.items():
            if name != "miniircd":
                print(f"{name} / miniircd capacity: {rate / base:.2f}x (target >= 3x)")


def cpu_per_delivery(result: Result) -> float:
    """Server CPU time per delivery, microseconds."""
    return result.server_cpu / result.rate * 1e6 if result.rate else float("nan")


def describe(result: Result) -> str:
    return (
        f"{result.rate:12,.0f} deliveries/s  p50 {result.p50:7.2f} ms  p99 {result.p99:7.2f} ms"
        f"  server CPU {result.server_cpu:4.0%} ({cpu_per_delivery(result):.2f} us/delivery)"
        f"  {result.per_read:.1f} lines/read  waiting for CPU {result.server_wait:4.0%}"
        f"  load CPU {result.load_cpu:4.0%}"
        + (f"  {result.dropped} clients dropped" if result.dropped else "")
    )


if __name__ == "__main__":
    sys.exit(main())
