"""Profile (not a test): the server's work per FTP session, as bench/ftp_bench.py's sessions
measure it (connect + anonymous login + PASV + LIST of 24 entries + QUIT).

    hatch run bench:python bench/ftp_profile.py callgrind [--sessions 200] [--server pyftpdlib]
        [--logs off|default] [--account anonymous|user]
    hatch run bench:python bench/ftp_profile.py cprofile [--sessions 2000] [--top 40]
        [--account ...]
    hatch run bench:python bench/ftp_profile.py cpu [--sessions 2000] [--runs 5] [--logs ...]
        [--account ...] [--clients 32]

``callgrind`` runs ``medusa serve -c`` (uvloop, logs off as the benchmark's first rows,
or with its default logging with ``--logs default``: standard error to a file) under
``valgrind --tool=callgrind`` twice, with ``--warmup`` and with ``--warmup`` + ``--sessions``
sessions, and prints the difference of the two instruction totals divided by
``--sessions``: the server's instructions per session, start-up and shutdown excluded.
Unlike sessions/s it hardly depends on the machine's load (``apt-get install valgrind``).

``cprofile`` runs the same server in this process under :mod:`cProfile` (the client in a
thread) and prints the functions with the most internal time. ``cpu`` runs the server as a
process and prints its CPU time per session (``/proc/PID/stat``), median of ``--runs``;
with ``--clients N`` the sessions run N at a time from bench/ftp_load.py's lean client, as
the benchmark's capacity measurement does (the default, 1: one after the other).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ftp_bench import one_session
from bench.ftp_load import run_load
from bench.ftp_servers import (
    ANONYMOUS,
    HOST,
    LIST_ENTRIES,
    MIB,
    PASSWORD,
    USER,
    make_tree,
    medusa_peer,
    pyftpdlib_peer,
)
from bench.measure import callgrind_total

from medusa.core.testing import stop_process


def user_system_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU time of process ``pid`` (``/proc/PID/stat``), seconds."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def run_sessions(
    port: int, count: int, account: tuple[str, str] = ANONYMOUS, clients: int = 1
) -> None:
    """``count`` sessions (see :func:`bench.ftp_bench.one_session`), ``clients`` at a time.

    Raises:
        RuntimeError: when a listing has the wrong number of lines (or a reply is wrong).
    """
    if clients > 1:
        run_load(port, clients, count, account)
        return
    for _ in range(count):
        lines = one_session(port, account)
        if lines != LIST_ENTRIES:
            raise RuntimeError(f"LIST gave {lines} lines")


def wait_greeting(port: int, proc: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=5) as sock:
                if sock.recv(1024).startswith(b"220"):
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the server did not greet in time")


def session_instructions(
    work: Path,
    root: Path,
    sessions: int,
    tag: str,
    server: str,
    logs: str = "off",
    account: str = "anonymous",
) -> int:
    """Instructions executed by a ``server`` process (``medusa serve`` or pyftpdlib) that
    served ``sessions`` sessions (plus the one greeting check), start to exit."""
    ports = range(12000, 17000)
    if server == "pyftpdlib":
        peer = pyftpdlib_peer(root, ports, logs)
    else:
        peer = medusa_peer(work, root, ports, "uvloop", f"medusa-{tag}", logs)
    out = work / f"callgrind.{tag}.out"
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *peer.argv]
    with open(work / f"{tag}.stderr", "wb") as err:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    try:
        wait_greeting(peer.port, proc, 300)
        run_sessions(peer.port, sessions, peer.stor_user if account == "user" else ANONYMOUS)
    finally:
        stop_process(proc, 120)
    return callgrind_total(out)


def main_callgrind(work: Path, root: Path, args: argparse.Namespace) -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    base = session_instructions(
        work, root, args.warmup, "base", args.server, args.logs, args.account
    )
    full = session_instructions(
        work, root, args.warmup + args.sessions, "full", args.server, args.logs, args.account
    )
    print(
        f"instructions: {base} with {args.warmup} sessions, {full} with "
        f"{args.warmup + args.sessions}"
    )
    per = (full - base) / args.sessions
    print(f"{args.server} (logs {args.logs}, {args.account}) instructions per session: {per:,.0f}")
    if args.keep:
        for tag in ("base", "full"):
            shutil.copy(work / f"callgrind.{tag}.out", Path(args.keep) / f"callgrind.{tag}.out")
        print(f"callgrind outputs kept in {args.keep} (callgrind_annotate FILE)")


def main_cpu(work: Path, root: Path, args: argparse.Namespace) -> None:
    peer = medusa_peer(work, root, range(12000, 17000), "uvloop", "medusa", args.logs)
    with open(work / "cpu.stderr", "wb") as err:
        proc = subprocess.Popen(peer.argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    figures = []
    try:
        wait_greeting(peer.port, proc, 30)
        account = peer.stor_user if args.account == "user" else ANONYMOUS
        run_sessions(peer.port, args.warmup, account, args.clients)
        for _ in range(args.runs):
            (user, system), start = user_system_seconds(proc.pid), time.perf_counter()
            run_sessions(peer.port, args.sessions, account, args.clients)
            seconds = time.perf_counter() - start
            user_after, system_after = user_system_seconds(proc.pid)
            user, system = user_after - user, system_after - system
            figures.append(((user + system) / args.sessions * 1000, args.sessions / seconds))
            print(
                f"  {figures[-1][0]:.3f} ms CPU/session ({user / args.sessions * 1000:.3f} user, "
                f"{system / args.sessions * 1000:.3f} system), {figures[-1][1]:.0f} sessions/s"
            )
    finally:
        stop_process(proc, 120)
    print(
        f"median ({args.account}, logs {args.logs}): "
        f"{statistics.median(f[0] for f in figures):.3f} ms server CPU per session, "
        f"{statistics.median(f[1] for f in figures):.0f} sessions/s"
    )


def main_cprofile(root: Path, args: argparse.Namespace) -> None:
    from medusa.core.passwords import hash_password
    from medusa.core.testing import ServerThread
    from medusa.ftp import FTPServer
    from medusa.ftp.authorizers import VirtualUser

    server = FTPServer(
        (HOST, 0),
        anonymous_root=str(root),
        users=[VirtualUser(USER, str(root), frozenset("elr"), hash_password(PASSWORD))],
        passive_ports=(12000, 16999),
        max_sessions_per_ip=1000,
        xferlog=False,
        session_log=False,
    )
    account = (USER, PASSWORD) if args.account == "user" else ANONYMOUS
    profile = cProfile.Profile()
    with ServerThread([server], backend="uvloop") as thread:
        port = server.port
        run_sessions(port, args.warmup, account)
        thread.call(profile.enable)
        done = threading.Event()

        def client() -> None:
            run_sessions(port, args.sessions, account)
            done.set()

        threading.Thread(target=client, daemon=True).start()
        done.wait(600)
        thread.call(profile.disable)
    stats = pstats.Stats(profile)
    if args.dump:
        stats.dump_stats(args.dump)
    stats.sort_stats(args.sort).print_stats(args.top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["callgrind", "cprofile", "cpu"])
    parser.add_argument("--sessions", type=int, default=0, help="default 200, 2000 for others")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--clients", type=int, default=1, help="cpu: sessions at a time")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--server", choices=["medusa", "pyftpdlib"], default="medusa")
    parser.add_argument("--keep", metavar="DIR", help="callgrind: keep the outputs there")
    parser.add_argument("--dump", metavar="FILE", help="cprofile: also write the stats there")
    parser.add_argument(
        "--logs",
        choices=["off", "default"],
        default="off",
        help="callgrind, cpu: the server's logs off, or its default logging (to a file)",
    )
    parser.add_argument(
        "--account",
        choices=["anonymous", "user"],
        default="anonymous",
        help="anonymous sessions, or the virtual user's (a scrypt hash)",
    )
    args = parser.parse_args()
    if not args.sessions:
        args.sessions = 200 if args.mode == "callgrind" else 2000
    work = Path(tempfile.mkdtemp(prefix="ftp-profile-"))
    work.chmod(0o755)
    try:
        root = work / "root"
        make_tree(root, MIB, MIB)
        if args.mode == "callgrind":
            main_callgrind(work, root, args)
        elif args.mode == "cpu":
            main_cpu(work, root, args)
        else:
            main_cprofile(root, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    raise SystemExit(main())
