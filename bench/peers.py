"""The servers under benchmark: how to start each one, wait for it, measure and stop it.

Every server is a separate process pinned to the server CPU with ``taskset``, listening on
its own free port on 127.0.0.1. A server that cannot start is reported, never fatal.

Each server has up to two rows: its access log off, and its own default logging. A row
with default logging has its standard output and error on one pipe, drained into a file
by ``cat`` pinned to the client CPU, as a service manager (systemd's journal) collects a
service's output; a row with logs off writes its (start-up) output to the file directly.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
SERVERS_DIR = BENCH_DIR / "servers"

HELLO_BODY = b"Hello, World!"
_PATTERN = bytes(range(256)) * 4096  # 1 MiB of filler
STATIC_FILES: dict[str, bytes] = {
    "hello.txt": HELLO_BODY,
    "1k.bin": _PATTERN[:1024],
    "1m.bin": _PATTERN[: 1024 * 1024],
}

# Variables that would slow a Python server down if the caller happened to set them.
_DEBUG_VARIABLES = ("PYTHONASYNCIODEBUG", "PYTHONDEVMODE", "PYTHONTRACEMALLOC", "PYTHONMALLOC")


@dataclass(frozen=True)
class Workspace:
    """Where the servers run: a temporary directory with the document root inside."""

    tmp: Path
    docroot: Path
    python: str
    server_cpu: int
    client_cpu: int  # where the readers of the servers' output pipes run
    max_connections: int

    @classmethod
    def create(
        cls, tmp: Path, python: str, server_cpu: int, client_cpu: int, max_connections: int
    ) -> Workspace:
        docroot = tmp / "docroot"
        docroot.mkdir()
        for name, content in STATIC_FILES.items():
            (docroot / name).write_bytes(content)
        return cls(tmp, docroot, python, server_cpu, client_cpu, max_connections)


@dataclass(frozen=True)
class ServerSpec:
    """One row of the tables: a server with its access log off or its default logging."""

    group: str  # the server's name, used by --only (both rows of a server share it)
    label: str  # the name shown in the tables
    serves_static: bool
    command: Callable[[Workspace, int], list[str]]  # argv for (workspace, port), unpinned
    default_logs: bool = False  # the server's own default logging (output to a pipe)
    hello_path: str = "/hello"  # where it answers the 13-byte hello
    # A log file the server writes itself (nginx's access log), for (workspace, port).
    log_file: Callable[[Workspace, int], Path] | None = None

    @property
    def key(self) -> str:
        """The row's name in the JSON results: the group, ``+logs`` for default logging."""
        return f"{self.group}+logs" if self.default_logs else self.group


class StartError(Exception):
    """The server did not come up; the message says why."""


# --------------------------------------------------------------------------- commands


def _medusa(backend: str) -> Callable[[Workspace, int], list[str]]:
    def command(ws: Workspace, port: int) -> list[str]:
        script = SERVERS_DIR / "medusa_hello.py"
        return [ws.python, str(script), str(port), str(ws.docroot), backend]

    return command


def _medusa_serve(default_logs: bool) -> Callable[[Workspace, int], list[str]]:
    """``medusa serve ROOT``, the command as installed (its access log on stderr by
    default; ``--log-level warning`` silences it)."""

    def command(ws: Workspace, port: int) -> list[str]:
        medusa = str(Path(ws.python).with_name("medusa"))
        argv = [medusa, "serve", str(ws.docroot), "--http", f"127.0.0.1:{port}"]
        return argv if default_logs else [*argv, "--log-level", "warning"]

    return command


def _bare_httptools(ws: Workspace, port: int) -> list[str]:
    return [ws.python, str(SERVERS_DIR / "bare_httptools.py"), "--port", str(port)]


def _uvicorn(default_logs: bool) -> Callable[[Workspace, int], list[str]]:
    def command(ws: Workspace, port: int) -> list[str]:
        argv = [
            ws.python, "-m", "uvicorn", "uvicorn_hello:app",
            "--app-dir", str(SERVERS_DIR),
            "--host", "127.0.0.1", "--port", str(port),
            "--loop", "uvloop", "--http", "httptools",
            # uvicorn closes idle keep-alive connections after 5 s by default; the idle
            # scenario holds them longer than that (nginx and aiohttp keep them 75 s).
            "--timeout-keep-alive", "300",
        ]  # fmt: skip
        # By default uvicorn logs at level info, one access line per response on stdout.
        return argv if default_logs else [*argv, "--log-level", "warning", "--no-access-log"]

    return command


def _script(name: str, default_logs: bool) -> Callable[[Workspace, int], list[str]]:
    """A server script of ``bench/servers`` taking ``PORT ROOT [--default-logs]``."""

    def command(ws: Workspace, port: int) -> list[str]:
        argv = [ws.python, str(SERVERS_DIR / name), str(port), str(ws.docroot)]
        return [*argv, "--default-logs"] if default_logs else argv

    return command


NGINX_CONF = """\
# Written by bench/run.py for one benchmark run.
{user}worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log {error_level};
worker_rlimit_nofile {nofile};

events {{
    worker_connections {connections};
    use epoll;
}}

http {{
    types {{
        text/plain txt;
        application/octet-stream bin;
    }}
    default_type application/octet-stream;
    access_log {access_log};
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 75s;
    # nginx closes a keep-alive connection after 1000 requests by default; the Python
    # servers have no such limit, so lift it to compare the same workload.
    keepalive_requests 1000000;
{temp_paths}
    server {{
        listen 127.0.0.1:{port};
        root {docroot};

        location = /hello {{
            default_type text/plain;
            return 200 "Hello, World!";
        }}
    }}
}}
"""

# Temporary directories nginx wants at start-up; kept inside the workspace.
_NGINX_TEMP_PATHS = {
    "client_body_temp_path": None,
    "proxy_temp_path": "http_proxy",
    "fastcgi_temp_path": "http_fastcgi",
    "uwsgi_temp_path": "http_uwsgi",
    "scgi_temp_path": "http_scgi",
}


def _nginx_build_options() -> str:
    result = subprocess.run(["nginx", "-V"], capture_output=True, text=True, check=False)
    return result.stdout + result.stderr


def _nginx_access_log(ws: Workspace, port: int) -> Path:
    return ws.tmp / f"nginx-{port}" / "access.log"


def _nginx(default_logs: bool) -> Callable[[Workspace, int], list[str]]:
    """nginx with ``access_log off`` or with its defaults: the access log in the combined
    format to a file, written as each request ends, and the error log at level error."""

    def command(ws: Workspace, port: int) -> list[str]:
        return _nginx_command(ws, port, default_logs)

    return command


def _nginx_command(ws: Workspace, port: int, default_logs: bool) -> list[str]:
    directory = ws.tmp / f"nginx-{port}"
    directory.mkdir()
    build = _nginx_build_options()
    temp_lines = []
    for directive, module in _NGINX_TEMP_PATHS.items():
        if module is None or f"--without-{module}_module" not in build:
            temp_lines.append(f"    {directive} {directory}/{directive.removesuffix('_path')};")
    # As root, nginx's worker would otherwise switch to "nobody", who cannot read the
    # private temporary document root.
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf = directory / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            user=user,
            dir=directory,
            error_level="error" if default_logs else "warn",
            access_log=f"{_nginx_access_log(ws, port)} combined" if default_logs else "off",
            # nginx starts closing idle keep-alive connections once fewer than 1/16 of
            # worker_connections are free: leave plenty of room.
            nofile=2 * ws.max_connections + 2048,
            connections=2 * ws.max_connections + 1024,
            temp_paths="\n".join(temp_lines),
            port=port,
            docroot=ws.docroot,
        )
    )
    return ["nginx", "-p", str(directory), "-c", str(conf), "-e", str(directory / "error.log")]


SERVERS: tuple[ServerSpec, ...] = (
    ServerSpec("medusa", "medusa", True, _medusa("uvloop")),
    ServerSpec("medusa-asyncio", "medusa (asyncio loop)", True, _medusa("asyncio")),
    ServerSpec("medusa-serve", "medusa serve", True, _medusa_serve(False), False, "/hello.txt"),
    ServerSpec(
        "medusa-serve", "medusa serve (default logs)", True, _medusa_serve(True), True, "/hello.txt"
    ),
    ServerSpec("bare-httptools", "bare httptools", False, _bare_httptools),
    ServerSpec("nginx", "nginx", True, _nginx(False)),
    ServerSpec(
        "nginx", "nginx (default logs)", True, _nginx(True), True, log_file=_nginx_access_log
    ),
    ServerSpec("uvicorn", "uvicorn", False, _uvicorn(False)),
    ServerSpec("uvicorn", "uvicorn (default logs)", False, _uvicorn(True), True),
    ServerSpec("aiohttp", "aiohttp", True, _script("aiohttp_app.py", False)),
    ServerSpec("aiohttp", "aiohttp (default logs)", True, _script("aiohttp_app.py", True), True),
    ServerSpec("twisted", "twisted", True, _script("twisted_app.py", False)),
    ServerSpec("twisted", "twisted (default logs)", True, _script("twisted_app.py", True), True),
)
REFERENCE = "medusa"  # the row the medusa/peer column is taken against
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(spec.group for spec in SERVERS))


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """One GET on a fresh connection: (status, body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _proc_start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat, to tell a process from a later one with the same PID."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        if Path(f"/proc/{pid}").exists():
            tree.append(pid)
            todo.extend(children.get(pid, []))
    return tree


def rss_kb(pid: int) -> int:
    """VmRSS of one process in KiB (0 if it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process, all its threads, in seconds (``utime`` and
    ``stime`` of ``/proc/PID/stat``, in clock ticks); 0.0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class LineCounter:
    """Counts the lines (newlines) of a file that only grows, reading each byte once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.lines = 0

    def count(self) -> int:
        """Lines in the file now (0 while it does not exist)."""
        with contextlib.suppress(OSError), self.path.open("rb") as file:
            file.seek(self.offset)
            while chunk := file.read(1 << 20):
                self.offset += len(chunk)
                self.lines += chunk.count(b"\n")
        return self.lines


class RunningServer:
    """A started server process (``taskset`` execs it, so the PID is the server's).

    Its standard output and error go to ``log_path``: directly, or, with ``pipe_reader``
    (an argv such as ``["taskset", "-c", "1", "cat"]``), through a pipe that this reader
    process drains into the file, as a service manager collects a service's output.
    ``log_file`` is a log the server writes itself (nginx's access log).
    """

    def __init__(
        self,
        spec: ServerSpec,
        port: int,
        argv: list[str],
        log_path: Path,
        log_file: Path | None = None,
        pipe_reader: list[str] | None = None,
    ) -> None:
        self.spec = spec
        self.port = port
        self.argv = argv
        self.log_path = log_path
        self.counters = [LineCounter(path) for path in (log_path, log_file) if path is not None]
        self.reader: subprocess.Popen[bytes] | None = None
        env = {k: v for k, v in os.environ.items() if k not in _DEBUG_VARIABLES}
        with log_path.open("wb") as log:
            if pipe_reader is None:
                self.proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env
                )
                return
            read_end, write_end = os.pipe()
            try:
                self.reader = subprocess.Popen(pipe_reader, stdin=read_end, stdout=log)
                self.proc = subprocess.Popen(
                    argv, stdin=subprocess.DEVNULL, stdout=write_end, stderr=write_end, env=env
                )
            except OSError:
                if self.reader is not None:
                    self.reader.kill()
                    self.reader.wait()
                raise
            finally:
                os.close(read_end)
                os.close(write_end)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss_kb(self) -> int:
        """Resident memory of the server and its children (nginx: master + worker)."""
        return sum(rss_kb(pid) for pid in process_tree(self.pid))

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the server and its children alive now (nginx:
        master + worker), every thread included; not the pipe's reader."""
        return sum(cpu_seconds(pid) for pid in process_tree(self.pid))

    def logged_lines(self) -> int:
        """Lines the server has written so far: its output and its own log file."""
        return sum(counter.count() for counter in self.counters)

    def log_tail(self, lines: int = 1) -> str:
        try:
            with self.log_path.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - 8192))
                text = log.read().decode(errors="replace")
        except OSError:
            return ""
        return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:])

    def wait_ready(self, timeout: float) -> None:
        """Wait until its hello path answers the expected body, or raise StartError."""
        path = self.spec.hello_path
        deadline = time.monotonic() + timeout
        last_error = "no answer"
        while time.monotonic() < deadline:
            if not self.alive():
                self._wait_reader(2.0)  # the reader copies what the server wrote last
                tail = self.log_tail()
                reason = f"exited with status {self.proc.returncode}"
                raise StartError(f"{reason}: {tail}" if tail else reason)
            try:
                status, body = http_get(self.port, path, timeout=1.0)
            except (OSError, http.client.HTTPException) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                time.sleep(0.1)
                continue
            if status == 200 and body == HELLO_BODY:
                return
            raise StartError(f"GET {path} answered {status} with {body[:40]!r}")
        raise StartError(f"no answer within {timeout:.0f} s ({last_error})")

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the server, then SIGKILL whatever of its process tree is left; the
        pipe's reader ends when every writer has gone."""
        tree = {pid: _proc_start_time(pid) for pid in process_tree(self.pid)}
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        for pid, started in tree.items():
            if started is not None and _proc_start_time(pid) == started:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=grace)
        self._wait_reader(grace)

    def _wait_reader(self, timeout: float) -> None:
        if self.reader is None:
            return
        try:
            self.reader.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.reader.kill()
            self.reader.wait()


def start_server(spec: ServerSpec, ws: Workspace, timeout: float = 20.0) -> RunningServer:
    """Start ``spec`` pinned to the server CPU and wait until it answers its hello path."""
    port = free_port()
    argv = ["taskset", "-c", str(ws.server_cpu), *spec.command(ws, port)]
    log_path = ws.tmp / f"{spec.key}-{port}.log"
    log_file = spec.log_file(ws, port) if spec.log_file else None
    reader = ["taskset", "-c", str(ws.client_cpu), "cat"] if spec.default_logs else None
    try:
        server = RunningServer(spec, port, argv, log_path, log_file, reader)
    except OSError as exc:
        raise StartError(f"cannot run {argv[3]}: {exc}") from exc
    try:
        server.wait_ready(timeout)
    except StartError:
        server.stop(grace=2.0)
        raise
    return server
