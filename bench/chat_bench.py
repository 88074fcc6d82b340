"""Benchmark of medusa-chat's message fan-out against miniircd (not a test).

500 clients join one channel; 10 of them send messages (each carrying its send time) with
at most ``--window`` messages in flight, for ``--duration`` seconds after a warm-up. Every
other member receives each message: deliveries per second and the delivery latency (send
to receipt, p50/p99) are measured by one load process pinned to CPU 1, while the server
under test runs pinned to CPU 0 (``taskset``). Servers: medusa-chat on uvloop and on the
standard asyncio loop (``medusa serve -c medusa.toml``), and miniircd (a Python IRC server
from PyPI), one after another on the same machine.

Run: ``hatch run bench:python bench/chat_bench.py [--clients 500] [--duration 5] [--runs 3]``
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
from dataclasses import dataclass, field
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
    latencies: list[int] = field(default_factory=list)
    joined: int = 0
    completed: int = 0
    measuring: bool = False


class Member(asyncio.Protocol):
    """One channel member: counts the channel messages it receives."""

    def __init__(self, stats: Stats, wake: asyncio.Event, probe: bool) -> None:
        self.stats = stats
        self.wake = wake
        self.probe = probe
        self.buffer = b""
        self.joined = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
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
            if stats.measuring:
                stats.latencies.append(now - int(line[index + len(MARK) :].rstrip(b"\r")))
        if count:
            if stats.measuring:
                stats.deliveries += count
            if self.probe:
                stats.completed += count
                self.wake.set()


async def load(
    port: int, clients: int, senders: int, window: int, warmup: float, duration: float
) -> tuple[float, float, float]:
    """Return (deliveries per second, p50 ms, p99 ms)."""
    loop = asyncio.get_running_loop()
    stats = Stats()
    wake = asyncio.Event()
    members: list[Member] = []
    for i in range(clients):
        transport, member = await loop.create_connection(
            functools.partial(Member, stats, wake, i == 0), "127.0.0.1", port
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
    while True:
        now = time.monotonic()
        if not stats.measuring and now >= measure_from:
            stats.measuring = True
            stats.deliveries = 0
            stats.latencies.clear()
            measure_from = now
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
    rate = stats.deliveries / elapsed
    lat = sorted(stats.latencies)
    p50 = lat[len(lat) // 2] / 1e6 if lat else float("nan")
    p99 = lat[int(len(lat) * 0.99)] / 1e6 if lat else float("nan")
    for member in members:
        if member.transport is not None:
            member.transport.close()
    await asyncio.sleep(0.2)
    return rate, p50, p99


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
def server(name: str, tmp: Path, cpu: int) -> Iterator[int]:
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
        yield port
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
    parser.add_argument("--window", type=int, default=5, help="messages in flight")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=1)
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
    results: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            for name in names:
                with server(name, Path(tmp), 0) as port:
                    loop = new_loop()
                    try:
                        result = loop.run_until_complete(
                            load(
                                port,
                                args.clients,
                                args.senders,
                                args.window,
                                args.warmup,
                                args.duration,
                            )
                        )
                    finally:
                        loop.close()
                results[name].append(result)
                rate, p50, p99 = result
                print(
                    f"run {run + 1} {name:16} {rate:12,.0f} deliveries/s"
                    f"  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms",
                    flush=True,
                )
    print(
        f"\n{args.clients} clients in one channel, {args.senders} senders, "
        f"{args.window} messages in flight, medians of {args.runs} run(s)"
    )
    print(f"{'server':16} {'deliveries/s':>14} {'p50 ms':>8} {'p99 ms':>8}")
    medians: dict[str, tuple[float, float, float]] = {}
    for name, runs in results.items():
        rate = statistics.median(r[0] for r in runs)
        p50 = statistics.median(r[1] for r in runs)
        p99 = statistics.median(r[2] for r in runs)
        medians[name] = (rate, p50, p99)
        print(f"{name:16} {rate:14,.0f} {p50:8.2f} {p99:8.2f}")
    if "miniircd" in medians:
        base = medians["miniircd"][0]
        for name, (rate, _, p99) in medians.items():
            if name != "miniircd":
                print(
                    f"{name} / miniircd: {rate / base:.2f}x deliveries/s (target >= 3x), "
                    f"p99 {p99:.2f} vs {medians['miniircd'][2]:.2f} ms"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
