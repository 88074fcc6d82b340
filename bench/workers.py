"""Benchmark of ``--workers``: request balance, CPU per request, reloads and replacements.

Run from the repository root: ``hatch run bench:python bench/workers.py [--runs 3]
[--duration 5] [--parts balance,reload,replace] [--workers 1,2] [--server-cpus 0]
[--client-cpus 1]``. See bench/README.md for what it measures and how to read it.

Parts:

``balance``
    ``wrk -c50`` on ``GET /1k.bin`` against, in rounds that alternate them: ``medusa serve
    ROOT --status --workers N`` for each N of ``--workers`` (the master's shared sockets)
    and N single-process servers on one port with ``SO_REUSEPORT``
    (``bench/servers/medusa_reuseport.py``), each with its logs off (``--log-level
    warning``) and with its defaults (the access log on stderr, into a file). Per run: the
    requests each worker served (the status JSON's ``workers[*].requests``, or each
    ``SO_REUSEPORT`` process's own counters, read before and after the load) and the
    busiest/quietest ratio; req/s; the CPU seconds of every server process (master and
    workers, ``/proc/PID/stat``) per request served.
``reload``
    ``wrk -c50`` runs while the master gets SIGHUP ``--reloads`` times (each waits for its
    "reload done" line); wrk's socket errors (by kind) and non-2xx answers are counted.
``replace``
    ``kill -9`` of a worker ``--kills`` times, idle and under ``wrk -c50``: the time from
    the kill to the replacement's "worker N (pid P) ready" line (its own timestamp).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import functools
import http.client
import json
import os
import re
import shutil
import signal
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
    # Run as a script (``python bench/workers.py``): make the ``bench`` package importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import MeasureError, WrkRun, parse_wrk
from bench.peers import (
    BENCH_DIR,
    HELLO_BODY,
    SERVERS_DIR,
    STATIC_FILES,
    RunningServer,
    ServerSpec,
    StartError,
    free_port,
    process_tree,
)
from bench.run import raise_nofile_limit, render_table

RESULTS_FILE = BENCH_DIR / "results" / "workers.json"
REUSEPORT_SCRIPT = SERVERS_DIR / "medusa_reuseport.py"
PATH = "/1k.bin"  # the small static file every load requests
PARTS = ("balance", "reload", "replace")
LOG_MODES = ("off", "default")  # --log-level warning (no access log); medusa's defaults

_LOG_TIME = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
_READY = re.compile(_LOG_TIME + r" \S+ INFO worker (\d+) \(pid (\d+)\) ready$", re.MULTILINE)
_DIED = re.compile(_LOG_TIME + r" \S+ \w+ worker (\d+) \(pid (\d+)\) died", re.MULTILINE)
_RELOAD_DONE = "reload done"
_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_ACCESS_STATUS = re.compile(r'^.* medusa\.http\.access INFO .*" (\d{3}) \S+$', re.MULTILINE)
_PROBLEM = re.compile(r"^\S+ \S+ \S+ (?:WARNING|ERROR|CRITICAL) .*$", re.MULTILINE)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def load_average() -> float:
    return os.getloadavg()[0]


# --------------------------------------------------------------------------- measurements


def cpu_seconds(root: int) -> float:
    """CPU seconds (user + system) of ``root`` and every live descendant, plus those of
    the children they have reaped (``/proc/PID/stat`` fields 14 to 17)."""
    ticks = 0
    for pid in process_tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(value) for value in fields[11:15])
    return ticks / _CLOCK_TICKS


def socket_errors(output: str) -> dict[str, int]:
    """wrk's "Socket errors" line by kind (connect, read, write, timeout); zeros if none."""
    match = _SOCKET_ERRORS.search(output)
    values = [int(v) for v in match.groups()] if match else [0, 0, 0, 0]
    return dict(zip(("connect", "read", "write", "timeout"), values, strict=True))


@dataclass
class ServerLog:
    """What the servers' stderr says about answers that were not 2xx and about problems."""

    statuses: dict[str, int]  # access-log status code -> count, codes other than 2xx
    examples: list[str]  # a few of those access-log lines
    problems: list[str]  # WARNING/ERROR lines, each distinct text once (timestamps dropped)

    @classmethod
    def read(
        cls, text: str, skip_problems: Sequence[str] = ("max_connections lowered",)
    ) -> ServerLog:
        statuses: dict[str, int] = {}
        examples: list[str] = []
        for match in _ACCESS_STATUS.finditer(text):
            code = match.group(1)
            if not code.startswith("2"):
                statuses[code] = statuses.get(code, 0) + 1
                if len(examples) < 5:
                    examples.append(match.group(0))
        problems: list[str] = []
        for match in _PROBLEM.finditer(text):
            line = match.group(0).split(" ", 2)[2]
            if line not in problems and not any(skip in line for skip in skip_problems):
                problems.append(line)
        return cls(statuses, examples, problems[:10])


# A wrk script that writes each answer other than 2xx/3xx to stderr (status, headers, body),
# so that the report can say what the failed requests were.
WRK_FAILURES_SCRIPT = """\
response = function(status, headers, body)
  if status >= 400 then
    local text = ""
    for name, value in pairs(headers) do text = text .. name .. ": " .. value .. "; " end
    io.stderr:write("FAILED " .. status .. " | " .. text .. "| " .. string.sub(body, 1, 80)
      .. "\\n")
  end
end
"""
_WRK_FAILED = re.compile(r"^FAILED (\d+) \| (.*)$", re.MULTILINE)


def wrk_argv(
    url: str, args: argparse.Namespace, duration: int, script: Path | None = None
) -> list[str]:
    """wrk on the client CPUs: one thread per client CPU, ``--connections``, ``--latency``."""
    lua = ["-s", str(script)] if script is not None else []
    return [
        "taskset", "-c", args.client_cpus,
        "wrk", f"-t{args.client_threads}", f"-c{args.connections}", f"-d{duration}s",
        "--latency", *lua, url,
    ]  # fmt: skip


def failed_answers(wrk_stderr: str) -> tuple[dict[str, int], list[str]]:
    """The answers :data:`WRK_FAILURES_SCRIPT` reported: count by status, a few examples."""
    counts: dict[str, int] = {}
    examples: list[str] = []
    for match in _WRK_FAILED.finditer(wrk_stderr):
        counts[match.group(1)] = counts.get(match.group(1), 0) + 1
        text = f"{match.group(1)} {match.group(2).strip()}"
        if text not in examples and len(examples) < 3:
            examples.append(text)
    return counts, examples


def run_wrk(url: str, args: argparse.Namespace, duration: int) -> tuple[WrkRun, str]:
    """One wrk run of ``duration`` seconds: the parsed report and wrk's whole output."""
    try:
        result = subprocess.run(
            wrk_argv(url, args, duration),
            capture_output=True,
            text=True,
            timeout=duration + 30,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise MeasureError(f"wrk did not finish within {duration + 30} s") from exc
    if result.returncode != 0:
        raise MeasureError(f"wrk exited with {result.returncode}: {result.stderr.strip()[-300:]}")
    return parse_wrk(result.stdout), result.stdout


class BackgroundWrk:
    """wrk running while something else happens; :meth:`finish` stops it (SIGINT makes wrk
    print its report) and parses the report."""

    def __init__(
        self, url: str, args: argparse.Namespace, script: Path | None = None, limit: int = 600
    ) -> None:
        self.proc = subprocess.Popen(
            wrk_argv(url, args, limit, script),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stderr = ""

    def finish(self) -> tuple[WrkRun, str]:
        """Stop wrk; its parsed report and its output (its stderr in :attr:`stderr`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, self.stderr = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired as exc:
            self.proc.kill()
            self.proc.communicate()
            raise MeasureError("wrk did not stop within 30 s of SIGINT") from exc
        if self.proc.returncode != 0:
            raise MeasureError(f"wrk exited with {self.proc.returncode}: {self.stderr[-300:]}")
        return parse_wrk(out), out


def get_json(port: int, path: str, timeout: float = 5.0) -> dict[str, Any]:
    """GET ``path`` on 127.0.0.1:``port`` and decode its JSON body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise MeasureError(f"GET {path} answered {response.status}")
        document: dict[str, Any] = json.loads(body)
        return document
    finally:
        conn.close()


def answers(port: int) -> bool:
    """Does the status page on 127.0.0.1:``port`` answer?"""
    try:
        get_json(port, "/status?format=json", timeout=1.0)
    except (OSError, http.client.HTTPException, MeasureError):
        return False
    return True


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` every 20 ms until it is true; MeasureError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise MeasureError(f"{what} did not happen within {timeout:.0f} s")


# --------------------------------------------------------------------------- the servers


@dataclass(frozen=True)
class Setup:
    """One way to run ``workers`` processes on one port."""

    kind: str  # "shared" (medusa serve --workers N) or "reuseport" (N processes)
    workers: int
    logs: str  # "off" or "default"

    @property
    def label(self) -> str:
        how = "--workers" if self.kind == "shared" else "SO_REUSEPORT x"
        return f"{how} {self.workers}, logs {self.logs}"


@dataclass(frozen=True)
class Counts:
    """What one worker (or SO_REUSEPORT process) had served, by its pid."""

    requests: dict[int, int]
    connections: dict[int, int]


class Deployment:
    """The server processes of one :class:`Setup`, started pinned to the server CPUs, all
    answering on one port; stopped by :meth:`stop`."""

    def __init__(
        self, setup: Setup, tmp: Path, docroot: Path, server_cpus: str, backend: str = "auto"
    ) -> None:
        self.setup = setup
        self.port = free_port()
        self.status_ports: list[int] = []
        self.processes: list[RunningServer] = []
        self.offsets: dict[int, int] = {}  # bytes of each process's log read by events()
        self.event_lines: list[str] = []
        medusa = str(Path(sys.executable).with_name("medusa"))
        level = ["--log-level", "warning"] if setup.logs == "off" else []
        level += ["--backend", backend]
        argvs: list[list[str]] = []
        if setup.kind == "shared":
            http = f"127.0.0.1:{self.port}"
            serve = [medusa, "serve", str(docroot), "--http", http, "--status", *level]
            argvs.append([*serve, "--workers", str(setup.workers)])
        else:
            for _ in range(setup.workers):
                status_port = free_port()
                self.status_ports.append(status_port)
                ports = [str(self.port), str(status_port)]
                argvs.append([medusa, "run", *level, str(REUSEPORT_SCRIPT), *ports, str(docroot)])
        spec = ServerSpec(setup.kind, setup.label, True, lambda _ws, _port: [])
        try:
            for number, argv in enumerate(argvs, 1):
                pinned = ["taskset", "-c", server_cpus, *argv]
                log_path = tmp / f"{setup.kind}-{setup.workers}-{self.port}-{number}.log"
                server = RunningServer(spec, self.port, pinned, log_path)
                self.processes.append(server)
                server.wait_ready(20.0)
            for status_port in self.status_ports:  # each SO_REUSEPORT process listening
                wait_for(functools.partial(answers, status_port), 20.0, f"port {status_port}")
            if setup.kind == "shared" and setup.workers > 1:
                self.wait_workers_ready()
        except (StartError, MeasureError):
            self.stop()
            raise

    @property
    def master(self) -> RunningServer:
        return self.processes[0]

    def stderr(self) -> str:
        """Everything the server processes wrote (the access log included)."""
        return "\n".join(p.log_path.read_text(errors="replace") for p in self.processes)

    def events(self) -> str:
        """The lines the server processes wrote so far other than the access log, read
        from where the previous call stopped (the access log makes the files large)."""
        for number, process in enumerate(self.processes):
            with process.log_path.open("rb") as stream:
                stream.seek(self.offsets.get(number, 0))
                data = stream.read()
            complete = data.rfind(b"\n") + 1
            self.offsets[number] = self.offsets.get(number, 0) + complete
            for line in data[:complete].decode(errors="replace").splitlines():
                if " medusa.http.access " not in line:
                    self.event_lines.append(line)
        return "\n".join(self.event_lines)

    def status(self) -> dict[str, Any]:
        return get_json(self.port, "/status?format=json")

    def rows(self) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.status().get("workers", [])
        return rows

    def wait_workers_ready(self, timeout: float = 20.0, since: float = 0.0) -> list[dict[str, Any]]:
        """Wait until every worker row is ``ready`` and was published after ``since`` (a
        :func:`time.time`), so its counters include everything up to then."""
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = self.rows()
            if len(rows) == self.setup.workers and all(
                row["state"] == "ready" and row["updated"] > since for row in rows
            ):
                return rows
            time.sleep(0.05)
        raise MeasureError(f"the workers were not all ready and published in {timeout} s: {rows}")

    def counts(self, since: float = 0.0) -> Counts:
        """Requests and connections served so far by each process, by pid."""
        if self.setup.kind == "shared" and self.setup.workers > 1:
            rows = self.wait_workers_ready(since=since)
            return Counts(
                {row["pid"]: row["requests"] for row in rows},
                {row["pid"]: row["connections"] for row in rows},
            )
        requests, connections = {}, {}
        shared = f"127.0.0.1:{self.port}"
        for status_port in self.status_ports or [self.port]:
            document = get_json(status_port, "/status?format=json")
            for server in document["servers"]:
                if shared in server["listening"]:
                    requests[document["pid"]] = server["counters"]["requests"]
                    connections[document["pid"]] = server["counters"]["connections"]
        return Counts(requests, connections)

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(p.pid) for p in self.processes)

    def alive(self) -> bool:
        return all(p.alive() for p in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            process.stop(grace=15.0)


# --------------------------------------------------------------------------- part: balance


@dataclass
class BalanceRun:
    """One loaded run of one setup."""

    round_no: int
    requests_per_s: float
    requests: int
    cpu_us_per_request: float
    per_worker: list[int]  # requests served by each worker during the run
    per_worker_connections: list[int]
    socket_errors: int
    non_2xx: int
    load_average: float

    @property
    def spread(self) -> float | None:
        """Busiest worker's requests over the quietest's (None with one worker)."""
        if len(self.per_worker) < 2:
            return None
        return max(self.per_worker) / max(1, min(self.per_worker))

    @property
    def connection_spread(self) -> float | None:
        """The same for the connections each worker accepted."""
        if len(self.per_worker_connections) < 2:
            return None
        return max(self.per_worker_connections) / max(1, min(self.per_worker_connections))


def balance_run(
    setup: Setup, round_no: int, tmp: Path, docroot: Path, args: argparse.Namespace
) -> BalanceRun:
    deployment = Deployment(setup, tmp, docroot, args.server_cpus, args.backend)
    try:
        url = f"http://127.0.0.1:{deployment.port}{PATH}"
        run_wrk(url, args, 1)  # warm-up
        before = deployment.counts()
        cpu_before = deployment.cpu_seconds()
        run, _ = run_wrk(url, args, args.duration)
        cpu = deployment.cpu_seconds() - cpu_before
        ended = time.time()
        if not deployment.alive():
            raise MeasureError("a server process exited during the run")
        after = deployment.counts(since=ended)
    finally:
        deployment.stop()
    pids = sorted(after.requests)
    return BalanceRun(
        round_no=round_no,
        requests_per_s=run.requests_per_s,
        requests=run.requests,
        cpu_us_per_request=cpu * 1e6 / max(1, run.requests),
        per_worker=[after.requests[p] - before.requests.get(p, 0) for p in pids],
        per_worker_connections=[after.connections[p] - before.connections.get(p, 0) for p in pids],
        socket_errors=run.socket_errors,
        non_2xx=run.non_2xx,
        load_average=load_average(),
    )


def setups(args: argparse.Namespace) -> list[Setup]:
    chosen = []
    for logs in args.logs:
        for workers in args.worker_counts:
            chosen.append(Setup("shared", workers, logs))
        for workers in args.worker_counts:
            if workers > 1 and args.reuseport:
                chosen.append(Setup("reuseport", workers, logs))
    return chosen


def bench_balance(
    tmp: Path, docroot: Path, args: argparse.Namespace
) -> dict[Setup, list[BalanceRun]]:
    """``--runs`` rounds, each running every setup once (the machine's speed drifts)."""
    results: dict[Setup, list[BalanceRun]] = {setup: [] for setup in setups(args)}
    for round_no in range(1, args.runs + 1):
        for setup, runs in results.items():
            try:
                run = balance_run(setup, round_no, tmp, docroot, args)
            except (StartError, MeasureError, OSError, http.client.HTTPException) as exc:
                log(f"  round {round_no} {setup.label}: {type(exc).__name__}: {exc}")
                continue
            runs.append(run)
            spread = f"{run.spread:.3f}" if run.spread is not None else "-"
            log(
                f"  round {round_no} {setup.label:32} {run.requests_per_s:9,.0f} req/s  "
                f"{run.cpu_us_per_request:6.1f} us CPU/req  per worker {run.per_worker} "
                f"(connections {run.per_worker_connections})  busiest/quietest {spread}  "
                f"load {run.load_average:.2f}"
            )
    return results


def median_of(runs: list[BalanceRun], metric: Callable[[BalanceRun], float | None]) -> float | None:
    values = [v for v in (metric(run) for run in runs) if v is not None]
    return statistics.median(values) if values else None


def paired_change(runs: list[BalanceRun], base: list[BalanceRun]) -> float | None:
    """Median over rounds of a run's CPU per request against the base run of the same
    round, minus 1 (the rounds' conditions differ more than two runs of one round)."""
    base_by_round = {run.round_no: run.cpu_us_per_request for run in base}
    changes = [
        run.cpu_us_per_request / base_by_round[run.round_no] - 1
        for run in runs
        if run.round_no in base_by_round
    ]
    return statistics.median(changes) if changes else None


def format_spread(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 100 else ">100"


def balance_report(results: dict[Setup, list[BalanceRun]], args: argparse.Namespace) -> str:
    headers = [
        "setup", "runs", "req/s", "CPU us/req", "vs 1 worker", "paired",
        "busiest/quietest", "max", "connections",
    ]  # fmt: skip
    rows = []
    for setup, runs in results.items():
        if not runs:
            rows.append([setup.label, "0", "failed", "-", "-", "-", "-", "-", "-"])
            continue
        rps = median_of(runs, lambda r: r.requests_per_s)
        cpu = median_of(runs, lambda r: r.cpu_us_per_request)
        base = results.get(Setup("shared", 1, setup.logs), [])
        base_cpu = median_of(base, lambda r: r.cpu_us_per_request) if base else None
        spread = median_of(runs, lambda r: r.spread)
        worst = max((r.spread for r in runs if r.spread is not None), default=None)
        connections = median_of(runs, lambda r: r.connection_spread)
        paired = paired_change(runs, base) if base else None
        errors = sum(r.socket_errors + r.non_2xx for r in runs)
        rows.append(
            [
                setup.label,
                str(len(runs)),
                f"{rps:,.0f}" + (" !" if errors else ""),
                f"{cpu:.1f}" if cpu is not None else "-",
                f"{cpu / base_cpu - 1:+.1%}" if cpu is not None and base_cpu else "-",
                f"{paired:+.1%}" if paired is not None else "-",
                format_spread(spread),
                format_spread(worst),
                f"{connections:.2f}" if connections is not None else "-",
            ]
        )
    lines = [
        f"balance and CPU: GET {PATH}, wrk -t{args.client_threads} -c{args.connections} "
        f"-d{args.duration}s, median of {args.runs} rounds; servers on CPUs {args.server_cpus} "
        f"(master and workers together), wrk on {args.client_cpus}; backend {args.backend}",
        render_table(headers, rows),
        "CPU us/req: CPU time of every server process (master, workers) per request;",
        "vs 1 worker: the median against --workers 1's median with the same logs;",
        "paired: the median of each round's run against --workers 1's run in that round;",
        "busiest/quietest: requests of the busiest worker over the quietest's in one run",
        "(median; max: the worst run); connections: the same ratio for the connections",
        "each worker accepted (median).",
    ]
    if any(r.socket_errors or r.non_2xx for runs in results.values() for r in runs):
        lines.append("!: some run had socket errors or non-2xx answers (see the JSON file)")
    return "\n".join(lines)


# --------------------------------------------------------------------------- part: reload


@dataclass
class ReloadResult:
    reloads: int
    seconds: list[float]  # from SIGHUP to "reload done", each
    requests: int
    requests_per_s: float
    socket_errors: dict[str, int]
    non_2xx: int
    workers_before: list[int]
    workers_after: list[int]
    load_average: float
    server_log: ServerLog
    failed_statuses: dict[str, int]  # wrk's non-2xx answers by status
    failed_examples: list[str]  # status, headers and body of a few


def reloads_done(deployment: Deployment, count: int) -> Callable[[], bool]:
    """A check: has the master logged "reload done" ``count`` times?"""
    return lambda: deployment.events().count(_RELOAD_DONE) >= count


def bench_reload(tmp: Path, docroot: Path, args: argparse.Namespace) -> ReloadResult:
    setup = Setup("shared", args.reload_workers, "default")
    deployment = Deployment(setup, tmp, docroot, args.server_cpus, args.backend)
    try:
        before = sorted(row["pid"] for row in deployment.rows())
        url = f"http://127.0.0.1:{deployment.port}{PATH}"
        script = tmp / "failures.lua"
        script.write_text(WRK_FAILURES_SCRIPT)
        wrk = BackgroundWrk(url, args, script)
        try:
            time.sleep(1.0)  # load first: every wrk connection open and busy
            seconds = []
            for number in range(1, args.reloads + 1):
                started = time.monotonic()
                deployment.master.proc.send_signal(signal.SIGHUP)
                wait_for(reloads_done(deployment, number), 60.0, f"reload {number}")
                seconds.append(time.monotonic() - started)
                log(f"  reload {number}: done in {seconds[-1]:.2f} s")
            time.sleep(1.0)  # load on the last new workers too
        finally:
            run, output = wrk.finish()
        after = sorted(row["pid"] for row in deployment.wait_workers_ready())
        server_log = ServerLog.read(deployment.stderr())
    finally:
        deployment.stop()
    errors = socket_errors(output)
    statuses, examples = failed_answers(wrk.stderr)
    log(f"  wrk: {run.requests} requests, socket errors {errors}, non-2xx {run.non_2xx}")
    return ReloadResult(
        reloads=args.reloads,
        seconds=seconds,
        requests=run.requests,
        requests_per_s=run.requests_per_s,
        socket_errors=errors,
        non_2xx=run.non_2xx,
        workers_before=before,
        workers_after=after,
        load_average=load_average(),
        server_log=server_log,
        failed_statuses=statuses,
        failed_examples=examples,
    )


def reload_report(result: ReloadResult, args: argparse.Namespace) -> str:
    failed = sum(result.socket_errors.values()) + result.non_2xx
    kinds = ", ".join(f"{kind} {n}" for kind, n in result.socket_errors.items())
    return "\n".join(
        [
            f"reload: {result.reloads} SIGHUPs to the master of --workers {args.reload_workers}"
            f" (logs default, backend {args.backend}) under wrk -c{args.connections} on GET {PATH}",
            f"  requests {result.requests:,} ({result.requests_per_s:,.0f} req/s); "
            f"failed {failed}: socket errors {kinds}; non-2xx {result.non_2xx}",
            f"  SIGHUP to 'reload done': median {statistics.median(result.seconds):.2f} s, "
            f"max {max(result.seconds):.2f} s",
            f"  worker pids before {result.workers_before}, after {result.workers_after}",
            *(
                [f"  non-2xx answers by status: {result.failed_statuses}"]
                if result.failed_statuses
                else []
            ),
            *(f"    {example}" for example in result.failed_examples),
            *log_lines(result.server_log),
        ]
    )


def log_lines(server_log: ServerLog) -> list[str]:
    """The report's lines on what the servers logged: answers other than 2xx, problems."""
    lines = []
    if server_log.statuses:
        lines.append(f"  access log, answers other than 2xx: {server_log.statuses}")
        lines.extend(f"    {line}" for line in server_log.examples)
    if server_log.problems:
        lines.append("  warnings and errors logged:")
        lines.extend(f"    {line}" for line in server_log.problems)
    return lines


# --------------------------------------------------------------------------- part: replace


@dataclass
class Replacement:
    loaded: bool
    index: int
    killed_pid: int
    new_pid: int
    seconds: float  # from the kill to the new worker's "ready" line's timestamp
    detected: float  # from the kill to the master's "died" line's timestamp


def log_time(stamp: str) -> float:
    """A log line's local timestamp (``2026-12-06 08:20:49,137``) as a :func:`time.time`."""
    parsed = datetime.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
    return parsed.timestamp()


def kill_one(deployment: Deployment, index: int, loaded: bool) -> Replacement:
    """``kill -9`` worker ``index``; wait for its replacement's "ready" line and row."""
    rows = {row["index"]: row["pid"] for row in deployment.wait_workers_ready()}
    victim = rows[index]
    killed_at = time.time()
    os.kill(victim, signal.SIGKILL)
    found: dict[str, float | int] = {}

    def replaced() -> bool:
        text = deployment.events()
        for match in _DIED.finditer(text):
            if int(match.group(3)) == victim:
                found["died"] = log_time(match.group(1))
        for match in _READY.finditer(text):
            if int(match.group(2)) == index and log_time(match.group(1)) >= killed_at - 0.001:
                found["ready"] = log_time(match.group(1))
                found["pid"] = int(match.group(3))
        return "ready" in found and "died" in found

    wait_for(replaced, 30.0, f"the replacement of worker {index}")
    deployment.wait_workers_ready(since=found["ready"])
    return Replacement(
        loaded=loaded,
        index=index,
        killed_pid=victim,
        new_pid=int(found["pid"]),
        seconds=float(found["ready"]) - killed_at,
        detected=float(found["died"]) - killed_at,
    )


@dataclass
class ReplaceResult:
    replacements: list[Replacement] = field(default_factory=list)
    loaded_requests: int = 0
    loaded_socket_errors: dict[str, int] = field(default_factory=dict)
    loaded_non_2xx: int = 0
    load_average: float = 0.0
    server_log: ServerLog | None = None


def bench_replace(tmp: Path, docroot: Path, args: argparse.Namespace) -> ReplaceResult:
    setup = Setup("shared", args.reload_workers, "default")
    result = ReplaceResult()
    deployment = Deployment(setup, tmp, docroot, args.server_cpus, args.backend)
    try:
        for loaded in (False, True):
            wrk = None
            if loaded:
                wrk = BackgroundWrk(f"http://127.0.0.1:{deployment.port}{PATH}", args)
                time.sleep(1.0)  # every connection open and busy
            try:
                for number in range(args.kills):
                    index = number % args.reload_workers + 1
                    replacement = kill_one(deployment, index, loaded)
                    result.replacements.append(replacement)
                    log(
                        f"  kill -9 worker {index} ({'under load' if loaded else 'idle'}): "
                        f"died logged after {replacement.detected * 1e3:.0f} ms, replacement "
                        f"ready after {replacement.seconds * 1e3:.0f} ms"
                    )
            finally:
                if wrk is not None:
                    run, output = wrk.finish()
                    result.loaded_requests = run.requests
                    result.loaded_socket_errors = socket_errors(output)
                    result.loaded_non_2xx = run.non_2xx
        expected = ("max_connections lowered", "died (killed by SIGKILL)")
        result.server_log = ServerLog.read(deployment.stderr(), skip_problems=expected)
    finally:
        deployment.stop()
    result.load_average = load_average()
    return result


def replace_report(result: ReplaceResult, args: argparse.Namespace) -> str:
    lines = [
        f"replace: kill -9 of a worker of --workers {args.reload_workers}, until the "
        "replacement's 'ready' line (ms)"
    ]
    headers = ["when", "kills", "median", "max", "death logged (median)"]
    rows = []
    for loaded in (False, True):
        chosen = [r for r in result.replacements if r.loaded == loaded]
        if not chosen:
            continue
        rows.append(
            [
                f"under wrk -c{args.connections}" if loaded else "idle",
                str(len(chosen)),
                f"{statistics.median(r.seconds for r in chosen) * 1e3:.0f}",
                f"{max(r.seconds for r in chosen) * 1e3:.0f}",
                f"{statistics.median(r.detected for r in chosen) * 1e3:.0f}",
            ]
        )
    lines.append(render_table(headers, rows))
    if result.loaded_requests:
        kinds = ", ".join(f"{kind} {n}" for kind, n in result.loaded_socket_errors.items())
        lines.append(
            f"wrk during the kills under load: {result.loaded_requests:,} requests; socket "
            f"errors {kinds}; non-2xx {result.loaded_non_2xx} (a killed worker's "
            "connections are lost)"
        )
    if result.server_log is not None:
        lines.extend(log_lines(result.server_log))
    return "\n".join(lines)


# --------------------------------------------------------------------------- targets

BALANCE_BOUND = 1.25  # busiest/quietest worker, requests
CPU_BOUND = 0.05  # CPU per request of N workers over one process, paired
REPLACE_BOUND = 1.0  # seconds to replace a killed worker


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def targets_report(
    balance: dict[Setup, list[BalanceRun]] | None,
    reload: ReloadResult | None,
    replace: ReplaceResult | None,
) -> str:
    """The issue's targets, each PASS, FAIL or n/a (part not run), from this run."""
    rows = []
    for setup, runs in (balance or {}).items():
        if setup.workers < 2 or not runs:
            continue
        spread = median_of(runs, lambda r: r.spread)
        over = sum(1 for r in runs if (r.spread or 0) > BALANCE_BOUND)
        rows.append(
            [
                f"busiest/quietest <= {BALANCE_BOUND} ({setup.label})",
                f"median {format_spread(spread)}, {over} of {len(runs)} runs above",
                verdict(spread is not None and spread <= BALANCE_BOUND),
            ]
        )
    for setup, runs in (balance or {}).items():
        base = (balance or {}).get(Setup("shared", 1, setup.logs), [])
        if setup.workers < 2 or not runs or not base:
            continue
        paired = paired_change(runs, base)
        rows.append(
            [
                f"CPU/request <= +{CPU_BOUND:.0%} vs 1 worker ({setup.label})",
                f"{paired:+.1%} (paired median)" if paired is not None else "-",
                verdict(None if paired is None else paired <= CPU_BOUND),
            ]
        )
    if reload is not None:
        failed = sum(reload.socket_errors.values()) + reload.non_2xx
        rows.append(
            [
                f"0 failed requests in {reload.reloads} reloads",
                f"{failed} failed of {reload.requests:,}",
                verdict(failed == 0),
            ]
        )
    if replace is not None and replace.replacements:
        worst = max(r.seconds for r in replace.replacements)
        median = statistics.median(r.seconds for r in replace.replacements)
        rows.append(
            [
                f"killed worker replaced in < {REPLACE_BOUND:.0f} s",
                f"median {median * 1e3:.0f} ms, worst {worst * 1e3:.0f} ms",
                verdict(worst < REPLACE_BOUND),
            ]
        )
    return "targets\n" + render_table(["target", "measured", "verdict"], rows)


# --------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/workers.py", description=__doc__.splitlines()[0] if __doc__ else None
    )
    add = parser.add_argument
    add("--duration", type=int, default=5, metavar="SECONDS", help="length of each wrk run")
    add("--runs", type=int, default=3, metavar="N", help="rounds of the balance part (medians)")
    add("--parts", default=",".join(PARTS), metavar="LIST", help=", ".join(PARTS))
    add("--workers", default="1,2", metavar="LIST", help="worker counts of the balance part")
    add("--logs", default=",".join(LOG_MODES), metavar="LIST", help="balance part: off, default")
    add("--no-reuseport", dest="reuseport", action="store_false", help="skip SO_REUSEPORT")
    add("--connections", type=int, default=50, metavar="N", help="wrk connections")
    add("--reloads", type=int, default=10, metavar="N", help="SIGHUPs in the reload part")
    add("--kills", type=int, default=5, metavar="N", help="kill -9 idle, then as many loaded")
    add("--reload-workers", type=int, default=2, metavar="N", help="workers (reload, replace)")
    add(
        "--backend",
        choices=("auto", "uvloop", "asyncio"),
        default="auto",
        help="medusa's event loop (default: auto, uvloop when installed)",
    )
    add("--server-cpus", default="0", metavar="CPUS", help="taskset list for the servers")
    add("--client-cpus", default="1", metavar="CPUS", help="taskset list for wrk")
    add("--output", type=Path, default=RESULTS_FILE, metavar="PATH", help="JSON results file")
    args = parser.parse_args(argv)
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if not args.parts or set(args.parts) - set(PARTS):
        parser.error(f"--parts: choose from {', '.join(PARTS)}")
    try:
        args.worker_counts = sorted({int(n) for n in args.workers.split(",") if n.strip()})
    except ValueError:
        parser.error("--workers: a list of numbers, e.g. 1,2,4")
    if not args.worker_counts or min(args.worker_counts) < 1 or args.reload_workers < 2:
        parser.error("--workers must be at least 1 and --reload-workers at least 2")
    if args.duration < 1 or args.runs < 1 or args.connections < 1:
        parser.error("--duration, --runs and --connections must be at least 1")
    args.logs = [mode.strip() for mode in args.logs.split(",") if mode.strip()]
    if not args.logs or set(args.logs) - set(LOG_MODES):
        parser.error(f"--logs: choose from {', '.join(LOG_MODES)}")
    args.client_threads = len(cpu_list(args.client_cpus))
    return args


def cpu_list(text: str) -> set[int]:
    """The CPUs of a taskset list such as ``0-3,6``."""
    cpus: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def check_environment(args: argparse.Namespace) -> list[str]:
    problems = []
    for tool, package in (("wrk", "wrk"), ("taskset", "util-linux")):
        if shutil.which(tool) is None:
            problems.append(f"`{tool}` is not on PATH; on Debian/Ubuntu: apt-get install {package}")
    if not Path(sys.executable).with_name("medusa").exists():
        problems.append("no `medusa` next to this Python: run it with `hatch run bench:python`")
    usable = os.sched_getaffinity(0)
    server, client = cpu_list(args.server_cpus), cpu_list(args.client_cpus)
    if server & client or not (server | client) <= usable:
        problems.append(
            f"server CPUs {sorted(server)} and client CPUs {sorted(client)} must be distinct "
            f"and usable; this process may use {sorted(usable)}"
        )
    return problems


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    problems = check_environment(args)
    if problems:
        for problem in problems:
            log(problem)
        return 2
    raise_nofile_limit(20_000)
    # This script's own work (polling logs and status pages) stays off the server CPUs.
    os.sched_setaffinity(0, cpu_list(args.client_cpus))
    for name in ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE"):
        os.environ.pop(name, None)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    start_load = os.getloadavg()
    print(f"$ {' '.join(['python', 'bench/workers.py', *argv])}")
    print(
        f"commit {commit}, {os.cpu_count()} CPUs, load average at start "
        f"{start_load[0]:.2f} {start_load[1]:.2f} {start_load[2]:.2f}\n"
    )
    report: dict[str, Any] = {
        "argv": list(argv),
        "commit": commit,
        "load_average_start": start_load,
    }
    with tempfile.TemporaryDirectory(prefix="medusa-workers-bench-") as tmpdir:
        tmp = Path(tmpdir)
        docroot = tmp / "docroot"
        docroot.mkdir()
        for name, content in STATIC_FILES.items():
            (docroot / name).write_bytes(content)
        (docroot / "hello").write_bytes(HELLO_BODY)  # what RunningServer.wait_ready asks for
        balance, reload, replace = None, None, None
        if "balance" in args.parts:
            log("[balance]")
            balance = bench_balance(tmp, docroot, args)
            print(balance_report(balance, args) + "\n", flush=True)
            report["balance"] = [
                {"setup": asdict(setup), "runs": [asdict(run) for run in runs]}
                for setup, runs in balance.items()
            ]
        if "reload" in args.parts:
            log("[reload]")
            reload = bench_reload(tmp, docroot, args)
            print(reload_report(reload, args) + "\n", flush=True)
            report["reload"] = asdict(reload)
        if "replace" in args.parts:
            log("[replace]")
            replace = bench_replace(tmp, docroot, args)
            print(replace_report(replace, args) + "\n", flush=True)
            report["replace"] = asdict(replace)
    print(targets_report(balance, reload, replace) + "\n")
    end_load = os.getloadavg()
    print(f"load average at the end {end_load[0]:.2f} {end_load[1]:.2f} {end_load[2]:.2f}")
    report["load_average_end"] = end_load
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1) + "\n")
    log(f"results written to {args.output}")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main(sys.argv[1:]))
