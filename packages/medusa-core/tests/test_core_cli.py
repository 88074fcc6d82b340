"""Tests of the ``medusa`` command, run as a real subprocess (the console script when it is
installed next to this interpreter, and ``python -m medusa.core.cli``)."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from medusa.core.plugins import (
    HTTP_HANDLERS_GROUP,
    LOGGERS_GROUP,
    RESOLVERS_GROUP,
    SERVERS_GROUP,
    plugins,
    server_plugins,
)

TIMEOUT = 30.0


def _console_script() -> str | None:
    found = shutil.which("medusa", path=os.path.dirname(sys.executable))
    return found


COMMANDS = [
    pytest.param([sys.executable, "-m", "medusa.core.cli"], id="python-m"),
    pytest.param(
        [_console_script() or "medusa"],
        id="console-script",
        marks=pytest.mark.skipif(
            _console_script() is None, reason="the medusa script is not installed here"
        ),
    ),
]


@pytest.fixture(params=COMMANDS)
def medusa(request: pytest.FixtureRequest) -> list[str]:
    return list(request.param)


def run(medusa: list[str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*medusa, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        check=False,
    )


# -- medusa plugins --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("group", "heading", "empty"),
    [
        (SERVERS_GROUP, "server types", "install medusa-http, medusa-ftp, ..."),
        (RESOLVERS_GROUP, "resolvers", "install medusa-dns"),
        (LOGGERS_GROUP, "loggers", "install medusa-logging"),
        (HTTP_HANDLERS_GROUP, "HTTP handler types beyond medusa-http's own", "a package adds them"),
    ],
)
def test_plugins_lists_each_kind_of_plugin(
    medusa: list[str], group: str, heading: str, empty: str
) -> None:
    """Server types, resolvers, loggers and handler types, each under its heading."""
    result = run(medusa, "plugins")
    assert result.returncode == 0, result.stderr
    sections = result.stdout.split("\n\n")
    section = next(s for s in sections if s.startswith(f"{heading} ({group}):\n"))
    lines = section.strip("\n").splitlines()[1:]
    installed = plugins(group)
    if not installed:
        assert lines == [f"  none ({empty})"]
        return
    assert len(lines) == len(installed)
    for line, plugin in zip(lines, installed, strict=True):
        assert line.split() == [
            plugin.name,
            plugin.distribution,
            plugin.version,
            f"({plugin.target})",
        ]


# -- medusa serve: errors --------------------------------------------------------------------


def test_serve_bad_config_exits_2_with_the_message(medusa: list[str], tmp_path: Path) -> None:
    config = tmp_path / "medusa.toml"
    config.write_text('[[server]]\nlisten = "8080"\n')
    result = run(medusa, "serve", "-c", str(config))
    assert result.returncode == 2
    assert result.stderr == (
        f'medusa: {config}: server[0].type: missing (for example type = "http")\n'
    )
    assert result.stdout == ""  # nothing started, nothing announced


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[server\n", "not valid TOML"),
        ('[[servers]]\ntype = "x"\n', "servers: unknown table"),
        ('[[server]]\ntype = "no-such-type"\n', "server[0].type: no installed server type"),
        ("[medusa]\ngrace = -1\n", "medusa.grace: must be 0 or more"),
    ],
)
def test_serve_config_errors(medusa: list[str], tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "medusa.toml"
    config.write_text(text)
    result = run(medusa, "serve", "-c", str(config))
    assert result.returncode == 2
    assert result.stderr.startswith(f"medusa: {config}: ")
    assert message in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "--workers: must be 1 or more"),
        (["--workers", "many"], "--workers: 'many' is not a number or \"auto\""),
        (["--max-requests", "-5"], "--max-requests: must be 0 or more"),
    ],
)
def test_serve_workers_option_errors(
    medusa: list[str], tmp_path: Path, args: list[str], message: str
) -> None:
    result = run(medusa, "serve", str(tmp_path), *args)
    assert result.returncode == 2
    assert message in result.stderr


def test_serve_missing_config(medusa: list[str], tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    result = run(medusa, "serve", "-c", str(missing))
    assert result.returncode == 2
    assert result.stderr == f"medusa: {missing}: No such file or directory\n"


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_serve_root_that_is_not_a_directory(medusa: list[str], tmp_path: Path, kind: str) -> None:
    root = tmp_path / "root"
    if kind == "file":
        root.write_text("not a directory")
    result = run(medusa, "serve", str(root))
    assert result.returncode == 2
    reason = "not a directory" if kind == "file" else "no such directory"
    assert result.stderr == f"medusa: ROOT {root}: {reason}\n"
    assert result.stdout == ""


def test_config_and_address_options_cannot_be_combined(medusa: list[str], tmp_path: Path) -> None:
    installed = server_plugins()
    if not installed:
        pytest.skip("no server type installed: no --NAME option exists")
    config = tmp_path / "medusa.toml"
    config.write_text(f'[[server]]\ntype = "{installed[0].name}"\n')
    result = run(medusa, "serve", "-c", str(config), f"--{installed[0].name}", "0")
    assert result.returncode == 2
    assert "cannot be combined" in result.stderr


def test_config_and_root_cannot_be_combined(medusa: list[str], tmp_path: Path) -> None:
    config = tmp_path / "medusa.toml"
    config.write_text('[[server]]\ntype = "http"\n')
    result = run(medusa, "serve", str(tmp_path), "-c", str(config))
    assert result.returncode == 2
    assert "-c FILE and ROOT cannot be combined" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["bogus"],
        ["serve", "--backend", "tokio"],
        ["serve", "--grace", "soon"],
        ["serve", "--grace", "-1"],
    ],
    ids=["no-command", "unknown-command", "bad-backend", "bad-grace", "negative-grace"],
)
def test_usage_errors_exit_2(medusa: list[str], args: list[str]) -> None:
    result = run(medusa, *args)
    assert result.returncode == 2
    assert "usage: medusa" in result.stderr


def test_version(medusa: list[str]) -> None:
    result = run(medusa, "--version")
    assert result.returncode == 0
    assert result.stdout.startswith("medusa-core ")
    assert "unknown" not in result.stdout  # installed: the version comes from its metadata


def test_unknown_address_option_points_at_plugins(medusa: list[str]) -> None:
    result = run(medusa, "serve", "--gopher", "7070")
    assert result.returncode == 2
    assert "unrecognized arguments: --gopher" in result.stderr
    assert "'medusa plugins' lists the installed ones" in result.stderr


def test_backend_uvloop_missing_is_a_usage_error(medusa: list[str], tmp_path: Path) -> None:
    # An importable "uvloop" that fails to import stands for uvloop not being installed.
    plugins = server_plugins()
    if not plugins:
        pytest.skip("no server type is installed")
    fake = tmp_path / "no-uvloop" / "uvloop"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('not installed in this test')\n")
    address = f"--{plugins[0].name}=127.0.0.1:0"
    result = subprocess.run(
        [*medusa, "serve", str(tmp_path), address, "--backend", "uvloop"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "PYTHONPATH": str(fake.parent)},
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr == (
        "medusa: backend uvloop: uvloop is not installed: pip install 'medusa-core[uvloop]'\n"
    )


def test_run_missing_script(medusa: list[str], tmp_path: Path) -> None:
    script = tmp_path / "start_medusa.py"
    result = run(medusa, "run", str(script))
    assert result.returncode == 2
    assert result.stderr == f"medusa: {script}: no such file\n"


# -- medusa run: a startup script ------------------------------------------------------------

SCRIPT = textwrap.dedent(
    """
    import sys

    from medusa.core import Channel, Server


    class Echo(Channel):
        terminator = b"\\n"

        def found_terminator(self) -> None:
            self.push(self.get_incoming().upper() + b"\\n")


    class EchoServer(Server):
        name = "echo"

        def make_channel(self) -> Channel:
            return Echo(self)


    servers = [EchoServer(int(sys.argv[1]))]
    """
)


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "start_medusa.py"
    path.write_text(SCRIPT)
    return path


class Process:
    """A running ``medusa`` whose standard output is read line by line with a timeout."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        assert self.proc.stdout is not None
        stdout = self.proc.stdout
        self.reader = threading.Thread(target=self._read, args=(stdout,), daemon=True)
        self.reader.start()

    def _read(self, stdout: object) -> None:
        for line in stdout:  # type: ignore[attr-defined]
            self.lines.put(line)
        self.lines.put(None)

    def readline(self) -> str:
        try:
            line = self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail(f"no output within {TIMEOUT} s")
        if line is None:
            pytest.fail(f"medusa exited early: {self.proc.wait(TIMEOUT)}, {self.stderr()}")
        return line

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(TIMEOUT)
        self.reader.join(TIMEOUT)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def process() -> Iterator[list[Process]]:
    started: list[Process] = []
    yield started
    for p in started:
        p.stop()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_run_script_serves_until_a_signal(
    medusa: list[str], script: Path, process: list[Process], signum: signal.Signals
) -> None:
    p = Process([*medusa, "run", str(script), "0"])
    process.append(p)
    line = p.readline()
    prefix = "medusa: echo listening on echo://127.0.0.1:"
    assert line.startswith(prefix), line
    port = int(line[len(prefix) :].rstrip().rstrip("/"))
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(b"hello\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(100)
            assert chunk, "connection closed"
            data += chunk
        assert data == b"HELLO\n"
    p.proc.send_signal(signum)
    assert p.proc.wait(TIMEOUT) == 0
    assert "Traceback" not in p.stderr()


def test_run_script_on_a_taken_port_exits_1(medusa: list[str], script: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(medusa, "run", str(script), str(port))
    assert result.returncode == 1
    assert result.stderr.startswith(
        f"medusa: echo server cannot listen on 127.0.0.1:{port}: Address already in use"
    ), result.stderr
    assert "Traceback" not in result.stderr
