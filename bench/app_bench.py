"""ASGI applications under load (issue 17), not a test: medusa (``medusa serve --app``)
against uvicorn (uvloop, httptools, one process) and granian (``--interface asgi``, one
worker), each pinned to the server CPU with wrk on the client CPU, medians of ``--runs``,
ratios from the same run.

Run from the repository root::

    hatch run bench:python bench/app_bench.py [--runs 3] [--duration 3] [--logs both|off|default]
        [--scenarios hello,json,stream100k] [--only medusa,uvicorn,granian]
    hatch run bench:python bench/app_bench.py instructions [--requests 3000]

Scenarios (the applications are in ``bench/apps``): ``hello``, a raw ASGI application
answering 13 bytes; ``json``, a Starlette endpoint answering ``{"message": "Hello,
World!"}``; ``stream100k``, the raw application streaming 100 KiB in ten parts. Rows: each
server with its access log off, and with its own default logging (medusa and uvicorn write
an access line per request; granian's default has no access log).

``instructions`` counts the user-space instructions per request under callgrind
(``apt-get install valgrind``) with requests fed in memory (``data_received`` and an
in-memory transport, the event loop run until the response is written): medusa's ASGI
handler and uvicorn's httptools protocol, each with the raw hello and the Starlette JSON
application, logs off. The steady figure on a noisy machine.

The WSGI benchmark (``bench/wsgi_bench.py``) and the WebSocket rows reuse
:func:`server_specs`, :func:`measure_scenarios` and :func:`print_table`.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.logging_instructions import MemoryTransport
from bench.measure import MeasureError, callgrind_run, run_wrk
from bench.peers import ServerSpec, StartError, Workspace, start_server

APPS_DIR = Path(__file__).resolve().parent / "apps"

SCENARIOS: dict[str, tuple[str, str]] = {
    "hello": ("hello_asgi", "/hello"),
    "json": ("starlette_json", "/json"),
    "stream100k": ("hello_asgi", "/stream100k"),
}
"""Scenario name: (the application's module in ``bench/apps``, the path wrk asks for)."""

CONNECTIONS = 50


def _medusa(module: str, default_logs: bool) -> Callable[[Workspace, int], list[str]]:
    def command(ws: Workspace, port: int) -> list[str]:
        medusa = str(Path(ws.python).with_name("medusa"))
        argv = [
            medusa, "serve", "--http", f"127.0.0.1:{port}",
            "--app", f"{module}:app", "--app-dir", str(APPS_DIR),
        ]  # fmt: skip
        return argv if default_logs else [*argv, "--log-level", "warning"]

    return command


def _uvicorn(module: str, default_logs: bool) -> Callable[[Workspace, int], list[str]]:
    def command(ws: Workspace, port: int) -> list[str]:
        argv = [
            ws.python, "-m", "uvicorn", f"{module}:app", "--app-dir", str(APPS_DIR),
            "--host", "127.0.0.1", "--port", str(port), "--loop", "uvloop", "--http", "httptools",
        ]  # fmt: skip
        return argv if default_logs else [*argv, "--log-level", "warning", "--no-access-log"]

    return command


def _granian(module: str, default_logs: bool) -> Callable[[Workspace, int], list[str]]:
    def command(ws: Workspace, port: int) -> list[str]:
        granian = str(Path(ws.python).with_name("granian"))
        argv = [
            granian, "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
            "--workers", "1", "--working-dir", str(APPS_DIR), f"{module}:app",
        ]  # fmt: skip
        # granian's default logging has no access log; "off" also quiets its other lines.
        return argv if default_logs else [*argv, "--log-level", "warning"]

    return command


SERVERS: dict[str, Callable[[str, bool], Callable[[Workspace, int], list[str]]]] = {
    "medusa": _medusa,
    "uvicorn": _uvicorn,
    "granian": _granian,
}


def server_specs(module: str, only: Sequence[str], logs: str) -> list[ServerSpec]:
    """The rows for the application ``module`` of ``bench/apps``: each server of ``only``
    with logs off and/or its default logging (``logs``: ``off``, ``default``, ``both``)."""
    specs = []
    for name in only:
        for default_logs in (False, True):
            if (logs == "off" and default_logs) or (logs == "default" and not default_logs):
                continue
            label = f"{name} (default logs)" if default_logs else name
            specs.append(
                ServerSpec(name, label, False, SERVERS[name](module, default_logs), default_logs)
            )
    return specs


class Row:
    """One row's figures over the runs: requests per second and server CPU microseconds
    per request, in run order (index ``i`` of every row of a scenario is the same run)."""

    def __init__(self) -> None:
        self.rates: list[float | None] = []
        self.cpu_us: list[float | None] = []

    @property
    def rate(self) -> float:
        return statistics.median(r for r in self.rates if r is not None)

    @property
    def cpu(self) -> float:
        return statistics.median(c for c in self.cpu_us if c is not None)


def measure_scenarios(
    ws: Workspace,
    scenarios: Sequence[str],
    specs_for: Callable[[str], list[ServerSpec]],
    runs: int,
    duration: int,
    paths: dict[str, tuple[str, str]] = SCENARIOS,
) -> dict[str, dict[str, Row]]:
    """Each row's requests per second and server CPU per request over ``runs`` wrk runs,
    by scenario and row key.

    Within a run every row is measured once, one after the other, so that the ratios of a
    run compare servers under the same machine load (:func:`print_table` takes the median
    of those same-run ratios).
    """
    results: dict[str, dict[str, Row]] = {}
    for scenario in scenarios:
        module, path = paths[scenario]
        per_row = results.setdefault(scenario, {})
        servers = {}
        for spec in specs_for(module):
            try:
                servers[spec.key] = start_server(spec, ws)
            except StartError as exc:
                print(f"{scenario}: {spec.label} did not start: {exc}", file=sys.stderr)
        try:
            for _ in range(runs):
                for key, server in servers.items():
                    row = per_row.setdefault(key, Row())
                    url = f"http://127.0.0.1:{server.port}{path}"
                    cpu_before = server.cpu_seconds()
                    try:
                        run = run_wrk(url, CONNECTIONS, duration, ws.client_cpu)
                    except MeasureError as exc:
                        print(f"{scenario}: {key}: {exc}", file=sys.stderr)
                        row.rates.append(None)
                        row.cpu_us.append(None)
                        continue
                    cpu = server.cpu_seconds() - cpu_before
                    if run.non_2xx or run.socket_errors:
                        print(
                            f"{scenario}: {key}: {run.non_2xx} non-2xx, "
                            f"{run.socket_errors} socket errors",
                            file=sys.stderr,
                        )
                    row.rates.append(run.requests_per_s)
                    row.cpu_us.append(cpu / run.requests * 1e6 if run.requests else None)
        finally:
            for server in servers.values():
                server.stop()
    return results


def same_run_ratio(ours: list[float | None], theirs: list[float | None]) -> float | None:
    """The median over runs of ``ours[i] / theirs[i]`` (runs where both were measured)."""
    ratios = [a / b for a, b in zip(ours, theirs, strict=False) if a and b]
    return statistics.median(ratios) if ratios else None


def print_table(results: dict[str, dict[str, Row]], base: str = "medusa") -> None:
    """Print each row's median requests per second and server CPU per request, and the
    median of the same-run ratios of ``base`` to it (logs-off rows against ``base``,
    default-logs rows against ``base+logs``): req/s ``base / row`` and CPU ``row /
    base`` (above 1: ``base`` is faster, or needs less CPU)."""
    for scenario, rows in results.items():
        print(f"\n{scenario}")
        for key, row in rows.items():
            reference = rows.get(f"{base}+logs" if key.endswith("+logs") else base)
            text = f"  {key:14s} {row.rate:9,.0f} req/s {row.cpu:7.1f} us CPU/request"
            if reference is not None and reference is not row:
                rate = same_run_ratio(reference.rates, row.rates)
                cpu = same_run_ratio(row.cpu_us, reference.cpu_us)
                if rate is not None and cpu is not None:
                    text += f"   {base}: {rate:4.2f}x the req/s, {cpu:4.2f}x less CPU"
            print(text)


# --------------------------------------------------------------------------- instructions

KINDS = ("medusa-hello", "uvicorn-hello", "medusa-json", "uvicorn-json")
WARMUP = 1000
REQUEST = b"GET %s HTTP/1.1\r\nHost: localhost:8080\r\nUser-Agent: wrk\r\n\r\n"


def _load(module: str) -> Any:
    sys.path.insert(0, str(APPS_DIR))
    return __import__(module).app


def _protocol(kind: str) -> asyncio.Protocol:
    server_name, _, scenario = kind.partition("-")
    app = _load(SCENARIOS[scenario][0])
    if server_name == "medusa":
        from medusa.http import HTTPServer
        from medusa.http.asgi import ASGIHandler

        server = HTTPServer(
            ("127.0.0.1", 0), handlers=[ASGIHandler(app, lifespan=False)], access_log=None
        )
        return server.make_channel()
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    config = Config(app=app, http="httptools", lifespan="off", access_log=False)
    config.load()
    return HttpToolsProtocol(config=config, server_state=ServerState(), app_state={})


class _Collecting(MemoryTransport):
    """Keeps every write (uvicorn writes a response's head and body apart)."""

    def __init__(self) -> None:
        super().__init__()
        self.out = bytearray()

    def write(self, data: Any) -> None:
        self.out += data


ROUND = 50
"""Connections fed one request each per loop iteration (wrk's 50 connections: a loop
iteration serves many of them)."""


def serve_in_memory(kind: str, requests: int) -> None:
    """Feed ``WARMUP + requests`` keep-alive requests of ``kind``, :data:`ROUND`
    connections at a time, on uvloop (what both servers run on), the loop run after each
    round until every response is written."""
    import uvloop

    path = SCENARIOS[kind.partition("-")[2]][1].encode()
    data = REQUEST % path
    tail = b"}" if kind.endswith("json") else b"Hello, World!"

    async def feed() -> None:
        connections = []
        for _ in range(ROUND):
            protocol = _protocol(kind)
            transport = _Collecting()
            protocol.connection_made(transport)
            connections.append((protocol.data_received, transport.out))
        for number in range((WARMUP + requests) // ROUND + 1):
            for data_received, _ in connections:
                data_received(data)
            for _, out in connections:
                while not out.endswith(tail):
                    await asyncio.sleep(0)
                if number == 0 and not out.startswith(b"HTTP/1.1 200 "):
                    raise SystemExit(f"{kind}: unexpected answer {bytes(out)[:80]!r}")
                del out[:]

    uvloop.run(feed())


def instructions(requests: int, kinds: Sequence[str]) -> None:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="medusa-app-instructions-") as tmpdir:
        per_request = {}
        for kind in kinds:
            totals = []
            for count in (0, requests):
                out = Path(tmpdir) / f"callgrind.{kind}.{count}.out"
                argv = [sys.executable, __file__, "serve-in-memory", kind, str(count)]
                totals.append(callgrind_run(out, argv, "--dump-instr=no"))
            per_request[kind] = (totals[1] - totals[0]) / requests
            print(f"{kind:14s} {per_request[kind]:10,.0f} instructions per request", flush=True)
        for scenario in ("hello", "json"):
            ours, theirs = (
                per_request.get(f"medusa-{scenario}"),
                per_request.get(f"uvicorn-{scenario}"),
            )
            if ours and theirs:
                print(f"{scenario}: uvicorn / medusa = {theirs / ours:4.2f}")


def main(argv: list[str]) -> None:
    if argv[:1] == ["serve-in-memory"]:
        serve_in_memory(argv[1], int(argv[2]))
        return
    if argv[:1] == ["instructions"]:
        parser = argparse.ArgumentParser(description="instructions per request (callgrind)")
        parser.add_argument("--requests", type=int, default=3000)
        parser.add_argument("--kinds", default=",".join(KINDS))
        args = parser.parse_args(argv[1:])
        instructions(args.requests, args.kinds.split(","))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=3)
    parser.add_argument("--logs", choices=("both", "off", "default"), default="both")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--only", default=",".join(SERVERS))
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    args = parser.parse_args(argv)
    only = args.only.split(",")
    with tempfile.TemporaryDirectory(prefix="medusa-app-bench-") as tmpdir:
        ws = Workspace.create(Path(tmpdir), sys.executable, args.server_cpu, args.client_cpu, 0)
        results = measure_scenarios(
            ws,
            args.scenarios.split(","),
            lambda module: server_specs(module, only, args.logs),
            args.runs,
            args.duration,
        )
    print_table(results)


if __name__ == "__main__":
    main(sys.argv[1:])
