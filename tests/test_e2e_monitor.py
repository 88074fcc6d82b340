"""End-to-end: ``medusa serve`` with HTTP and the monitor, driven by the real
``medusa-monitor`` client as a subprocess: counters, a handler installed on the running
HTTP server and removed again (seen by curl), refusal after the delay, lockout, a Unix
socket of mode 0600, and code that raises or floods leaving the server serving."""

from __future__ import annotations

import os
import select
import stat
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest
from tests.conftest import BACKENDS, CURL, Endpoint, Medusa, Runner, curl, wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CURL is None, reason="curl is not installed (apt-get install curl)"),
]

SECRET = b"end-to-end monitor secret 0123456789"
CLIENT_TIMEOUT = 60.0


def client_command() -> list[str]:
    """The ``medusa-monitor`` console script next to the interpreter, else
    ``python -m medusa.monitor.client``."""
    script = Path(sys.executable).with_name("medusa-monitor")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "medusa.monitor.client"]


def monitor_client(
    address: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``medusa-monitor ADDRESS ARGS...`` to completion (no secret in the environment
    unless ``env`` gives one)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MEDUSA_MONITOR_")}
    return subprocess.run(
        [*client_command(), address, *args],
        env={**base, "MEDUSA_MONITOR_HISTORY": os.devnull, **(env or {})},
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
        check=False,
    )


def private_file(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    path.chmod(0o600)
    return path


def endpoint(process: Medusa, name: str) -> Endpoint:
    return next(e for e in process.endpoints if e.name == name)


def tcp_address(point: Endpoint) -> str:
    return f"{point.host}:{point.port}"


HANDLER = """
class Greeting:
    monitor_test = True

    def match(self, request):
        return request.path == '/hello.txt'

    def handle_request(self, request):
        request.respond(200, b'installed from the monitor\\n', content_type='text/plain')

servers['http'].install_handler(Greeting())
[type(h).__name__ for h in servers['http'].handlers]
"""

REMOVE = """
found = [h for h in servers['http'].handlers if getattr(h, 'monitor_test', False)]
servers['http'].remove_handler(found[0])
len(found)
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_install_and_remove_a_handler(
    backend: str, site: Path, runner: Runner, tmp_path: Path
) -> None:
    secret = private_file(tmp_path / "secret", SECRET + b"\n")
    process = runner.start(
        "serve",
        str(site),
        "--http",
        "127.0.0.1:0",
        "--monitor",
        "127.0.0.1:0",
        "--backend",
        backend,
        "--grace",
        "2",
        listening=2,
        env={"MEDUSA_MONITOR_SECRET_FILE": str(secret)},
    )
    http, monitor = endpoint(process, "http"), endpoint(process, "monitor")
    assert monitor.where.startswith("monitor://127.0.0.1:")
    address = tcp_address(monitor)
    login = {"MEDUSA_MONITOR_SECRET_FILE": str(secret)}

    assert curl(f"{http.url}/hello.txt").body == b"Hello, Medusa!\n"
    done = monitor_client(address, "-c", "servers['http'].counters.requests", env=login)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 1

    done = monitor_client(address, "-c", HANDLER, env=login)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("['Greeting', ")
    response = curl(f"{http.url}/hello.txt")
    assert response.status == 200
    assert response.body == b"installed from the monitor\n"
    assert curl(f"{http.url}/style.css").status == 200  # other paths still reach the files

    done = monitor_client(address, "-c", REMOVE, env=login)
    assert (done.returncode, done.stdout) == (0, "1\n"), done.stderr
    assert curl(f"{http.url}/hello.txt").body == b"Hello, Medusa!\n"

    # Code that raises: a traceback and status 1; code that floods: capped output.
    done = monitor_client(address, "-c", "print('before')\n1 / 0", env=login)
    assert done.returncode == 1
    assert done.stdout.startswith("before\nTraceback (most recent call last):\n")
    assert done.stdout.endswith("ZeroDivisionError: division by zero\n")
    done = monitor_client(address, "-c", "for i in range(200_000): print('flood', i)", env=login)
    assert done.returncode == 0
    assert len(done.stdout) < 70_000
    assert "[output truncated: " in done.stdout
    assert monitor_client(address, "-c", "raise SystemExit", env=login).returncode == 0
    assert curl(f"{http.url}/hello.txt").body == b"Hello, Medusa!\n"
    assert process.running()
    wait_until(lambda: "Greeting())" in process.stderr(), "the audit lines")
    log = process.stderr()
    assert "medusa.monitor.audit" in log
    assert "... servers['http'].install_handler(Greeting())" in log
    assert "logged in" in log


def test_wrong_secret_delay_and_lockout(site: Path, runner: Runner, tmp_path: Path) -> None:
    secret = private_file(tmp_path / "monitor.secret", SECRET)
    wrong = private_file(tmp_path / "wrong.secret", b"this is not the right secret")
    config = tmp_path / "medusa.toml"
    config.write_text(
        f"""
[medusa]
grace = 2

[[server]]
type = "http"
listen = "127.0.0.1:0"
root = "{site}"
access_log = false

[[server]]
type = "monitor"
listen = "127.0.0.1:0"
secret_file = "monitor.secret"
max_failures = 3
lockout = 600
failure_delay = 0.3
max_delay = 5
output_limit = 4096
"""
    )
    process = runner.start("serve", "-c", str(config), listening=2)
    address = tcp_address(endpoint(process, "monitor"))
    started = time.monotonic()
    done = monitor_client(address, "-c", "1", env={"MEDUSA_MONITOR_SECRET_FILE": str(wrong)})
    assert time.monotonic() - started >= 0.3
    assert done.returncode == 3
    assert "login refused: secret" in done.stderr
    assert done.stdout == ""
    for _ in range(2):
        done = monitor_client(address, "-c", "1", "--secret-file", str(wrong))
        assert "login refused: secret" in done.stderr
    done = monitor_client(address, "-c", "1", "--secret-file", str(secret))
    assert done.returncode == 3
    assert "login refused: locked" in done.stderr
    wait_until(
        lambda: process.stderr().count("login failed; refused after") >= 3, "the failed logins"
    )
    log = process.stderr()
    assert log.count("login failed; refused after") == 3
    assert "127.0.0.1:" in log
    assert "127.0.0.1 locked out for 600 s" in log
    assert curl(f"{endpoint(process, 'http').url}/hello.txt").status == 200


def test_unix_socket_interactive(site: Path, runner: Runner, tmp_path: Path) -> None:
    path = tmp_path / "run" / "monitor.sock"
    process = runner.start(
        "serve",
        str(site),
        "--http",
        "127.0.0.1:0",
        "--monitor",
        f"unix:{path}",
        listening=2,
    )
    assert endpoint(process, "monitor").unix_path == str(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    lines = [
        "for i in range(2):",
        "    print('line', i)",
        "",
        "await asyncio.sleep(0, 'awaited')",
        "def broken(:",
        "servers['http'].counters.active >= 0",
    ]
    done = monitor_client(f"unix:{path}", stdin="\n".join(lines) + "\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("line 0\nline 1\n'awaited'\n")
    assert "SyntaxError" in done.stdout
    assert done.stdout.endswith("True\n")
    assert "Medusa monitor" in done.stderr  # banner and prompts go to stderr off a terminal
    assert ">>> ... ... >>> " in done.stderr
    assert curl(f"{endpoint(process, 'http').url}/hello.txt").status == 200


def test_tcp_monitor_needs_a_secret(site: Path, runner: Runner, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDUSA_MONITOR_")}
    runner.env = env
    done = runner.run("serve", str(site), "--monitor", "127.0.0.1:0")
    assert done.returncode == 2
    assert "needs a secret" in done.stderr
    runner.env = {**env, "MEDUSA_MONITOR_SECRET": "too short"}
    done = runner.run("serve", str(site), "--monitor", "127.0.0.1:0")
    assert done.returncode == 2
    assert "at least 16" in done.stderr
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    runner.env = env
    done = runner.run("serve", str(site), "--monitor", f"unix:{shared}/m.sock")
    assert done.returncode == 1
    assert "chmod 700" in done.stderr


class Terminal:
    """A process on a new pseudo-terminal (its controlling terminal), read and typed to
    with bounded waits."""

    def __init__(self, argv: list[str], env: Mapping[str, str]) -> None:
        self.master, slave = os.openpty()
        take_tty = (
            "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
            "os.execv(sys.argv[1], sys.argv[1:])"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", take_tty, *argv],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=dict(env),
            start_new_session=True,
        )
        os.close(slave)
        self.seen = b""
        self.pos = 0  # where the next expect() starts looking

    def expect(self, text: bytes, timeout: float = 20.0) -> None:
        """Wait for ``text`` in the output after the previous match."""
        deadline = time.monotonic() + timeout
        while text not in self.seen[self.pos :]:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"timed out waiting for {text!r}; got {self.seen!r}")
            ready, _, _ = select.select([self.master], [], [], remaining)
            if ready:
                try:
                    data = os.read(self.master, 4096)
                except OSError:  # EIO: the process closed the terminal
                    data = b""
                if not data:
                    pytest.fail(f"EOF waiting for {text!r}; got {self.seen!r}")
                self.seen += data
        self.pos = self.seen.index(text, self.pos) + len(text)

    def type(self, text: bytes) -> None:
        os.write(self.master, text)

    def close(self) -> int:
        try:
            return self.proc.wait(20)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            os.close(self.master)


def test_hidden_prompt_readline_and_ctrl_d(site: Path, runner: Runner, tmp_path: Path) -> None:
    secret = private_file(tmp_path / "secret", SECRET)
    process = runner.start(
        "serve",
        str(site),
        "--monitor",
        "127.0.0.1:0",
        listening=1,
        env={"MEDUSA_MONITOR_SECRET_FILE": str(secret)},
    )
    history = tmp_path / "history"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDUSA_MONITOR_")}
    env |= {"MEDUSA_MONITOR_HISTORY": str(history), "TERM": "dumb"}
    term = Terminal([*client_command(), tcp_address(endpoint(process, "monitor"))], env)
    try:
        term.expect(b"Monitor secret: ")
        term.type(SECRET + b"\n")
        term.expect(b">>> ")
        term.type(b"x = 41\n")
        term.type(b"if x:\n")
        term.expect(b"... ")
        term.type(b"    x + 1\n\n")
        term.expect(b"\n42\r\n>>> ")
        term.type(b"\x04")  # Ctrl-D at an empty prompt
        assert term.close() == 0
    finally:
        if term.proc.poll() is None:
            term.close()
    assert SECRET not in term.seen  # the secret was not echoed
    assert "x + 1" in history.read_text()
    assert stat.S_IMODE(history.stat().st_mode) == 0o600
