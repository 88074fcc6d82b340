"""HTTP benchmark of medusa against nginx, uvicorn, aiohttp, Twisted web and a bare
asyncio + httptools server, each with its access log off and with its default logging.

Run from the repository root: ``hatch run bench:run [--duration 3] [--runs 3] [--only ...]``.
See bench/README.md for what it measures and how to read the tables.
"""

from __future__ import annotations

import argparse
import http.client
import importlib.metadata
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script (``python bench/run.py``): make the ``bench`` package importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import IdleResult, MeasureError, WrkRun, measure_idle, run_wrk
from bench.peers import (
    BENCH_DIR,
    GROUPS,
    REFERENCE,
    SERVERS,
    STATIC_FILES,
    RunningServer,
    ServerSpec,
    StartError,
    Workspace,
    http_get,
    start_server,
)

RESULTS_FILE = BENCH_DIR / "results" / "latest.json"
INSTALL_HINTS = {
    "wrk": "apt-get install wrk",
    "nginx": "apt-get install nginx-light",
    "taskset": "apt-get install util-linux",
}


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    path: str  # the URL path requested
    connections: int  # wrk connections (throughput) or idle connections
    static: bool  # needs a static file server
    expected_size: int  # body size a correct answer has


@dataclass(frozen=True)
class Target:
    """A goal for medusa, from one run: ``row / peer`` (or ``row`` alone when ``peer`` is
    None) of ``metric`` compared with ``bound``.

    ``metric`` is ``rps`` (req/s), ``cpu`` (server CPU per response) or ``kb`` (KB per idle
    connection); ``at_least`` says whether the figure must be >= or <= ``bound``.
    """

    scenario: str
    figure: str  # what is compared, as printed
    row: str  # ServerSpec.key
    peer: str | None
    metric: str
    at_least: bool
    bound: float
    as_change: bool = False  # print the ratio as a change (+12%) rather than 1.12x


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("hello", "hello: GET /hello (13-byte body)", "/hello", 50, False, 13),
    Scenario("static1k", "static 1 KiB: GET /1k.bin", "/1k.bin", 50, True, 1024),
    Scenario("static1m", "static 1 MiB: GET /1m.bin", "/1m.bin", 10, True, 1024 * 1024),
    Scenario("idle", "idle keep-alive connections: server RSS", "/hello", 10_000, False, 13),
)
TARGETS: tuple[Target, ...] = (
    Target(
        "hello", "hello req/s: medusa serve (13-byte file) / uvicorn", "medusa-serve",
        "uvicorn", "rps", True, 2.0,
    ),
    Target(
        "hello", "hello req/s: medusa (fixed-body handler) / bare httptools", "medusa",
        "bare-httptools", "rps", True, 0.6,
    ),
    Target(
        "hello", "hello CPU/resp: medusa serve, default logs / logs off", "medusa-serve+logs",
        "medusa-serve", "cpu", False, 1.15, as_change=True,
    ),
    Target(
        "static1m", "static 1 MiB CPU/resp: medusa serve / nginx", "medusa-serve", "nginx",
        "cpu", False, 1.5,
    ),
    Target("idle", "idle KB per connection: medusa", "medusa", None, "kb", False, 2.0),
    Target(
        "static1k", "static 1 KiB req/s: medusa serve / nginx", "medusa-serve", "nginx", "rps",
        True, 0.5,
    ),
    Target(
        "static1m", "static 1 MiB req/s: medusa serve / nginx", "medusa-serve", "nginx", "rps",
        True, 0.9,
    ),
)  # fmt: skip


@dataclass
class LoadRun:
    """One measured wrk run with what the server spent on it: CPU seconds (user + system,
    its whole process tree) and lines logged, both between just before wrk started and
    just after it ended."""

    wrk: WrkRun
    server_cpu_s: float
    log_lines: int

    @property
    def cpu_per_response_s(self) -> float | None:
        return self.server_cpu_s / self.wrk.requests if self.wrk.requests else None

    @property
    def lines_per_response(self) -> float | None:
        return self.log_lines / self.wrk.requests if self.wrk.requests else None


@dataclass
class Cell:
    """One server in one scenario."""

    status: str  # ok | n/a | failed to start | error
    detail: str = ""
    runs: list[LoadRun] = field(default_factory=list)
    idle: IdleResult | None = None

    def median(self, metric: Callable[[LoadRun], float | None]) -> float | None:
        if self.status != "ok" or not self.runs:
            return None
        values = [value for value in map(metric, self.runs) if value is not None]
        return statistics.median(values) if values else None

    @property
    def rps(self) -> float | None:
        return self.median(lambda run: run.wrk.requests_per_s)

    @property
    def cpu_per_response_s(self) -> float | None:
        return self.median(lambda run: run.cpu_per_response_s)

    @property
    def per_connection_kb(self) -> float | None:
        return self.idle.per_connection_kb if self.status == "ok" and self.idle else None

    def figure(self, metric: str) -> float | None:
        """The median of ``metric``: ``rps``, ``cpu`` (seconds per response) or ``kb``."""
        return {
            "rps": lambda: self.rps,
            "cpu": lambda: self.cpu_per_response_s,
            "kb": lambda: self.per_connection_kb,
        }[metric]()


Results = dict[str, dict[str, Cell]]  # scenario key -> server key -> cell


# --------------------------------------------------------------------------- set-up


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    scenario_keys = [sc.key for sc in SCENARIOS]
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description=__doc__.splitlines()[0] if __doc__ else None
    )
    add = parser.add_argument
    add("--duration", type=int, default=3, metavar="SECONDS", help="length of each wrk run")
    add("--runs", type=int, default=3, metavar="N", help="wrk runs per figure; the median is kept")
    add("--only", default=",".join(GROUPS), metavar="LIST", help=", ".join(GROUPS))
    add(
        "--logs",
        choices=("both", "off", "default"),
        default="both",
        help="rows with access logs off, with each server's default logging, or both",
    )
    add(
        "--scenarios",
        default=",".join(scenario_keys),
        metavar="LIST",
        help=", ".join(scenario_keys),
    )
    add("--idle-connections", type=int, default=10_000, metavar="N", help="for the idle scenario")
    add("--server-cpu", type=int, default=0, metavar="CPU", help="CPU the servers are pinned to")
    add("--client-cpu", type=int, default=1, metavar="CPU", help="CPU wrk and clients run on")
    add("--output", type=Path, default=RESULTS_FILE, metavar="PATH", help="JSON results file")
    args = parser.parse_args(argv)
    groups = _pick(parser, "--only", args.only, list(GROUPS))
    args.servers = [
        spec.key
        for spec in SERVERS
        if spec.group in groups and args.logs in ("both", "default" if spec.default_logs else "off")
    ]
    if not args.servers:
        parser.error(f"--only {args.only} --logs {args.logs}: no server left to run")
    args.groups = groups
    args.scenario_keys = _pick(parser, "--scenarios", args.scenarios, scenario_keys)
    if args.duration < 1 or args.runs < 1 or args.idle_connections < 1:
        parser.error("--duration, --runs and --idle-connections must be at least 1")
    return args


def _pick(parser: argparse.ArgumentParser, flag: str, value: str, known: list[str]) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        parser.error(f"{flag}: unknown {','.join(unknown) or 'empty list'}; choose from {known}")
    return [name for name in known if name in names]  # keep the table order


def check_environment(args: argparse.Namespace) -> list[str]:
    """Problems that prevent any benchmark (missing tools, too few CPUs)."""
    problems = []
    needed = ["wrk", "taskset"] + (["nginx"] if "nginx" in args.groups else [])
    for tool in needed:
        if shutil.which(tool) is None:
            problems.append(
                f"`{tool}` is not on PATH; on Debian/Ubuntu: sudo {INSTALL_HINTS[tool]}"
            )
    cpus = os.sched_getaffinity(0)
    if args.server_cpu == args.client_cpu or not {args.server_cpu, args.client_cpu} <= cpus:
        problems.append(
            f"needs two distinct usable CPUs for server ({args.server_cpu}) and client "
            f"({args.client_cpu}); this process may use {sorted(cpus)}"
        )
    return problems


def raise_nofile_limit(wanted: int) -> int:
    """Raise RLIMIT_NOFILE (inherited by every server and client) and return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= wanted:
        return soft
    if hard != resource.RLIM_INFINITY and hard < wanted:
        try:  # only root may raise the hard limit
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
            return wanted
        except (ValueError, OSError):
            wanted = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return wanted


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- benchmarking


def scenario_path(spec: ServerSpec, scenario: Scenario) -> str:
    """The URL path ``spec`` is asked in ``scenario`` (``medusa serve`` has no code path:
    its hello is the 13-byte file ``/hello.txt``)."""
    return spec.hello_path if scenario.path == "/hello" else scenario.path


def check_answer(server: RunningServer, scenario: Scenario) -> str | None:
    """Why the server's answer to the scenario's URL is wrong, or None if it is right."""
    path = scenario_path(server.spec, scenario)
    try:
        status, body = http_get(server.port, path, timeout=5.0)
    except (OSError, http.client.HTTPException) as exc:
        return f"GET {path}: {exc}"
    if status != 200 or len(body) != scenario.expected_size:
        return f"GET {path} answered {status} with {len(body)} bytes"
    return None


def measured_run(
    server: RunningServer, url: str, scenario: Scenario, args: argparse.Namespace
) -> LoadRun:
    """One wrk run with the server's CPU time and log lines read just before and after
    (after: once the log lines stop growing)."""
    cpu_before, lines_before = server.cpu_seconds(), server.logged_lines()
    run = run_wrk(url, scenario.connections, args.duration, args.client_cpu)
    # A server that writes its log off the loop may still be writing: count that too.
    lines = wait_lines_settled(server)
    cpu_after = server.cpu_seconds()
    return LoadRun(run, cpu_after - cpu_before, lines - lines_before)


def wait_lines_settled(server: RunningServer, quiet: float = 0.1, timeout: float = 5.0) -> int:
    """The server's log line count once it has not grown for ``quiet`` seconds (at most
    ``timeout``): the pipe's reader, or a server that writes its log from a queue in
    batches a few milliseconds apart, may lag behind the last response."""
    deadline = time.monotonic() + timeout
    last, since = server.logged_lines(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        now = server.logged_lines()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def scenario_url(server: RunningServer, scenario: Scenario) -> str:
    return f"http://127.0.0.1:{server.port}{scenario_path(server.spec, scenario)}"


def bench_throughput(
    specs: list[ServerSpec], scenarios: list[Scenario], ws: Workspace, args: argparse.Namespace
) -> Results:
    """Every throughput scenario on every server, the servers' runs interleaved.

    Each server is started once and kept running (idle while the others are measured).
    In each scenario every server is checked and warmed up, then the runs go in rounds,
    each round running every server once, the order rotated from round to round: the
    machine's drift over minutes falls on all rows alike, and the rows of one round,
    measured within a minute of each other, can be compared pairwise.
    """
    results: Results = {sc.key: {} for sc in scenarios}
    servers: dict[str, RunningServer] = {}
    try:
        for spec in specs:
            log(f"[{spec.label}] starting")
            try:
                servers[spec.key] = start_server(spec, ws)
            except StartError as exc:
                log(f"[{spec.label}] failed to start: {exc}")
                for sc in scenarios:
                    served = spec.serves_static or not sc.static
                    cell = Cell("failed to start", str(exc)) if served else Cell("n/a")
                    results[sc.key][spec.key] = cell
        for scenario in scenarios:
            results[scenario.key].update(run_scenario(scenario, specs, servers, args))
    finally:
        for server in servers.values():
            server.stop()
    return results


def run_scenario(
    scenario: Scenario,
    specs: list[ServerSpec],
    servers: dict[str, RunningServer],
    args: argparse.Namespace,
) -> dict[str, Cell]:
    """One scenario on the running servers: a check and a warm-up each, then the rounds."""
    cells: dict[str, Cell] = {}
    active: list[ServerSpec] = []
    for spec in specs:
        server = servers.get(spec.key)
        if scenario.static and not spec.serves_static:
            cells[spec.key] = Cell("n/a")
        elif server is None:
            continue  # failed to start: already in the results
        elif not server.alive():
            cells[spec.key] = Cell("error", "the server had exited")
        elif wrong := check_answer(server, scenario):
            cells[spec.key] = Cell("error", wrong)
        else:
            try:
                run_wrk(scenario_url(server, scenario), scenario.connections, 1, args.client_cpu)
            except MeasureError as exc:
                cells[spec.key] = Cell("error", f"warm-up: {exc}")
                continue
            cells[spec.key] = Cell("ok")
            active.append(spec)
    for round_no in range(args.runs):
        log(f"[{scenario.key}] round {round_no + 1} of {args.runs}")
        shift = round_no % len(active) if active else 0
        for spec in active[shift:] + active[:shift]:
            server, cell = servers[spec.key], cells[spec.key]
            if cell.status != "ok":
                continue
            try:
                load = measured_run(server, scenario_url(server, scenario), scenario, args)
            except MeasureError as exc:
                cells[spec.key] = Cell("error", str(exc))
                continue
            log(
                f"  {spec.label:28} {scenario.key:9} {load.wrk.requests_per_s:>10,.0f} req/s"
                f"  p99 {format_latency(load.wrk.latency_p99_s):>8}"
                f"  CPU {format_cpu(load.cpu_per_response_s):>8}/resp"
                f"  {load.log_lines:,} log lines"
            )
            cell.runs.append(load)
            if not server.alive():
                cells[spec.key] = Cell("error", "the server exited during the run")
    for cell in cells.values():
        errors = sum(run.wrk.socket_errors for run in cell.runs)
        non_2xx = sum(run.wrk.non_2xx for run in cell.runs)
        if cell.status == "ok" and (errors or non_2xx):
            cell.detail = f"{errors} socket errors, {non_2xx} non-2xx responses"
    return cells


def bench_idle(
    spec: ServerSpec, scenario: Scenario, ws: Workspace, args: argparse.Namespace
) -> Cell:
    """Idle connections on a fresh server process, warmed up by a short wrk run."""
    log(f"[{spec.label}] starting for {scenario.connections} idle connections")
    try:
        server = start_server(spec, ws)
    except StartError as exc:
        log(f"[{spec.label}] failed to start: {exc}")
        return Cell("failed to start", str(exc))
    path = scenario_path(spec, scenario)
    try:
        run_wrk(f"http://127.0.0.1:{server.port}{path}", 50, 1, args.client_cpu)
        idle = measure_idle(server, scenario.connections, args.client_cpu, path=path)
    except MeasureError as exc:
        return Cell("error", str(exc))
    finally:
        server.stop()
    cell = Cell("ok", idle=idle)
    notes = []
    if idle.established < idle.connections:
        notes.append(f"only {idle.established} of {idle.connections} connected {idle.errors}")
    if idle.still_open < idle.established:
        notes.append(f"server closed {idle.established - idle.still_open} before measuring")
    cell.detail = "; ".join(notes)
    per_conn = idle.per_connection_kb
    log(
        f"  {spec.label:28} idle      {idle.established} connections in "
        f"{idle.connect_seconds:.1f} s, "
        + (f"{per_conn:.2f} KB/conn" if per_conn is not None else "none connected")
    )
    return cell


def bench_all(args: argparse.Namespace, ws: Workspace) -> Results:
    chosen = [sc for sc in SCENARIOS if sc.key in args.scenario_keys]
    throughput = [sc for sc in chosen if sc.key != "idle"]
    specs = [spec for spec in SERVERS if spec.key in args.servers]
    results: Results = {sc.key: {} for sc in chosen}
    if throughput:
        results.update(bench_throughput(specs, throughput, ws, args))
    for sc in chosen:
        if sc.key != "idle":
            continue
        scenario = Scenario(sc.key, sc.title, sc.path, args.idle_connections, False, 13)
        for spec in specs:
            if spec.default_logs:
                continue  # idle memory is measured with logs off only, to keep the run short
            # A server that could not start for the other scenarios is not tried again.
            failed = [
                cells[spec.key]
                for cells in results.values()
                if spec.key in cells and cells[spec.key].status == "failed to start"
            ]
            results[sc.key][spec.key] = (
                failed[0] if failed else bench_idle(spec, scenario, ws, args)
            )
    return results


# --------------------------------------------------------------------------- reporting


def format_latency(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def format_cpu(seconds: float | None) -> str:
    """Server CPU per response, in microseconds."""
    if seconds is None:
        return "-"
    return f"{seconds * 1e6:,.1f} us" if seconds < 1e-3 else f"{seconds * 1e6:,.0f} us"


def format_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


RUN_METRICS: dict[str, Callable[[LoadRun], float | None]] = {
    "rps": lambda run: run.wrk.requests_per_s,
    "cpu": lambda run: run.cpu_per_response_s,
}


def paired_ratio(row: Cell | None, peer: Cell | None, metric: str) -> float | None:
    """The median over rounds of ``row``'s ``metric`` over ``peer``'s in the same round
    (``rps`` or ``cpu``); None unless both ran."""
    if row is None or peer is None or row.status != "ok" or peer.status != "ok":
        return None
    figure = RUN_METRICS[metric]
    ratios = [
        value
        for mine, theirs in zip(row.runs, peer.runs, strict=False)
        if (value := ratio(figure(mine), figure(theirs))) is not None
    ]
    return statistics.median(ratios) if ratios else None


def render_table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest]).rstrip()

    rule = "  ".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def status_row(label: str, cell: Cell, columns: int) -> list[str]:
    text = "-" if cell.status == "n/a" else cell.status
    return [label, text, *(["-"] * (columns - 2))]


def throughput_table(scenario: Scenario, cells: dict[str, Cell]) -> list[str]:
    reference = cells.get(REFERENCE)
    headers = ["server", "req/s", "MB/s", "p99", "CPU/resp", "log lines/resp", "medusa/peer"]
    rows = []
    for spec in SERVERS:
        cell = cells.get(spec.key)
        if cell is None:
            continue
        if cell.status != "ok":
            rows.append(status_row(spec.label, cell, len(headers)))
            continue
        rps = cell.rps
        mbps = cell.median(lambda run: run.wrk.bytes_per_s / 1024**2)
        p99 = cell.median(lambda run: run.wrk.latency_p99_s)
        lines = cell.median(lambda run: run.lines_per_response)
        flag = " !" if cell.detail else ""
        rows.append(
            [
                spec.label,
                f"{rps:,.0f}{flag}" if rps is not None else "-",
                f"{mbps:,.1f}" if mbps is not None else "-",
                format_latency(p99) if p99 is not None else "-",
                format_cpu(cell.cpu_per_response_s),
                f"{lines:.2f}" if lines is not None else "-",
                "(ref)"
                if spec.key == REFERENCE
                else format_ratio(paired_ratio(reference, cell, "rps")),
            ]
        )
    return [render_table(headers, rows)]


def idle_table(scenario: Scenario, cells: dict[str, Cell]) -> list[str]:
    reference = cells.get(REFERENCE)
    ref_kb = reference.per_connection_kb if reference else None
    headers = ["server", "connected", "RSS before", "RSS after", "KB/conn", "medusa/peer"]
    rows = []
    for spec in SERVERS:
        cell = cells.get(spec.key)
        if cell is None:
            continue
        if cell.status != "ok" or cell.idle is None:
            rows.append(status_row(spec.label, cell, len(headers)))
            continue
        idle, per_conn = cell.idle, cell.per_connection_kb
        flag = " !" if cell.detail else ""
        rows.append(
            [
                spec.label,
                f"{idle.established:,}{flag}",
                f"{idle.rss_before_kb / 1024:,.1f} MB",
                f"{idle.rss_after_kb / 1024:,.1f} MB",
                f"{per_conn:.2f}" if per_conn is not None else "-",
                "(ref)" if spec.key == REFERENCE else format_ratio(ratio(ref_kb, per_conn)),
            ]
        )
    return [render_table(headers, rows)]


def scenario_report(scenario: Scenario, cells: dict[str, Cell], args: argparse.Namespace) -> str:
    if scenario.key == "idle":
        heading = (
            f"{scenario.title}: {args.idle_connections:,} connections, "
            "one GET each, (RSS after - before) / connections"
        )
        body = idle_table(scenario, cells)
    else:
        heading = (
            f"{scenario.title}, {scenario.connections} keep-alive connections, "
            f"{args.duration} s x {args.runs} run{'s' if args.runs > 1 else ''}"
        )
        body = throughput_table(scenario, cells)
    notes = []
    if scenario.path == "/hello" and any(key.startswith("medusa-serve") for key in cells):
        notes.append("  medusa serve has no code path: its hello is GET /hello.txt (13-byte file)")
    for spec in SERVERS:
        cell = cells.get(spec.key)
        if cell is None or not cell.detail:
            continue
        if cell.status == "ok":
            notes.append(f"  ! {spec.label}: {cell.detail}")
        else:
            notes.append(f"  * {spec.label}: {cell.status}: {cell.detail}")
    return "\n".join([heading, *body, *notes])


@dataclass
class Verdict:
    target: Target
    value: float | None
    passed: bool | None
    reason: str  # the measured figure, or why there is none


def _figure(cells: dict[str, Cell], key: str, metric: str) -> tuple[float | None, str]:
    """A row's median ``metric`` in one scenario, or None and why."""
    cell = cells.get(key)
    label = next((spec.label for spec in SERVERS if spec.key == key), key)
    if cell is None:
        return None, f"{label}: not run"
    if cell.status != "ok":
        return None, f"{label}: {cell.status}"
    value = cell.figure(metric)
    return value, "" if value is not None else f"{label}: no figure"


def evaluate(target: Target, results: Results) -> Verdict:
    """The target's figure from one run: a row's median, or the median of the per-round
    ratios of a row to its peer."""
    cells = results.get(target.scenario)
    if cells is None:
        return Verdict(target, None, None, "scenario not run")
    value, why = _figure(cells, target.row, target.metric)
    if value is not None and target.peer is not None:
        peer, why = _figure(cells, target.peer, target.metric)
        if peer is not None:
            value = paired_ratio(cells[target.row], cells[target.peer], target.metric)
            why = "no round with both"
        else:
            value = None
    if value is None:
        return Verdict(target, None, None, why or "no figure")
    passed = value >= target.bound if target.at_least else value <= target.bound
    return Verdict(target, value, passed, format_target_value(target, value))


def format_target_value(target: Target, value: float) -> str:
    """One more digit than the bound has, so that a figure just short of it never prints
    as equal to it."""
    if target.peer is None:
        return f"{value:.3f}"
    if target.as_change:
        return f"{value - 1:+.1%}"
    return f"{value:.3f}x"


def format_bound(target: Target) -> str:
    sign = ">=" if target.at_least else "<="
    if target.peer is None:
        return f"{sign} {target.bound:g}"
    if target.as_change:
        return f"{sign} {target.bound - 1:+.0%}"
    return f"{sign} {target.bound:g}x"


def summary(verdicts: list[Verdict]) -> str:
    headers = ["figure (same run)", "measured", "target", "verdict"]
    rows = [
        [
            verdict.target.figure,
            verdict.reason,
            format_bound(verdict.target),
            {True: "met", False: "missed", None: "n/a"}[verdict.passed],
        ]
        for verdict in verdicts
    ]
    return "targets (medusa on uvloop)\n" + render_table(headers, rows)


# --------------------------------------------------------------------------- JSON


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for dist in ("medusa-core", "medusa-http", "uvicorn", "uvloop", "httptools", "aiohttp"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = None
    try:
        found["twisted"] = importlib.metadata.version("twisted")
    except importlib.metadata.PackageNotFoundError:
        found["twisted"] = None
    for tool, flag in (("wrk", "-v"), ("nginx", "-v")):
        if shutil.which(tool) is None:
            found[tool] = None
            continue
        out = subprocess.run([tool, flag], capture_output=True, text=True, check=False)
        text = (out.stdout + out.stderr).strip().splitlines()
        found[tool] = text[0].partition(" Copyright")[0] if text else None
    return found


def machine() -> dict[str, Any]:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {
        "load_average": os.getloadavg(),
        "cpu": model,
        "cpus": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def results_json(
    args: argparse.Namespace,
    command: str,
    started: float,
    results: Results,
    verdicts: list[Verdict],
) -> dict[str, Any]:
    def cell_json(cell: Cell) -> dict[str, Any]:
        data: dict[str, Any] = {"status": cell.status, "detail": cell.detail}
        if cell.runs:
            data["runs"] = [
                {
                    **asdict(run.wrk),
                    "server_cpu_s": run.server_cpu_s,
                    "cpu_per_response_s": run.cpu_per_response_s,
                    "log_lines": run.log_lines,
                }
                for run in cell.runs
            ]
            data["median"] = {
                "requests_per_s": cell.rps,
                "bytes_per_s": cell.median(lambda run: run.wrk.bytes_per_s),
                "latency_p99_s": cell.median(lambda run: run.wrk.latency_p99_s),
                "cpu_per_response_s": cell.cpu_per_response_s,
                "log_lines_per_response": cell.median(lambda run: run.lines_per_response),
            }
        if cell.idle:
            data["idle"] = asdict(cell.idle)
            data["idle"]["per_connection_kb"] = cell.idle.per_connection_kb
        return data

    return {
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "seconds": round(time.time() - started, 1),
        "settings": {
            "duration_s": args.duration,
            "runs": args.runs,
            "servers": args.servers,
            "logs": args.logs,
            "scenarios": args.scenario_keys,
            "idle_connections": args.idle_connections,
            "server_cpu": args.server_cpu,
            "client_cpu": args.client_cpu,
        },
        "machine": machine(),
        "versions": versions(),
        "scenarios": {sc.key: sc.title for sc in SCENARIOS if sc.key in results},
        "labels": {spec.key: spec.label for spec in SERVERS},
        "results": {
            scenario: {server: cell_json(cell) for server, cell in cells.items()}
            for scenario, cells in results.items()
        },
        "targets": [
            {
                "figure": verdict.target.figure,
                "scenario": verdict.target.scenario,
                "row": verdict.target.row,
                "peer": verdict.target.peer,
                "metric": verdict.target.metric,
                "at_least": verdict.target.at_least,
                "bound": verdict.target.bound,
                "value": verdict.value,
                "passed": verdict.passed,
                "reason": verdict.reason,
            }
            for verdict in verdicts
        ],
    }


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    command = shlex.join(["python", "bench/run.py", *argv])
    print(f"command: {command}")
    print(f"python:  {sys.executable}")
    problems = check_environment(args)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    # The script runs beside wrk, off the servers' CPU.
    os.sched_setaffinity(0, {args.client_cpu})
    limit = raise_nofile_limit(args.idle_connections + 1024)
    if "idle" in args.scenario_keys and limit < args.idle_connections + 64:
        log(f"warning: open-file limit {limit} is too low for {args.idle_connections} connections")
    load = os.getloadavg()[0]
    if load > 1.0:
        log(f"warning: load average is {load:.2f}; other work on this machine skews the figures")
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="medusa-bench-") as tmp:
        ws = Workspace.create(
            Path(tmp), sys.executable, args.server_cpu, args.client_cpu, args.idle_connections
        )
        log(f"document root {ws.docroot}: {', '.join(STATIC_FILES)}")
        results = bench_all(args, ws)
    verdicts = [evaluate(target, results) for target in TARGETS if target.scenario in results]
    print()
    for scenario in SCENARIOS:
        if scenario.key in results:
            print(scenario_report(scenario, results[scenario.key], args))
            print()
    print(summary(verdicts))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    document = results_json(args, command, started, results, verdicts)
    args.output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"\nresults written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
