"""Benchmark (not a test): medusa-ftp against pyftpdlib and vsftpd on 127.0.0.1.

    hatch run bench:python bench/ftp_bench.py [--runs 3] [--size-mib 512] [--sessions 200]
        [--clients 32] [--load-sessions 2000] [--concurrent 100] [--concurrent-mib 4]
        [--servers medusa,pyftpdlib,vsftpd] [--logs both|off|default]
        [--metrics retr,stor,capacity,user-capacity,sessions,user-sessions,concurrent]

Every server serves the same temporary tree and is measured in the same run, once with its
logs off and once with its default logging (``--logs both``, the default: two rows per
server, see bench/ftp_servers.py for what each server's default is):

* ``RETR``: one download of a ``--size-mib`` file in ``TYPE I`` (MB/s, 1 MB = 10**6 bytes),
  timed from the ``RETR`` command to its ``226``.
* ``STOR``: one upload of a file of that size (the client sends it with ``sendfile``),
  timed from the ``STOR`` command to its ``226`` (the file is then checked and removed).
* capacity: a server's sessions per second under load: ``--clients`` sessions at the same
  time, each started again as soon as it ends, until ``--load-sessions`` have ended, from
  one lean client (bench/ftp_load.py: a ``selectors`` loop over non-blocking sockets, a
  small state machine per session), so that the server's CPU is the bottleneck. A session
  is connect + 220, anonymous ``USER``/``PASS``, ``PASV``, ``LIST`` of a directory of 24
  entries read to its end, ``226``, ``QUIT``; every reply code and the listing's line
  count are checked. The client's own CPU time per session is reported next to the
  servers': when it nears a server's, the client, not that server, set the pace.
* user-capacity: the same with the virtual user's ``USER``/``PASS`` (medusa checks a scrypt
  hash, then its credential cache; pyftpdlib a plain-text password; vsftpd logs in
  anonymously).
* sessions, user-sessions: the same sessions one after the other, ``--sessions`` of them,
  from a plain blocking-socket client: latency-bound (six round trips and two connections
  per session, client time and wake-ups included), not the server's capacity; kept as the
  "one at a time" figure.
* concurrent: ``--concurrent`` anonymous ftplib sessions log in one after the other, then
  each downloads a ``--concurrent-mib`` file in its own thread, all at once; the
  aggregate MB/s, from the start of all to the end of the last.
* the server's CPU time during each, shown per GB moved and per session: the
  ``usage_usec`` of a cgroup (v2) of its own, which counts every process it forks
  (vsftpd runs processes per session; they are waited for before each reading); without
  one (not root, no cgroup2 mount), its process's user + system time from
  ``/proc/PID/stat``, and none for vsftpd. And the lines it logged, per session.

Servers (started by bench/ftp_servers.py): medusa as ``medusa serve -c medusa.toml``
(uvloop; ``medusa-asyncio`` adds the standard loop), pyftpdlib's default ``FTPServer`` in
its own process (sendfile as it chooses by default), and vsftpd from Debian
(``apt-get install vsftpd``) in the foreground with a configuration of our own. With two
CPUs or more, the servers run on CPU 0 and this client (and the ``cat`` that drains the
servers' output) on CPU 1 (``--no-pin`` to leave them free).

The runs are ``--runs`` rounds (at least 3 for a median); each round measures every server
once for each metric, the servers' order rotated from round to round. Each figure is the
median over the rounds; each ratio (medusa over a peer with the same logs setting) is the
median of the ratios within each round, so that the machine's drift between rounds
cancels. The report ends with medusa's ratios against the issue's targets, logs off:
RETR >= vsftpd, STOR >= 0.9 x vsftpd, sessions/s >= 1.5 x pyftpdlib for anonymous and
virtual-user sessions, judged on the capacity figures (PASS or MISS), and the same ratios
with every server's default logging, and the one-at-a-time ratios without a verdict.
"""

# ruff: noqa: S321  (FTP is the protocol measured, on the loopback interface)
from __future__ import annotations

import argparse
import ftplib
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):
    # Run as a script (``python bench/ftp_bench.py``): make the ``bench`` package importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ftp_load import run_load
from bench.ftp_servers import (
    ANONYMOUS,
    HOST,
    LIST_ENTRIES,
    MIB,
    Peer,
    display_name,
    make_tree,
    medusa_peer,
    pyftpdlib_peer,
    vsftpd_peer,
)

RECV_CHUNK = 1024 * 1024
TIMEOUT = 120.0  # seconds that any client socket operation may take


# -- the client -----------------------------------------------------------------------------


def login(port: int, account: tuple[str, str] = ANONYMOUS) -> ftplib.FTP:
    user, password = account
    ftp = ftplib.FTP()
    ftp.connect(HOST, port, timeout=TIMEOUT)
    ftp.login(user, password)
    return ftp


def open_data(ftp: ftplib.FTP, command: str) -> socket.socket:
    """PASV, connect, send ``command`` and read its 125/150; return the data socket."""
    host, port = ftplib.parse227(ftp.sendcmd("PASV"))
    del host  # every server here announces the loopback address
    sock = socket.create_connection((HOST, port), timeout=TIMEOUT)
    reply = ftp.sendcmd(command)
    if not reply.startswith(("125", "150")):
        sock.close()
        raise ftplib.error_reply(reply)
    return sock


def download(ftp: ftplib.FTP, path: str, buffer: bytearray) -> int:
    """RETR ``path`` into ``buffer`` (reused; the bytes are counted, not kept); 226."""
    view = memoryview(buffer)
    total = 0
    with open_data(ftp, f"RETR {path}") as sock:
        while True:
            count = sock.recv_into(view)
            if not count:
                break
            total += count
    ftp.voidresp()
    return total


def measure_retr(peer: Peer, size: int) -> float:
    ftp = login(peer.port)
    try:
        ftp.voidcmd("TYPE I")
        buffer = bytearray(RECV_CHUNK)
        start = time.perf_counter()
        got = download(ftp, "big.bin", buffer)
        seconds = time.perf_counter() - start
        ftp.quit()
    finally:
        ftp.close()
    if got != size:
        raise RuntimeError(f"{peer.name}: RETR gave {got} bytes, not {size}")
    return size / seconds / 1e6


def measure_stor(peer: Peer, root: Path, size: int) -> float:
    target = root / "upload" / "big.up"
    ftp = login(peer.port, peer.stor_user)
    try:
        ftp.voidcmd("TYPE I")
        with open(root / "big.bin", "rb") as source:
            start = time.perf_counter()
            with open_data(ftp, "STOR upload/big.up") as sock:
                sock.sendfile(source)
                sock.shutdown(socket.SHUT_WR)
            ftp.voidresp()
            seconds = time.perf_counter() - start
        ftp.quit()
    finally:
        ftp.close()
    stored = target.stat().st_size
    target.unlink()
    if stored != size:
        raise RuntimeError(f"{peer.name}: STOR stored {stored} bytes, not {size}")
    return size / seconds / 1e6


class Replies:
    """Reads FTP replies (RFC 959 §4.2) from a control socket: the lean client of the
    sessions measurement, so that the client costs less than any server."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def read(self) -> bytes:
        """Return the next whole reply (multi-line ones included).

        Raises:
            ConnectionError: when the server closes first.
        """
        while True:
            reply = self._take()
            if reply is not None:
                return reply
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the control connection")
            self.buffer += data

    def _take(self) -> bytes | None:
        buffer = self.buffer
        end = buffer.find(b"\r\n")
        if end < 0:
            return None
        if buffer[3:4] == b"-":  # multi-line: up to the line "NNN text"
            last = buffer.find(b"\r\n" + buffer[:3] + b" ")
            end = buffer.find(b"\r\n", last + 2) if last >= 0 else -1
            if end < 0:
                return None
        reply, self.buffer = buffer[: end + 2], buffer[end + 2 :]
        return reply

    def command(self, line: bytes, expect: bytes) -> bytes:
        """Send ``line`` (CRLF added) and return its reply, which must start with
        ``expect``."""
        self.sock.sendall(line + b"\r\n")
        return self.expect(expect)

    def expect(self, code: bytes) -> bytes:
        reply = self.read()
        if not reply.startswith(code):
            raise RuntimeError(f"expected {code!r}, got {reply!r}")
        return reply


def one_session(port: int, account: tuple[str, str] = ANONYMOUS) -> int:
    """connect, 220, login (anonymous, or ``account``: a virtual user), PASV + LIST of
    ``list`` (data read to its end), 226, QUIT; return the number of listing lines."""
    with socket.create_connection((HOST, port), timeout=TIMEOUT) as control:
        control.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        replies = Replies(control)
        replies.expect(b"220")
        replies.command(b"USER " + account[0].encode(), b"331")
        replies.command(b"PASS " + account[1].encode(), b"230")
        pasv = replies.command(b"PASV", b"227").decode()
        _, data_port = ftplib.parse227(pasv)
        listing = b""
        with socket.create_connection((HOST, data_port), timeout=TIMEOUT) as data:
            replies.command(b"LIST list", b"1")  # 125 or 150
            while chunk := data.recv(65536):
                listing += chunk
        replies.expect(b"226")
        replies.command(b"QUIT", b"221")
    return listing.count(b"\n")


def measure_sessions(peer: Peer, count: int, account: tuple[str, str] = ANONYMOUS) -> float:
    """``count`` sessions one after the other (see :func:`one_session`); sessions/s."""
    start = time.perf_counter()
    for _ in range(count):
        lines = one_session(peer.port, account)
        if lines != LIST_ENTRIES:
            raise RuntimeError(f"{peer.name}: LIST gave {lines} lines")
    return count / (time.perf_counter() - start)


def measure_concurrent(peer: Peer, clients: int, size: int) -> float:
    """``clients`` sessions log in one after the other (a burst of connections would overflow
    a small listen backlog, and Linux may then drop a connection the client believes open),
    then all download ``small.bin`` at the same moment, each in its own thread; the
    aggregate MB/s from the start of all to the end of the last."""
    sessions: list[ftplib.FTP] = []
    try:
        for _ in range(clients):
            ftp = login(peer.port)
            sessions.append(ftp)
            ftp.voidcmd("TYPE I")
        go = threading.Barrier(clients + 1)
        results: list[int] = []
        errors: list[BaseException] = []
        lock = threading.Lock()

        def one(ftp: ftplib.FTP) -> None:
            try:
                go.wait(TIMEOUT)
                got = download(ftp, "small.bin", bytearray(256 * 1024))
                ftp.quit()
                with lock:
                    results.append(got)
            except BaseException as exc:
                with lock:
                    errors.append(exc)

        threads = [threading.Thread(target=one, args=(ftp,), daemon=True) for ftp in sessions]
        for thread in threads:
            thread.start()
        go.wait(TIMEOUT)
        start = time.perf_counter()
        for thread in threads:
            thread.join(TIMEOUT)
        seconds = time.perf_counter() - start
    finally:
        for ftp in sessions:
            ftp.close()
    if errors or len(results) != clients or any(got != size for got in results):
        raise RuntimeError(f"{peer.name}: {len(results)}/{clients} downloads, errors {errors[:3]}")
    return clients * size / seconds / 1e6


# -- the report -----------------------------------------------------------------------------


METRICS: list[tuple[str, str]] = [
    ("retr", "RETR MB/s"),
    ("stor", "STOR MB/s"),
    ("capacity", "sessions/s"),
    ("user-capacity", "user sessions/s"),
    ("sessions", "1-at-a-time sessions/s"),
    ("user-sessions", "1-at-a-time user sessions/s"),
    ("concurrent", "concurrent MB/s"),
]

LOAD_METRICS = ("capacity", "user-capacity")

# (metric, peer, title, wanted ratio; 0: reported without a verdict)
TARGETS: list[tuple[str, str, str, float]] = [
    ("retr", "vsftpd", "RETR >= vsftpd", 1.0),
    ("stor", "vsftpd", "STOR >= 0.9 x vsftpd", 0.9),
    ("capacity", "pyftpdlib", "sessions/s >= 1.5 x pyftpdlib", 1.5),
    ("user-capacity", "pyftpdlib", "virtual-user sessions/s >= 1.5 x pyftpdlib", 1.5),
    ("sessions", "pyftpdlib", "sessions/s one at a time (latency-bound)", 0),
    ("user-sessions", "pyftpdlib", "virtual-user one at a time (latency-bound)", 0),
]


def median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def paired_ratio(ours: Peer, theirs: Peer, metric: str) -> tuple[float, list[float]] | None:
    """The median over rounds of ``ours / theirs`` for ``metric``, each ratio taken within
    one round (both measured minutes apart at most), and the ratios."""
    a, b = ours.figures.get(metric, []), theirs.figures.get(metric, [])
    ratios = [x / y for x, y in zip(a, b, strict=False) if y]
    return (statistics.median(ratios), ratios) if ratios else None


def cpu_units(args: argparse.Namespace) -> dict[str, tuple[str, float]]:
    """Server CPU seconds of each measurement, scaled: per GB (10**9 bytes) moved, per
    session in ms."""
    gb = args.size_mib * MIB / 1e9
    return {
        "retr": ("RETR s/GB", 1 / gb),
        "stor": ("STOR s/GB", 1 / gb),
        "capacity": ("ms/session", 1000 / args.load_sessions),
        "user-capacity": ("ms/user session", 1000 / args.load_sessions),
        "sessions": ("ms/session 1-at-a-time", 1000 / args.sessions),
        "user-sessions": ("ms/user session 1-at-a-time", 1000 / args.sessions),
        "concurrent": ("concurrent s/GB", 1 / (args.concurrent * args.concurrent_mib * MIB / 1e9)),
    }


def table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    print(
        "  ".join(
            cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
            for i, cell in enumerate(header)
        )
    )
    print("  ".join("-" * width for width in widths))
    for row in rows:
        print(
            "  ".join(
                cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
                for i, cell in enumerate(row)
            )
        )


def report(peers: list[Peer], args: argparse.Namespace) -> None:
    metrics = [(key, title) for key, title in METRICS if key in args.metrics]
    print()
    print(
        f"FTP on {HOST}: RETR/STOR of {args.size_mib} MiB; {args.load_sessions} "
        f"login+LIST+QUIT sessions, {args.clients} at a time (sessions/s), and "
        f"{args.sessions} one at a time; {args.concurrent} concurrent downloads of "
        f"{args.concurrent_mib} MiB; medians of {args.runs} rounds"
    )
    rows = []
    for peer in peers:
        cells = [peer.name]
        for metric, _ in metrics:
            value = median(peer.figures.get(metric))
            cells.append("-" if value is None else f"{value:,.0f}")
        rows.append(cells)
    table(["server", *[title for _, title in metrics]], rows)
    print()
    print("server CPU (user + system, of every process of the server):")
    units = cpu_units(args)
    rows = []
    for peer in peers:
        cells = [peer.name]
        for metric, _ in metrics:
            value = median(peer.figures.get(f"{metric}_cpu"))
            cells.append("-" if value is None else f"{value * units[metric][1]:.2f}")
        rows.append(cells)
    table(["server", *[units[metric][0] for metric, _ in metrics]], rows)
    loads = [(key, title) for key, title in metrics if key in LOAD_METRICS]
    if loads:
        print()
        print(
            "the load client's own CPU per session, ms (this script's process, on its own "
            "CPU), against the server's; and how busy the server's CPU time kept one CPU "
            "(below 100%: other processes on its CPU, or a client too slow, held it back):"
        )
        for peer in peers:
            cells = []
            for metric, title in loads:
                client = median(peer.figures.get(f"{metric}_client_cpu"))
                server = median(peer.figures.get(f"{metric}_cpu"))
                busy = median(peer.figures.get(f"{metric}_busy"))
                if client is None:
                    continue
                cell = f"{title} {client * 1000 / args.load_sessions:.2f}"
                if server:
                    cell += f" ({client / server:.2f}x the server's)"
                if busy is not None:
                    cell += f", server busy {busy:.0%}"
                cells.append(cell)
            print(f"  {peer.name}: " + ", ".join(cells))
    counted = next((key for key in ("capacity", "sessions") if key in args.metrics), None)
    if counted is not None and any(peer.logs == "default" for peer in peers):
        count = args.load_sessions if counted == "capacity" else args.sessions
        print()
        print("log lines per session (default logs):")
        for peer in peers:
            value = median(peer.figures.get(f"{counted}_lines"))
            if peer.logs == "default" and value is not None:
                print(f"  {peer.name}: {value / count:.1f}")
    print()
    print("every round:")
    for peer in peers:
        for metric, title in metrics:
            runs = peer.figures.get(metric, [])
            if runs:
                print(f"  {peer.name} {title}: " + ", ".join(f"{v:,.1f}" for v in runs))
    by_name = {peer.name: peer for peer in peers}
    print()
    print("medusa / peer, the median of the ratios of each round (same logs setting):")
    for logs in ("off", "default"):
        medusa = by_name.get(display_name("medusa", logs))
        if medusa is None:
            continue
        for other in peers:
            if other.logs != logs or other.server == "medusa":
                continue
            cells = []
            for metric, title in metrics:
                paired = paired_ratio(medusa, other, metric)
                if paired is not None:
                    cells.append(f"{title} {paired[0]:.2f}")
            print(f"  {medusa.name} / {other.name}: " + ", ".join(cells))
    print()
    for logs in ("off", "default"):
        medusa = by_name.get(display_name("medusa", logs))
        if medusa is None:
            continue
        suffix = "" if logs == "off" else " (default logs)"
        for metric, other_server, title, wanted in TARGETS:
            compared = by_name.get(display_name(other_server, logs))
            paired = paired_ratio(medusa, compared, metric) if compared is not None else None
            if paired is None:
                print(f"{title + suffix:<58} not measured")
                continue
            ratio, ratios = paired
            verdict = "PASS" if ratio >= wanted else "MISS"
            if logs != "off" or not wanted:
                verdict = "(no target)"
            each = ", ".join(f"{r:.2f}" for r in ratios)
            print(
                f"{title + suffix:<58} medusa/{other_server} = {ratio:.2f} "
                f"(rounds: {each}) {verdict}"
            )


def measure(peer: Peer, root: Path, args: argparse.Namespace, metric: str) -> None:
    """One measurement of ``metric`` against ``peer``: the figure goes to
    ``peer.figures[metric]``, with the server's CPU time (``METRIC_cpu``, seconds) and
    the lines it logged meanwhile (``METRIC_lines``)."""
    size, small = args.size_mib * MIB, args.concurrent_mib * MIB
    os.sync()  # no write-back of an earlier file during this measurement
    peer.settle()
    cpu, lines = peer.cpu_seconds(), peer.log_lines()
    seconds = 0.0
    if metric == "retr":
        value = measure_retr(peer, size)
    elif metric == "stor":
        value = measure_stor(peer, root, size)
    elif metric == "sessions":
        value = measure_sessions(peer, args.sessions)
    elif metric == "user-sessions":
        value = measure_sessions(peer, args.sessions, peer.stor_user)
    elif metric in LOAD_METRICS:
        account = peer.stor_user if metric == "user-capacity" else ANONYMOUS
        load = run_load(peer.port, args.clients, args.load_sessions, account)
        value = load.per_second
        peer.figures.setdefault(f"{metric}_client_cpu", []).append(load.client_cpu)
        seconds = load.seconds
    else:
        value = measure_concurrent(peer, args.concurrent, small)
    peer.settle()
    cpu = peer.cpu_seconds() - cpu
    lines = peer.log_lines() - lines
    peer.figures.setdefault(metric, []).append(value)
    if peer.exact_cpu or peer.server != "vsftpd":
        peer.figures.setdefault(f"{metric}_cpu", []).append(cpu)
    peer.figures.setdefault(f"{metric}_lines", []).append(lines)
    if seconds and (peer.exact_cpu or peer.server != "vsftpd"):
        peer.figures.setdefault(f"{metric}_busy", []).append(cpu / seconds)
    print(
        f"  {peer.name} {metric}: {value:,.1f} (server CPU {cpu:.2f} s, {lines} log lines)",
        file=sys.stderr,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds (at least 3 for medians)")
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--sessions", type=int, default=200, help="one at a time")
    parser.add_argument("--clients", type=int, default=32, help="sessions at a time")
    parser.add_argument(
        "--load-sessions", type=int, default=2000, help="sessions of a capacity run"
    )
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--concurrent-mib", type=int, default=4)
    parser.add_argument("--servers", default="medusa,pyftpdlib,vsftpd")
    parser.add_argument(
        "--logs",
        choices=["off", "default", "both"],
        default="both",
        help="each server with its logs off, with its default logging, or both (two rows)",
    )
    parser.add_argument(
        "--metrics",
        default="retr,stor,capacity,user-capacity,sessions,user-sessions,concurrent",
        help="a comma-separated subset of "
        "retr,stor,capacity,user-capacity,sessions,user-sessions,concurrent",
    )
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    args.metrics = [name.strip() for name in args.metrics.split(",") if name.strip()]
    known = [key for key, _ in METRICS]
    for metric in args.metrics:
        if metric not in known:
            parser.error(f"unknown metric {metric!r} (one of {', '.join(known)})")
    wanted = [name.strip() for name in args.servers.split(",") if name.strip()]
    modes = ["off", "default"] if args.logs == "both" else [args.logs]
    pin = not args.no_pin and (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    if pin:
        os.sched_setaffinity(0, {1})
    size, small = args.size_mib * MIB, args.concurrent_mib * MIB
    work = Path(tempfile.mkdtemp(prefix="ftp-bench-"))
    work.chmod(0o755)
    peers: list[Peer] = []
    try:
        root = work / "root"
        print(f"making the tree in {root} ...", file=sys.stderr)
        # The big file only for RETR/STOR, the small one only for concurrent downloads:
        # writing 512 MiB first would add a minute to a sessions-only run.
        moves = any(metric in args.metrics for metric in ("retr", "stor"))
        make_tree(root, size if moves else 0, small if "concurrent" in args.metrics else 0)
        # Passive ranges below Linux's ephemeral ports (32768 up), 2,500 ports each, so
        # that 100 passive listeners at once seldom pick the same port.
        ranges = iter(range(12000 + 2500 * n, 14500 + 2500 * n) for n in range(8))
        makers: dict[str, Callable[[str], Peer]] = {
            "medusa": lambda logs: medusa_peer(work, root, next(ranges), "uvloop", "medusa", logs),
            "medusa-asyncio": lambda logs: medusa_peer(
                work, root, next(ranges), "asyncio", "medusa-asyncio", logs
            ),
            "pyftpdlib": lambda logs: pyftpdlib_peer(root, next(ranges), logs),
            "vsftpd": lambda logs: vsftpd_peer(work, root, next(ranges), logs),
        }
        for name in wanted:
            if name not in makers:
                parser.error(f"unknown server {name!r} (one of {', '.join(makers)})")
        for logs in modes:
            for name in wanted:
                peer = makers[name](logs)
                peer.start(work, 0 if pin else None, 1 if pin else None)
                peers.append(peer)
        for run in range(args.runs):
            order = peers[run % len(peers) :] + peers[: run % len(peers)]
            print(f"round {run + 1} of {args.runs} ...", file=sys.stderr)
            for metric in args.metrics:
                for peer in order:
                    measure(peer, root, args, metric)
    finally:
        for peer in peers:
            peer.stop()
        shutil.rmtree(work, ignore_errors=True)
    report(peers, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
