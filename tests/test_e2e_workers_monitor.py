"""End-to-end: the monitor under ``--workers 2`` (issue 14): one prompt into the master and
one into each worker, at the configured address and at the worker's own (a Unix socket
path + ``.N``; a TCP port + N), each answered by a different process, the master's
``workers()`` listing the workers' pids; after a SIGHUP reload the new workers answer at
the same addresses.

The client is the monitor's own (:class:`medusa.monitor.MonitorConnection`) on real
sockets; waits are on conditions with deadlines."""

from __future__ import annotations

import ast
import contextlib
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import (
    IO_TIMEOUT,
    START_TIMEOUT,
    STOP_TIMEOUT,
    Medusa,
    Runner,
    free_port_range,
    medusa_command,
    wait_until,
)

from medusa.core.loop import LATE_WAIT
from medusa.core.testing import require_tool
from medusa.monitor import LoginRefusedError, MonitorConnection

pytestmark = pytest.mark.e2e

SECRET = b"workers monitor secret 0123456789"

PROBE = (
    "import os\n"
    "(os.getpid(), os.getppid(), worker,"
    " sorted((r['index'], r['pid'], r['state'], r['generation']) for r in workers()))"
)
"""What each prompt is asked: its process, its parent, its worker number and the worker
table as (index, pid, state, generation), sorted."""


def ask(address: str, code: str = PROBE, secret: bytes | None = None) -> Any:
    """Log into the monitor at ``address``, run ``code`` and return its echoed value."""
    with MonitorConnection.open(address, timeout=IO_TIMEOUT) as conn:
        conn.login(secret)
        reply = conn.execute(code)
    assert reply.ok, reply.output
    return ast.literal_eval(reply.output.strip())


def rows_or_none(address: str, secret: bytes | None = None) -> Any:
    """The master's ``workers()`` rows, or None while its prompt cannot answer: a reload
    replaces the master's own monitor too, and a session that meets the old one's stop
    ends (for a condition waited on)."""
    try:
        return ask(address, secret=secret)[3]
    except (OSError, EOFError):
        return None


def write_config(tmp_path: Path, site: Path, monitors: str) -> Path:
    secret = tmp_path / "monitor.secret"
    secret.write_bytes(SECRET)
    secret.chmod(0o600)
    config = tmp_path / "medusa.toml"
    config.write_text(
        f"""
[medusa]
workers = 2
grace = 2

[[server]]
type = "http"
listen = "127.0.0.1:0"
root = "{site}"
access_log = false
{monitors}
"""
    )
    return config


def unix_monitor(path: Path) -> str:
    return f'\n[[server]]\ntype = "monitor"\nlisten = "unix:{path}"\n'


def tcp_monitor(port: int) -> str:
    return (
        f'\n[[server]]\ntype = "monitor"\nlisten = "127.0.0.1:{port}"\n'
        'secret_file = "monitor.secret"\n'
    )


LISTENING = re.compile(r"medusa: monitor listening on (\S+) \((master|worker \d+)\)")
"""A monitor's listening line. Not anchored at line ends: workers starting together may
write their lines into one another (see :func:`test_listening_lines_are_written_whole`)."""


def monitor_lines(process: Medusa, count: int) -> dict[str, str]:
    """Wait for ``count`` monitor listening lines (each ends with ``(master)`` or
    ``(worker N)``); return where each listens by that note (the last line of each)."""
    wait_until(
        lambda: len(LISTENING.findall(process.stdout())) >= count,
        f"{count} monitor listening lines\n{process.describe()}",
        timeout=LATE_WAIT + IO_TIMEOUT,  # a worker retries an address in use for LATE_WAIT
    )
    return {note: where for where, note in LISTENING.findall(process.stdout())}


def check_three_processes(
    process: Medusa, addresses: list[str], secret: bytes | None, generation: int
) -> list[int]:
    """Ask the master (``addresses[0]``) and workers 1 and 2 (``addresses[1:]``) who they
    are; check they are three processes, the workers the master's children and the rows of
    its ``workers()``; return the workers' pids."""
    master = ask(addresses[0], secret=secret)
    one = ask(addresses[1], secret=secret)
    two = ask(addresses[2], secret=secret)
    assert master[0] == process.pid
    assert master[2] is None  # the master is no worker
    assert (one[2], two[2]) == (1, 2)
    pids = [one[0], two[0]]
    assert len({process.pid, *pids}) == 3, (master, one, two)
    assert one[1] == two[1] == process.pid  # both forked by the master
    assert master[3] == [(1, pids[0], "ready", generation), (2, pids[1], "ready", generation)]
    assert one[3] == two[3] == master[3]  # one shared table, seen from everywhere
    return pids


def wait_settled(process: Medusa, address: str, secret: bytes | None, generation: int) -> None:
    """Wait until the master's table holds exactly two ready rows of ``generation`` (the
    old workers of a reload have exited)."""

    def settled() -> bool:
        rows = rows_or_none(address, secret) or []
        return [(r[0], r[2], r[3]) for r in rows] == [
            (1, "ready", generation),
            (2, "ready", generation),
        ]

    wait_until(settled, f"two ready workers of generation {generation}\n{process.describe()}")


def reload(process: Medusa, count: int) -> None:
    """Send SIGHUP and wait for the ``count``-th "reload done" line, and for the new
    workers' monitor lines (2 more each reload: a worker starts its monitor once its
    shared servers accept, retrying while the worker it replaces still holds the
    address)."""
    process.send_signal(signal.SIGHUP)
    wait_until(
        lambda: process.stderr().count("reload done") >= count,
        f"reload {count} done\n{process.describe()}",
    )
    monitor_lines(process, 3 + 2 * count)


def test_unix_monitor_in_master_and_each_worker(runner: Runner, site: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    sock = run / "mon.sock"
    config = write_config(tmp_path, site, unix_monitor(sock))
    process = runner.start("serve", "-c", str(config), listening=1)  # http, by the master
    assert monitor_lines(process, 3) == {
        "master": f"unix:{sock}",
        "worker 1": f"unix:{sock}.1",
        "worker 2": f"unix:{sock}.2",
    }
    addresses = [f"unix:{sock}", f"unix:{sock}.1", f"unix:{sock}.2"]
    wait_settled(process, addresses[0], None, 1)
    before = check_three_processes(process, addresses, None, 1)

    # A worker's own servers are its own: its monitor sees one HTTP server and itself.
    names = ask(addresses[1], "sorted(k for k in servers if '@' not in k)")
    assert names == ["http", "monitor"]
    assert ask(addresses[0], "sorted(k for k in servers if '@' not in k)") == ["monitor"]

    reload(process, 1)
    wait_settled(process, addresses[0], None, 2)
    after = check_three_processes(process, addresses, None, 2)
    assert not set(before) & set(after), (before, after)  # new workers answer there
    assert process.stop() == 0
    # every socket file is removed by the process that made it
    assert sorted(p.name for p in run.iterdir()) == []


def test_tcp_monitor_ports_per_worker(runner: Runner, site: Path, tmp_path: Path) -> None:
    port = free_port_range(3)
    config = write_config(tmp_path, site, tcp_monitor(port))
    process = runner.start("serve", "-c", str(config), listening=1)
    assert monitor_lines(process, 3) == {
        "master": f"monitor://127.0.0.1:{port}/",
        "worker 1": f"monitor://127.0.0.1:{port + 1}/",
        "worker 2": f"monitor://127.0.0.1:{port + 2}/",
    }
    addresses = [f"127.0.0.1:{port + n}" for n in range(3)]
    wait_settled(process, addresses[0], SECRET, 1)
    before = check_three_processes(process, addresses, SECRET, 1)

    reload(process, 1)
    wait_settled(process, addresses[0], SECRET, 2)
    after = check_three_processes(process, addresses, SECRET, 2)
    assert not set(before) & set(after), (before, after)
    assert process.stop() == 0


def test_monitor_survives_two_reloads(runner: Runner, site: Path, tmp_path: Path) -> None:
    """The master's own monitor is replaced on each reload (at the same path), and the
    workers' too: a second reload finds every address served again."""
    sock = tmp_path / "run" / "mon.sock"
    config = write_config(tmp_path, site, unix_monitor(sock))
    process = runner.start("serve", "-c", str(config), listening=1)
    monitor_lines(process, 3)
    addresses = [f"unix:{sock}", f"unix:{sock}.1", f"unix:{sock}.2"]
    wait_settled(process, addresses[0], None, 1)
    seen: set[int] = set()
    for generation in (2, 3):
        reload(process, generation - 1)
        wait_settled(process, addresses[0], None, generation)
        pids = check_three_processes(process, addresses, None, generation)
        assert not seen & set(pids)
        seen |= set(pids)
    assert "serves without it" not in process.stderr(), process.describe()
    assert process.stop() == 0


def stdout_writes(trace: Path) -> list[tuple[int, str]]:
    """(pid, text) of every ``write`` to standard output in an ``strace -f -o`` file."""
    if not trace.exists():
        return []
    found = []
    for line in trace.read_text("utf-8", "replace").splitlines():
        match = re.match(r'^(\d+) +write\(1, "(.*)", \d+\) += \d+$', line)
        if match:
            found.append((int(match.group(1)), match.group(2)))
    return found


def test_listening_lines_are_written_whole(site: Path, tmp_path: Path) -> None:
    """Each listening line reaches standard output in one ``write`` (a pipe keeps writes
    of up to PIPE_BUF bytes whole), so two workers printing their monitor's line at the
    same moment cannot merge them into one line. With ``PYTHONUNBUFFERED=1`` (as the tests
    and many service units set) ``print`` wrote the text and the newline apart: seen as
    ``... (worker 2)medusa: monitor listening on ... (worker 1)`` followed by an empty
    line, which made a test wait in vain for the line. Traced with strace, so the check
    needs no race to be lost."""
    strace = require_tool("strace", "apt-get install strace")
    config = write_config(tmp_path, site, unix_monitor(tmp_path / "run" / "mon.sock"))
    trace = tmp_path / "writes.txt"
    command = [*medusa_command(), "serve", "-c", str(config)]
    proc = subprocess.Popen(
        [strace, "-f", "-qq", "-e", "trace=write", "-s", "512", "-o", str(trace), *command],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: sum("listening" in text for _, text in stdout_writes(trace)) >= 4,
            "four listening lines in the trace",
            timeout=START_TIMEOUT,
        )
        texts = [text for _, text in stdout_writes(trace)]
        assert [text for text in texts if text and not text.endswith("\\n")] == [], texts
    finally:
        # strace and every medusa process are in the session's process group: the master
        # and the workers stop gracefully on SIGTERM, strace lets them go and exits.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)


def test_monitor_follows_a_change_of_the_worker_count(
    runner: Runner, site: Path, tmp_path: Path
) -> None:
    """A reload to 3 workers opens a prompt into worker 3 at ``mon.sock.3``; a reload back
    to 2 stops worker 3, whose socket file goes with it."""
    sock = tmp_path / "run" / "mon.sock"
    config = write_config(tmp_path, site, unix_monitor(sock))
    process = runner.start("serve", "-c", str(config), listening=1)
    monitor_lines(process, 3)
    master = f"unix:{sock}"
    wait_settled(process, master, None, 1)

    config.write_text(config.read_text().replace("workers = 2", "workers = 3"))
    process.send_signal(signal.SIGHUP)
    wait_until(
        lambda: "reload done: configuration 2 served by 3 workers" in process.stderr(),
        f"the reload to 3 workers\n{process.describe()}",
    )
    monitor_lines(process, 3 + 3)
    ready3 = [(1, "ready"), (2, "ready"), (3, "ready")]
    wait_until(
        lambda: [(r[0], r[2]) for r in rows_or_none(master) or []] == ready3,
        f"three ready workers\n{process.describe()}",
    )
    rows = ask(master)[3]
    three = ask(f"unix:{sock}.3")
    assert (three[0], three[2]) == (rows[2][1], 3)

    config.write_text(config.read_text().replace("workers = 3", "workers = 2"))
    process.send_signal(signal.SIGHUP)
    wait_until(
        lambda: "reload done: configuration 3 served by 2 workers" in process.stderr(),
        f"the reload back to 2 workers\n{process.describe()}",
    )
    wait_settled(process, master, None, 3)
    wait_until(lambda: not Path(f"{sock}.3").exists(), "worker 3's socket file removed")
    assert process.stop() == 0


def test_login_failures_count_per_process(runner: Runner, site: Path, tmp_path: Path) -> None:
    """As the README says: each process's monitor keeps its own failed-login count, so a
    lockout at the master's address leaves the workers' prompts open to the secret."""
    port = free_port_range(3)
    monitors = tcp_monitor(port) + "max_failures = 1\nlockout = 600\nfailure_delay = 0.1\n"
    process = runner.start("serve", "-c", str(write_config(tmp_path, site, monitors)))
    monitor_lines(process, 3)
    master, one = f"127.0.0.1:{port}", f"127.0.0.1:{port + 1}"
    with pytest.raises(LoginRefusedError, match="secret"):
        ask(master, "1", b"not the secret at all, 0123456789")
    with pytest.raises(LoginRefusedError, match="locked"):
        ask(master, "1", SECRET)
    assert ask(one, "worker", SECRET) == 1
    assert process.stop() == 0
