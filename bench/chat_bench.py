"""Benchmark of medusa-chat's message fan-out against miniircd (not a test).

500 clients join one channel; 10 of them send messages (each carrying its send time) with
at most ``--window`` messages in flight (sent but not yet received by the first member),
for ``--duration`` seconds after a warm-up (a closed loop: a new message leaves as soon as
the first member has received an earlier one, so each message waits behind up to
``window - 1`` others). Every other member receives each message: deliveries per second
and the delivery latency (p50/p99, from every ``--sample``-th member) are measured by one
load process pinned to CPU 1, while the server under test runs pinned to CPU 0
(``taskset``). Delivery latency is the time from the sender's ``send()`` (the message
carries ``time.time_ns()`` taken just before it) to the line's arrival in the member's
socket: the kernel's receive time stamp (``SO_TIMESTAMPING``, of the last segment of the
chunk read, so never early). The time the one load process then takes to reach that
socket among its 500 is its own, not the server's: it is printed beside, as ``read``
(the load process's receipt, what this benchmark measured before 2026-12-06). Servers:
medusa-chat on uvloop and on the standard asyncio loop (``medusa serve -c medusa.toml``),
and miniircd (a Python IRC server from PyPI), one after another on the same machine.

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

Two nodes (issue 18): ``--only medusa,medusa-bus`` also runs ``medusa-bus``, the same
members split across two medusa-chat processes sharing one ``redis-server`` (the chat
``bus`` option): the senders and about half of the members on the first node, the probe
(which closes the window) and the other half on the second, so every message crosses
Redis once. The two nodes and Redis are pinned to CPU 0 like the one server they are
compared with (``--bus-cpus``: other CPUs for each), the load to CPU 1; ``cross p99`` is
the p99 latency of the second node's members only (a delivery through Redis), beside the
same figure for the first node's members in the same run (what crossing Redis adds), and
the CPU of each process. The sampled members alternate between the nodes only with an
even ``--sample``.

``--floor`` first measures the kernel's share of a fan-out on this machine: the CPU time
of one ``send()`` of a line to each of ``--clients`` sockets on 127.0.0.1 (read by a
process on CPU 1), before any Python: a lower bound for one message's fan-out.

Run: ``hatch run bench:python bench/chat_bench.py [--clients 500] [--window 5,20,200,400]
[--duration 5] [--runs 3] [--sample 50] [--only medusa,medusa-asyncio,miniircd,medusa-bus]
[--bus-cpus 0/0/0] [--floor]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import importlib.util
import os
import select
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

MARK = b" PRIVMSG #bench :"
REDIS_OPTIONS = ("--save", "", "--appendonly", "no", "--dir")
"""redis-server's options for the two-node mode: no persistence, then its directory."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Stats:
    """Counts and latencies (nanoseconds) of one measurement: ``latencies``, ``cross`` and
    ``near`` from the sender's write to the line's arrival in the member's socket (the
    kernel's receive time stamp); ``read_latencies`` and ``cross_read`` to the load
    process's read of it (later by the time the one load process took to reach that
    socket among the 500)."""

    deliveries: int = 0
    reads: int = 0
    latencies: list[int] = field(default_factory=list)
    cross: list[int] = field(default_factory=list)  # latencies on the second node
    near: list[int] = field(default_factory=list)  # on the first (the senders') node
    read_latencies: list[int] = field(default_factory=list)
    cross_read: list[int] = field(default_factory=list)
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

    def __init__(
        self, stats: Stats, wake: asyncio.Event, probe: bool, timed: bool, far: bool = False
    ) -> None:
        self.stats = stats
        self.far = far  # on the second node of a bus: its deliveries crossed Redis
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
        self.receive(data, 0)

    def receive(self, data: bytes, arrived: int) -> None:
        """Handle ``data`` read now; ``arrived``: the kernel's receive time stamp of its
        last segment (``time.time_ns()`` clock; 0 when not known: the read time counts)."""
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
        now = time.time_ns()
        arrived = arrived or now
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
                sent = int(line[index + len(MARK) :].rstrip(b"\r"))
                latency = arrived - sent
                stats.latencies.append(latency)
                (stats.cross if self.far else stats.near).append(latency)
                stats.read_latencies.append(now - sent)
                if self.far:
                    stats.cross_read.append(now - sent)
        if count:
            if stats.measuring:
                stats.deliveries += count
                stats.reads += 1
            if self.probe:
                stats.completed += count
                self.wake.set()


SO_TIMESTAMPING = 37  # Linux <asm-generic/socket.h> (not in Python's socket module)
SCM_TIMESTAMPING = SO_TIMESTAMPING
STAMP_FLAGS = (1 << 3) | (1 << 4)  # SOF_TIMESTAMPING_RX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE


class StampedReader:
    """A timed member's connection read with ``recvmsg`` so that each chunk comes with the
    kernel's receive time stamp (``SO_TIMESTAMPING``, software, ``CLOCK_REALTIME`` like
    ``time.time_ns()``): the time the line reached the member's socket, not the time the
    one load process got round to reading it. Given to the member as its transport.

    The stamp of a chunk is that of its last TCP segment, so a line that came in an
    earlier segment of the same read is counted a little late (never early).
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, sock: socket.socket, member: Member
    ) -> None:
        self.loop = loop
        self.sock = sock
        self.member = member
        self.closed = False
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, STAMP_FLAGS)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        loop.add_reader(sock.fileno(), self.read_ready)
        member.connection_made(self)  # type: ignore[arg-type]

    def read_ready(self) -> None:
        try:
            data, ancillary, _, _ = self.sock.recvmsg(1 << 18, 256)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self.close()
            self.member.connection_lost(exc)
            return
        if not data:
            self.close()
            self.member.connection_lost(None)
            return
        arrived = 0
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SCM_TIMESTAMPING and len(value) >= 16:
                seconds, nanoseconds = struct.unpack_from("qq", value)
                arrived = seconds * 1_000_000_000 + nanoseconds
        self.member.receive(data, arrived)

    def write(self, data: bytes) -> None:
        """Send a short line (registration, PONG): the socket's buffer always has room."""
        self.sock.sendall(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


async def connect_stamped(
    loop: asyncio.AbstractEventLoop, port: int, member: Member
) -> StampedReader:
    """A timed member's connection to ``127.0.0.1:port`` (:class:`StampedReader`)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    return StampedReader(loop, sock, member)


def send_floor(clients: int, rounds: int = 200) -> tuple[float, float]:
    """The kernel's share of a fan-out on this machine: ``rounds`` rounds of one
    ``send()`` of a 56-byte line to each of ``clients`` TCP sockets on 127.0.0.1, from
    this process pinned to CPU 0, read by a child process pinned to CPU 1 (one epoll loop,
    like the load process), 2 ms apart so that each round finds the reader asleep, as a
    message at light load does. No Python work but the loop around ``send()``.

    Returns:
        (CPU time per ``send()``, microseconds; CPU time per round, milliseconds).
    """
    line = b":n!u@127.0.0.1 PRIVMSG #bench :" + b"1" * 22 + b"\r\n"
    with socket.create_server(("127.0.0.1", 0), backlog=clients) as listener:
        port = listener.getsockname()[1]
        child = os.fork()
        if child == 0:  # the reader
            try:
                os.sched_setaffinity(0, {1})
                readers = [socket.create_connection(("127.0.0.1", port)) for _ in range(clients)]
                poller = select.epoll()
                by_fd = {sock.fileno(): sock for sock in readers}
                for fd in by_fd:
                    poller.register(fd, select.EPOLLIN)
                while by_fd:
                    for fd, _ in poller.poll():
                        if not by_fd[fd].recv(1 << 16):
                            poller.unregister(fd)
                            by_fd.pop(fd).close()
            finally:
                os._exit(0)
        os.sched_setaffinity(0, {0})
        try:
            senders = [listener.accept()[0] for _ in range(clients)]
            for sock in senders:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            time.sleep(0.2)
            cpu = 0.0
            for _ in range(rounds):
                started = time.process_time()
                for sock in senders:
                    sock.send(line)
                cpu += time.process_time() - started
                time.sleep(0.002)
            for sock in senders:
                sock.close()
        finally:
            os.waitpid(child, 0)
            os.sched_setaffinity(0, {1})
    return cpu / (rounds * clients) * 1e6, cpu / rounds * 1e3


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
    cross_p99: float = float("nan")  # ms, deliveries through Redis (two nodes only)
    near_p99: float = float("nan")  # ms, the senders' node's own members (two nodes only)
    node2_cpu: float = float("nan")  # fraction of one core: the second node
    redis_cpu: float = float("nan")  # fraction of one core: redis-server
    read_p99: float = float("nan")  # ms, to the load process's read (not the socket's)
    cross_read_p99: float = float("nan")  # ms, the same for the second node's members


async def load(
    ports: list[int],
    pids: list[int],
    clients: int,
    senders: int,
    window: int,
    warmup: float,
    duration: float,
    sample: int,
) -> Result:
    """Run one measurement; every ``sample``-th member records delivery latencies.

    With two ``ports`` (two nodes of a bus; ``pids``: the nodes and redis-server), the
    senders are on the first node, the probe (member 0) on the second, the others
    alternate."""
    loop = asyncio.get_running_loop()
    server_pid = pids[0]
    stats = Stats()
    wake = asyncio.Event()
    members: list[Member] = []
    for i in range(clients):
        # probe on the second node, senders on the first, the others (the sampled ones
        # too: every sample-th member) alternating
        node = 0 if len(ports) == 1 or 1 <= i <= senders else member_node(i, sample)
        timed = i % sample == 0  # the probe (member 0) too
        if timed:
            member = Member(stats, wake, i == 0, True, node == 1)
            transport: Any = await connect_stamped(loop, ports[node], member)
        else:
            transport, member = await loop.create_connection(
                functools.partial(Member, stats, wake, False, False, node == 1),
                "127.0.0.1",
                ports[node],
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
    others = [cpu_seconds(pid) for pid in pids[1:]]
    while True:
        now = time.monotonic()
        if not stats.measuring and now >= measure_from:
            stats.measuring = True
            stats.deliveries = stats.reads = 0
            for samples in (stats.latencies, stats.cross, stats.near):
                samples.clear()
            stats.read_latencies.clear()
            stats.cross_read.clear()
            measure_from = now
            others = [cpu_seconds(pid) for pid in pids[1:]]
            server_cpu = cpu_seconds(server_pid)
            server_wait = cpu_wait_seconds(server_pid)
            load_cpu = time.process_time()
        if now >= end:
            break
        while sent - stats.completed < window:
            transport = talkers[next_talker]
            next_talker = (next_talker + 1) % len(talkers)
            assert transport is not None
            transport.write(b"PRIVMSG #bench :%d\r\n" % time.time_ns())
            sent += 1
        wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), 1.0)
    elapsed = time.monotonic() - measure_from
    stats.measuring = False
    server_cpu = (cpu_seconds(server_pid) - server_cpu) / elapsed
    load_cpu = (time.process_time() - load_cpu) / elapsed
    server_wait = (cpu_wait_seconds(server_pid) - server_wait) / elapsed
    node2_cpu = redis_cpu = float("nan")
    if len(pids) == 3:
        used = [cpu_seconds(p) - c for p, c in zip(pids[1:], others, strict=True)]
        node2_cpu, redis_cpu = (u / elapsed for u in used)
    cross_p99 = percentile(stats.cross, 0.99)
    near_p99 = percentile(stats.near, 0.99) if stats.cross else float("nan")
    read_p99 = percentile(stats.read_latencies, 0.99)
    cross_read_p99 = percentile(stats.cross_read, 0.99)
    rate = stats.deliveries / elapsed
    p50 = percentile(stats.latencies, 0.5)
    p99 = percentile(stats.latencies, 0.99)
    dropped = stats.dropped
    for member in members:
        if member.transport is not None:
            member.transport.close()
    await asyncio.sleep(0.2)
    per_read = stats.deliveries / stats.reads if stats.reads else float("nan")
    return Result(
        rate,
        p50,
        p99,
        server_cpu,
        load_cpu,
        dropped,
        server_wait,
        per_read,
        cross_p99,
        near_p99,
        node2_cpu,
        redis_cpu,
        read_p99,
        cross_read_p99,
    )


def percentile(samples: list[int], fraction: float) -> float:
    """The ``fraction`` percentile of ``samples`` (nanoseconds), in milliseconds (NaN when
    there are none)."""
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))] / 1e6


def member_node(index: int, sample: int) -> int:
    """The node (0 or 1) of member ``index`` who is not a sender in the two-node mode: the
    probe (0) on the second; the others, the sampled ones too, alternating."""
    return 1 if index == 0 else (index + index // sample) % 2


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.05)
    raise RuntimeError("server did not start")


def medusa_config(tmp: Path, name: str, backend: str, port: int, bus: str = "") -> Path:
    """A medusa.toml with one chat server for the benchmark (``bus``: a Redis URL)."""
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
        + (f'bus = "{bus}"\n' if bus else "")
    )
    return config


@contextlib.contextmanager
def bus_nodes(tmp: Path, pins: list[list[str]]) -> Iterator[tuple[list[int], list[int]]]:
    """redis-server and two medusa-chat nodes on its bus (uvloop); yields their ports
    (the two nodes) and pids (the two nodes, then redis-server). ``pins``: the ``taskset``
    prefix of the first node, the second and redis-server."""
    redis = shutil.which("redis-server")
    if redis is None:
        raise RuntimeError("redis-server is not installed (apt-get install redis-server)")
    redis_port = free_port()
    procs = [
        subprocess.Popen(
            [
                *pins[2],
                redis,
                "--port",
                str(redis_port),
                "--bind",
                "127.0.0.1",
                *REDIS_OPTIONS,
                str(tmp),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    ports = [free_port(), free_port()]
    try:
        wait_port(redis_port, procs[0])
        medusa = Path(sys.executable).with_name("medusa")
        for i, port in enumerate(ports):
            config = medusa_config(
                tmp, f"node{i}", "uvloop", port, f"redis://127.0.0.1:{redis_port}/0"
            )
            argv = [*pins[i], str(medusa), "serve", "-c", str(config), "--log-level", "warning"]
            procs.insert(i, subprocess.Popen(argv, stdout=subprocess.DEVNULL))
        for port, proc in zip(ports, procs, strict=False):
            wait_port(port, proc)
        yield ports, [proc.pid for proc in procs]
    finally:
        # the nodes first, then redis-server (a node that sees Redis go logs a warning)
        for group in (procs[:-1], procs[-1:]):
            for proc in group:
                proc.terminate()
            for proc in group:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@contextlib.contextmanager
def server(
    name: str, tmp: Path, cpu: int, bus_cpus: tuple[str, ...] = ("0", "0", "0")
) -> Iterator[tuple[list[int], list[int]]]:
    """The server(s) ``name`` pinned to ``cpu`` (``medusa-bus``: its first node, second
    node and redis-server to the ``taskset`` CPU lists ``bus_cpus``); yields their ports
    and pids."""
    taskset = shutil.which("taskset") is not None
    pin = ["taskset", "-c", str(cpu)] if taskset else []
    if name == "medusa-bus":
        pins = [["taskset", "-c", cpus] if taskset else [] for cpus in bus_cpus]
        with bus_nodes(tmp, pins) as found:
            yield found
        return
    port = free_port()
    if name.startswith("medusa"):
        backend = "asyncio" if name.endswith("asyncio") else "uvloop"
        config = medusa_config(tmp, name, backend, port)
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
        yield [port], [proc.pid]
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
    parser.add_argument(
        "--bus-cpus",
        default="0/0/0",
        help="medusa-bus: the CPUs (taskset lists) of the first node, the second node and "
        "redis-server, separated by '/' (default 0/0/0: all on the one server's CPU)",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="first measure the kernel's share of a fan-out to --clients sockets (send_floor)",
    )
    args = parser.parse_args()
    if os.cpu_count() and os.cpu_count() > 1:  # type: ignore[operator]
        os.sched_setaffinity(0, {1})
        if args.floor:
            per_send, per_round = send_floor(args.clients)
            print(
                f"floor: one send() to a socket on 127.0.0.1 costs {per_send:.2f} us of CPU "
                f"here; one line to {args.clients} members {per_round:.2f} ms of CPU 0 "
                f"before any Python (a line waits for the round in progress, then its own)",
                flush=True,
            )
    try:
        import uvloop

        new_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    except ImportError:
        new_loop = asyncio.new_event_loop
    names = args.only.split(",")
    windows = [int(w) for w in args.window.split(",")]
    bus_cpus = tuple(args.bus_cpus.split("/"))
    if len(bus_cpus) != 3:
        parser.error("--bus-cpus: three CPU lists, e.g. 0/1/0")
    results: dict[tuple[int, str], list[Result]] = {(w, n): [] for w in windows for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            for window in windows:
                for name in names:
                    with server(name, Path(tmp), 0, bus_cpus) as (ports, pids):
                        loop = new_loop()
                        try:
                            result = loop.run_until_complete(
                                load(
                                    ports,
                                    pids,
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
            f" {'read p99':>9} {'server CPU':>10} {'us/delivery':>11}"
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
                f" {med.read_p99:9.2f} {med.server_cpu:10.0%} {cost[name]:11.2f}"
            )
        if "medusa-bus" in medians:
            bus = medians["medusa-bus"]
            print(
                f"medusa-bus: cross-node p99 {bus.cross_p99:.2f} ms (target < 5 ms; the "
                f"senders' node's members {bus.near_p99:.2f} ms; read by the load process "
                f"{bus.cross_read_p99:.2f} ms); CPU of "
                f"node 1 {bus.server_cpu:.0%}, node 2 {bus.node2_cpu:.0%}, "
                f"redis-server {bus.redis_cpu:.0%}, load {bus.load_cpu:.0%}"
            )
            if "medusa" in medians:
                print(
                    f"medusa-bus / medusa (one node): "
                    f"{bus.rate / medians['medusa'].rate:.2f}x deliveries/s (target >= 0.5x)"
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
    if "medusa-bus" in best and "medusa" in best:
        ratio = best["medusa-bus"][0] / best["medusa"][0]
        print(f"medusa-bus / medusa capacity: {ratio:.2f}x (target >= 0.5x)")
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
        f" (read {result.read_p99:.2f} ms)"
        f"  server CPU {result.server_cpu:4.0%} ({cpu_per_delivery(result):.2f} us/delivery)"
        f"  {result.per_read:.1f} lines/read  waiting for CPU {result.server_wait:4.0%}"
        f"  load CPU {result.load_cpu:4.0%}"
        + (f"  {result.dropped} clients dropped" if result.dropped else "")
        + (
            f"  cross p99 {result.cross_p99:.2f} ms (read {result.cross_read_p99:.2f} ms;"
            f" same node {result.near_p99:.2f} ms)"
            f"  node 2 CPU {result.node2_cpu:.0%}"
            f"  redis CPU {result.redis_cpu:.0%}"
            if result.node2_cpu == result.node2_cpu  # not NaN: two nodes
            else ""
        )
    )


if __name__ == "__main__":
    sys.exit(main())
