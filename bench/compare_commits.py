"""Compare two commits of medusa in one run: instructions per hello request under callgrind
and server CPU per request of ``medusa serve`` (not a test).

Run from the repository root (``apt-get install valgrind wrk``)::

    hatch run bench:python bench/compare_commits.py BASE [HEAD] [--rounds 3]

BASE (and HEAD, when given) is checked out with ``git worktree add --detach`` in a
temporary directory; without HEAD the working tree is measured as it is, uncommitted changes
included. Each tree's ``packages/*/src`` directories go first on ``PYTHONPATH``, so the bench
environment's Python (uvloop, httptools) imports that tree's medusa. The measuring code is
this working tree's (``bench/logging_instructions.py``, ``bench/peers.py``): both trees are
measured the same way.

In each of ``--rounds`` rounds, base then head (head first in odd rounds):

* **instructions per hello request** (``--kinds``, default ``none,console``: no access log,
  and the default access log to the console): ``bench/logging_instructions.py``'s method,
  an :class:`HTTPChannel` fed ``GET /hello`` in memory under ``valgrind --tool=callgrind``,
  ``--requests`` of them minus a run without them, every thread counted. Callgrind's counts
  repeat to within about 0.1 %, so one round (``--callgrind-rounds``, default 1) is enough.
* **server CPU per request**: ``medusa serve ROOT --log-level warning`` (access log off)
  pinned to ``--server-cpu``, loaded by ``wrk -t1`` on ``--client-cpu`` for ``--duration``
  seconds per file: ``hello.txt`` (13 bytes, 50 connections), ``1k.bin`` (50) and
  ``1m.bin`` (1 MiB, 10); user + system time of the server (``/proc/PID/stat``) over the
  requests wrk counted, in microseconds.

It prints each figure's median per tree and head/base (the median of the per-round ratios
for CPU), and flags a ratio above ``--limit`` (default 1.03: issue 16's 3 %).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import callgrind_run, run_wrk
from bench.peers import ServerSpec, StartError, Workspace, start_server

REPO = Path(__file__).resolve().parent.parent
INSTRUCTIONS_SCRIPT = str(REPO / "bench" / "logging_instructions.py")
FILES = (("hello.txt", 50), ("1k.bin", 50), ("1m.bin", 10))
"""The files ``medusa serve`` is measured on, with wrk's connections."""


@dataclass
class Tree:
    """One side of the comparison: a source tree and what was measured on it."""

    name: str  # "base" or "head"
    root: Path
    commit: str
    instructions: dict[str, list[float]] = field(default_factory=dict)
    cpu_us: dict[str, list[float]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """This process's environment with the tree's sources first on ``PYTHONPATH``."""
        sources = sorted(str(src) for src in self.root.glob("packages/*/src"))
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([*sources, env.get("PYTHONPATH", "")]).rstrip(":")
        return env


def git(*args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@contextmanager
def worktree(commit: str, where: Path) -> Iterator[Path]:
    """A detached ``git worktree`` of ``commit`` at ``where``, removed afterwards."""
    git("worktree", "add", "--detach", str(where), commit)
    try:
        yield where
    finally:
        git("worktree", "remove", "--force", str(where))


def instructions(tree: Tree, kind: str, requests: int, tmp: Path) -> float:
    """Instructions per hello request of ``tree`` for one access-log ``kind``."""
    env = {**tree.env(), "PYTHONHASHSEED": "0"}  # the same dict layouts in every run

    def total(count: int) -> int:
        out = tmp / f"callgrind.{tree.name}.{kind}.{count}.out"
        argv = [sys.executable, INSTRUCTIONS_SCRIPT, "serve", kind, str(count), str(tmp)]
        return callgrind_run(out, argv, env=env)

    return (total(requests) - total(0)) / requests


def serve_command(tree: Tree) -> ServerSpec:
    """``medusa serve`` of ``tree``, access log off (``env`` execs Python with the tree's
    ``PYTHONPATH``, keeping the PID that ``taskset`` gave)."""
    path = tree.env()["PYTHONPATH"]

    def command(ws: Workspace, port: int) -> list[str]:
        main = "import sys; from medusa.core.cli import main; sys.exit(main())"
        return [
            "env", f"PYTHONPATH={path}", ws.python, "-c", main,
            "serve", str(ws.docroot), "--http", f"127.0.0.1:{port}", "--log-level", "warning",
        ]  # fmt: skip

    return ServerSpec(tree.name, tree.name, True, command, hello_path="/hello.txt")


def server_cpu(tree: Tree, ws: Workspace, duration: int) -> dict[str, float]:
    """Server CPU microseconds per request for each of :data:`FILES`, one wrk run each (after
    1 s of warm-up) on one freshly started server."""
    server = start_server(serve_command(tree), ws)
    try:
        figures = {}
        for name, connections in FILES:
            url = f"http://127.0.0.1:{server.port}/{name}"
            run_wrk(url, connections, 1, ws.client_cpu)
            before = server.cpu_seconds()
            run = run_wrk(url, connections, duration, ws.client_cpu)
            after = server.cpu_seconds()
            if run.socket_errors or run.non_2xx or not run.requests:
                raise SystemExit(f"{tree.name} {name}: wrk saw errors: {run}")
            figures[name] = (after - before) / run.requests * 1e6
        return figures
    finally:
        server.stop()


def report(base: Tree, head: Tree, limit: float) -> bool:
    """Print the medians and head/base ratios; True when every ratio is within ``limit``."""
    ok = True
    print(f"\nbase {base.commit}  head {head.commit}")
    print(f"{'figure':32s} {'base':>12s} {'head':>12s} {'head/base':>10s}")

    def row(label: str, b: list[float], h: list[float], ratio: float) -> None:
        nonlocal ok
        flag = "  > limit" if ratio > limit else ""
        ok = ok and not flag
        med_b, med_h = statistics.median(b), statistics.median(h)
        print(f"{label:32s} {med_b:12,.1f} {med_h:12,.1f} {ratio:10.4f}{flag}")

    for kind, counts in base.instructions.items():
        b, h = counts, head.instructions[kind]
        row(f"instructions/request ({kind})", b, h, statistics.median(h) / statistics.median(b))
    for name, values in base.cpu_us.items():
        ratios = [h / b for b, h in zip(values, head.cpu_us[name], strict=True) if b]
        row(f"CPU us/request ({name})", values, head.cpu_us[name], statistics.median(ratios))
    return ok


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the commit to compare against")
    parser.add_argument("head", nargs="?", help="the commit measured (default: the work tree)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of CPU measurements")
    parser.add_argument("--callgrind-rounds", type=int, default=1)
    parser.add_argument("--kinds", default="none,console", help="logging_instructions kinds")
    parser.add_argument("--requests", type=int, default=5000, help="per callgrind run")
    parser.add_argument("--duration", type=int, default=3, help="seconds per wrk run")
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument("--limit", type=float, default=1.03, help="largest head/base ratio")
    parser.add_argument("--no-cpu", action="store_true", help="callgrind counts only")
    args = parser.parse_args(argv)
    tools = ["valgrind"] + ([] if args.no_cpu else ["wrk", "taskset"])
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        raise SystemExit(f"missing: {', '.join(missing)} (apt-get install valgrind wrk)")
    os.sched_setaffinity(0, {args.client_cpu})
    with tempfile.TemporaryDirectory(prefix="medusa-compare-") as tmpdir:
        tmp = Path(tmpdir)
        base_commit = git("rev-parse", "--short", args.base)
        head_commit = git("rev-parse", "--short", args.head) if args.head else "work tree"
        with worktree(args.base, tmp / "base") as base_root:
            if args.head:
                with worktree(args.head, tmp / "head") as head_root:
                    ok = compare(args, tmp, Tree("base", base_root, base_commit),
                                 Tree("head", head_root, head_commit))  # fmt: skip
            else:
                ok = compare(args, tmp, Tree("base", base_root, base_commit),
                             Tree("head", REPO, head_commit))  # fmt: skip
    return 0 if ok else 1


def compare(args: argparse.Namespace, tmp: Path, base: Tree, head: Tree) -> bool:
    """Measure both trees, alternating them round by round, and print the report."""
    kinds = [kind for kind in args.kinds.split(",") if kind]
    for number in range(args.callgrind_rounds):
        for tree in (base, head) if number % 2 == 0 else (head, base):
            for kind in kinds:
                count = instructions(tree, kind, args.requests, tmp)
                tree.instructions.setdefault(kind, []).append(count)
                print(f"round {number + 1} {tree.name} {kind}: {count:,.0f} instructions",
                      file=sys.stderr, flush=True)  # fmt: skip
    if not args.no_cpu:
        (tmp / "ws").mkdir()
        ws = Workspace.create(tmp / "ws", sys.executable, args.server_cpu, args.client_cpu, 1024)
        for number in range(args.rounds):
            for tree in (base, head) if number % 2 == 0 else (head, base):
                try:
                    figures = server_cpu(tree, ws, args.duration)
                except StartError as exc:
                    raise SystemExit(f"{tree.name}: medusa serve did not start: {exc}") from exc
                for name, value in figures.items():
                    tree.cpu_us.setdefault(name, []).append(value)
                shown = ", ".join(f"{name} {value:.1f} us" for name, value in figures.items())
                print(f"round {number + 1} {tree.name}: {shown}", file=sys.stderr, flush=True)
    return report(base, head, args.limit)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
