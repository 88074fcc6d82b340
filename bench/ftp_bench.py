"""Benchmark (not a test): medusa-ftp against pyftpdlib and vsftpd on 127.0.0.1.

    hatch run bench:python bench/ftp_bench.py [--runs 3] [--size-mib 512] [--sessions 200]
        [--concurrent 100] [--concurrent-mib 4] [--servers medusa,pyftpdlib,vsftpd]

Every server serves the same temporary tree and is measured in the same run:

* ``RETR``: one download of a ``--size-mib`` file in ``TYPE I`` (MB/s, 1 MB = 10**6 bytes),
  timed from the ``RETR`` command to its ``226``.
* ``STOR``: one upload of a file of that size (the client sends it with ``sendfile``),
  timed from the ``STOR`` command to its ``226`` (the file is then checked and removed).
* sessions: ``--sessions`` sessions one after the other, each connect + 220, anonymous
  ``USER``/``PASS``, ``PASV``, ``LIST`` of a directory of 24 entries read to its end,
  ``226``, ``QUIT`` (sessions/s), from a lean client on plain sockets (cheaper than
  ftplib, so that the client costs less than the servers).
* concurrent: ``--concurrent`` anonymous ftplib sessions log in one after the other, then
  each downloads a ``--concurrent-mib`` file in its own thread, all at once; the
  aggregate MB/s, from the start of all to the end of the last.
* the server's CPU time during each (``/proc/PID/stat``; not for vsftpd, whose sessions
  are processes of their own).

Servers (started by bench/ftp_servers.py): medusa as ``medusa serve -c medusa.toml``
(uvloop; ``medusa-asyncio`` adds the standard loop), pyftpdlib's default ``FTPServer`` in
its own process (sendfile as it chooses by default), and vsftpd from Debian
(``apt-get install vsftpd``) in the foreground with a configuration of our own. None
writes a transfer or session log. With two CPUs or more, the servers run on CPU 0 and this
client on CPU 1 (``--no-pin`` to leave them free).

Each figure is the median over ``--runs`` runs; the runs interleave the servers. The report
ends with medusa's ratios against the issue's targets: RETR >= vsftpd, STOR >= 0.9 x vsftpd,
sessions/s >= 1.5 x pyftpdlib (PASS or MISS).
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

from bench.ftp_servers import (
    ANONYMOUS,
    HOST,
    LIST_ENTRIES,
    MIB,
    Peer,
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


def one_session(port: int) -> int:
    """connect, 220, anonymous login, PASV + LIST of ``list`` (data read to its end), 226,
    QUIT; return the number of listing lines."""
    with socket.create_connection((HOST, port), timeout=TIMEOUT) as control:
        control.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        replies = Replies(control)
        replies.expect(b"220")
        replies.command(b"USER " + ANONYMOUS[0].encode(), b"331")
        replies.command(b"PASS " + ANONYMOUS[1].encode(), b"230")
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


def measure_sessions(peer: Peer, count: int) -> float:
    """``count`` sessions one after the other (see :func:`one_session`); sessions/s."""
    start = time.perf_counter()
    for _ in range(count):
        lines = one_session(peer.port)
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
    ("sessions", "sessions/s"),
    ("concurrent", "concurrent MB/s"),
]


def median(peer: Peer, metric: str) -> float | None:
    values = peer.figures.get(metric)
    return statistics.median(values) if values else None


def report(peers: list[Peer], args: argparse.Namespace) -> None:
    print()
    print(
        f"FTP on {HOST}: RETR/STOR of {args.size_mib} MiB, {args.sessions} sequential "
        f"login+LIST+QUIT sessions, {args.concurrent} concurrent downloads of "
        f"{args.concurrent_mib} MiB; median of {args.runs} run(s)"
    )
    header = f"{'server':<16}" + "".join(f"{title:>17}" for _, title in METRICS)
    print(header)
    for peer in peers:
        cells = []
        for metric, _ in METRICS:
            value = median(peer, metric)
            cells.append("-" if value is None else f"{value:.1f}")
        print(f"{peer.name:<16}" + "".join(f"{cell:>17}" for cell in cells))
    print()
    print("server CPU time (median; single-process servers only, in 10 ms clock ticks):")
    units = {
        "retr": ("RETR s", 1.0),
        "stor": ("STOR s", 1.0),
        "sessions": ("ms/session", 1000 / args.sessions),
        "concurrent": ("concurrent s", 1.0),
    }
    print(f"{'server':<16}" + "".join(f"{title:>17}" for title, _ in units.values()))
    for peer in peers:
        cells = []
        for metric, (_, scale) in units.items():
            value = median(peer, f"{metric}_cpu")
            cells.append("-" if value is None else f"{value * scale:.2f}")
        print(f"{peer.name:<16}" + "".join(f"{cell:>17}" for cell in cells))
    print()
    print("every run:")
    for peer in peers:
        for metric, title in METRICS:
            runs = peer.figures.get(metric, [])
            if runs:
                print(f"  {peer.name} {title}: " + ", ".join(f"{v:.1f}" for v in runs))
    by_name = {peer.name: peer for peer in peers}
    medusa = by_name.get("medusa")
    if medusa is None:
        return
    print()
    targets: list[tuple[str, str, str, float]] = [
        ("retr", "vsftpd", "RETR >= vsftpd", 1.0),
        ("stor", "vsftpd", "STOR >= 0.9 x vsftpd", 0.9),
        ("sessions", "pyftpdlib", "sessions/s >= 1.5 x pyftpdlib", 1.5),
    ]
    for metric, other_name, title, wanted in targets:
        other = by_name.get(other_name)
        ours = median(medusa, metric)
        theirs = median(other, metric) if other is not None else None
        if ours is None or theirs is None:
            print(f"{title:<32} not measured")
            continue
        ratio = ours / theirs
        verdict = "PASS" if ratio >= wanted else "MISS"
        print(f"{title:<32} medusa/{other_name} = {ratio:.2f} (target {wanted}) {verdict}")
    for other in peers:
        if other is medusa:
            continue
        ratios = []
        for metric, title in METRICS:
            ours, theirs = median(medusa, metric), median(other, metric)
            if ours is not None and theirs:
                ratios.append(f"{title} {ours / theirs:.2f}")
        print(f"medusa / {other.name}: " + ", ".join(ratios))


def cpu_seconds(pid: int) -> float:
    """CPU time (``utime`` + ``stime`` of ``/proc/PID/stat``) of process ``pid``, seconds,
    in clock ticks (usually 10 ms)."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()  # fields from the 3rd (state) on
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(peer: Peer, root: Path, args: argparse.Namespace) -> None:
    """One run of every measurement against ``peer``; the figures go to ``peer.figures``,
    with the server's CPU time of each (``METRIC_cpu``, seconds)."""
    size, small = args.size_mib * MIB, args.concurrent_mib * MIB
    assert peer.proc is not None
    for metric in ("retr", "stor", "sessions", "concurrent"):
        os.sync()  # no write-back of an earlier file during this measurement
        cpu = cpu_seconds(peer.proc.pid)
        if metric == "retr":
            value = measure_retr(peer, size)
        elif metric == "stor":
            value = measure_stor(peer, root, size)
        elif metric == "sessions":
            value = measure_sessions(peer, args.sessions)
        else:
            value = measure_concurrent(peer, args.concurrent, small)
        cpu = cpu_seconds(peer.proc.pid) - cpu
        peer.figures.setdefault(metric, []).append(value)
        if peer.single_process:
            peer.figures.setdefault(f"{metric}_cpu", []).append(cpu)
        print(f"  {metric}: {value:.1f} (server process CPU {cpu:.2f} s)", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--concurrent", type=int, default=100)
    parser.add_argument("--concurrent-mib", type=int, default=4)
    parser.add_argument("--servers", default="medusa,pyftpdlib,vsftpd")
    parser.add_argument("--no-pin", action="store_true")
    args = parser.parse_args()
    wanted = [name.strip() for name in args.servers.split(",") if name.strip()]
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
        make_tree(root, size, small)
        # Passive ranges below Linux's ephemeral ports (32768 up), 5,000 ports each, so
        # that 100 passive listeners at once seldom pick the same port.
        ranges = iter(range(12000 + 5000 * n, 17000 + 5000 * n) for n in range(4))
        makers: dict[str, Callable[[], Peer]] = {
            "medusa": lambda: medusa_peer(work, root, next(ranges), "uvloop", "medusa"),
            "medusa-asyncio": lambda: medusa_peer(
                work, root, next(ranges), "asyncio", "medusa-asyncio"
            ),
            "pyftpdlib": lambda: pyftpdlib_peer(root, next(ranges)),
            "vsftpd": lambda: vsftpd_peer(work, root, next(ranges)),
        }
        for name in wanted:
            if name not in makers:
                parser.error(f"unknown server {name!r} (one of {', '.join(makers)})")
            peer = makers[name]()
            peer.start(work, 0 if pin else None)
            peers.append(peer)
        for run in range(1, args.runs + 1):
            for peer in peers:
                print(f"run {run}: {peer.name} ...", file=sys.stderr)
                measure(peer, root, args)
    finally:
        for peer in peers:
            peer.stop()
        shutil.rmtree(work, ignore_errors=True)
    report(peers, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
