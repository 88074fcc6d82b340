"""End-to-end: log files and logrotate under ``--workers 2`` (issue 14), with
medusa-logging's file logger as an HTTP server's access log.

logrotate renames ``access.log`` to ``access.log.1`` and sends SIGUSR1 to the master: every
worker reopens ``access.log`` (a new file) without a restart; the lines written before the
signal stay in ``access.log.1``, the later ones go to the new file, and none is lost or
written twice (each request carries its number, so the two files are counted line by
line). The same without workers (one process). A worker ignores SIGHUP sent to it alone
(SIGHUP is the master's: a reload), even with the file logger's ``reopen_on_sighup``; a
reload itself loses no line either. The master's thread count stays the same over reloads.

Which worker answers a request is chosen by stopping the other one (SIGSTOP) while the
request is made: the workers accept from one shared socket, so only the running one can
take it. Waits are on conditions with deadlines."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.conftest import IO_TIMEOUT, Medusa, Runner, wait_until

pytest.importorskip("medusa.logging")

pytestmark = pytest.mark.e2e

NUMBER = re.compile(r"[?&]n=(\d+)")


def write_config(tmp_path: Path, *, workers: int | None = 2, logger_extra: str = "") -> Path:
    """A medusa.toml: ``[logger.access]`` of type file at ``logs/access.log`` and an HTTP
    server with the status page, logging its requests there."""
    (tmp_path / "logs").mkdir(exist_ok=True)
    (tmp_path / "site").mkdir(exist_ok=True)
    (tmp_path / "site" / "page.txt").write_bytes(b"page\n")
    settings = f"[medusa]\ngrace = 2\nworkers = {workers}\n" if workers else "[medusa]\ngrace = 2\n"
    config = tmp_path / "medusa.toml"
    config.write_text(
        f"""{settings}
[logger.access]
type = "file"
path = "logs/access.log"
{logger_extra}

[[server]]
type = "http"
listen = "127.0.0.1:0"
root = "site"
access_log = "access"

[[server.handler]]
type = "status"
path = "/status"
"""
    )
    return config


class Requests:
    """Numbered requests to the status page (``/status?format=json&n=K``): the number is
    in the access line; the answer says which worker (pid) served it."""

    def __init__(self, process: Medusa) -> None:
        self.port = process.endpoint.port
        self.served: dict[int, int] = {}  # request number -> pid that answered

    def make(self) -> dict[str, object]:
        """Make the next request; return the status page's JSON."""
        number = len(self.served)
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=IO_TIMEOUT)
        try:
            conn.request("GET", f"/status?format=json&n={number}")
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        assert response.status == 200, body[:300]
        page: dict[str, object] = json.loads(body)
        self.served[number] = int(str(page["pid"]))
        return page

    def numbers(self, pid: int | None = None) -> set[int]:
        """The numbers of the requests made (served by ``pid``, when given)."""
        return {n for n, p in self.served.items() if pid is None or p == pid}


def logged(path: Path) -> list[int]:
    """The request numbers in a log file, in file order (a missing file: none)."""
    if not path.exists():
        return []
    numbers = []
    for line in path.read_text("utf-8", "replace").splitlines():
        match = NUMBER.search(line)
        assert match, f"an access line without a request number: {line!r}"
        numbers.append(int(match.group(1)))
    return numbers


def ready_workers(requests: Requests) -> dict[int, int]:
    """The ready workers' pids by number, from the status page."""
    rows = requests.make()["workers"]
    assert isinstance(rows, list)
    return {row["index"]: row["pid"] for row in rows if row["state"] == "ready"}


def process_state(pid: int) -> str:
    """The state letter of ``pid`` in /proc (``T`` when stopped); ``X`` when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return "X"
    return text.rpartition(")")[2].split()[0]


@contextmanager
def stopped(pid: int) -> Iterator[None]:
    """Keep ``pid`` stopped (SIGSTOP) inside the block."""
    os.kill(pid, signal.SIGSTOP)
    try:
        wait_until(lambda: process_state(pid) == "T", f"pid {pid} stopped")
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def request_on(requests: Requests, pid: int, others: list[int]) -> None:
    """Make one request that the worker ``pid`` serves (``others`` are stopped meanwhile)."""
    if not others:
        requests.make()
    else:
        with stopped(others[0]):
            request_on(requests, pid, others[1:])
    assert requests.served[len(requests.served) - 1] == pid


def start_workers(runner: Runner, config: Path) -> tuple[Medusa, Requests, dict[int, int]]:
    process = runner.start("serve", "-c", str(config))
    requests = Requests(process)
    wait_until(
        lambda: len(ready_workers(requests)) == 2, f"two ready workers\n{process.describe()}"
    )
    return process, requests, ready_workers(requests)


def wait_logged(paths: list[Path], numbers: set[int], process: Medusa) -> None:
    """Wait until the files hold exactly the lines of ``numbers`` (the writers write a
    moment after the response)."""
    wait_until(
        lambda: sorted(n for p in paths for n in logged(p)) == sorted(numbers),
        f"the access lines of requests {sorted(numbers)} in {[p.name for p in paths]}; "
        f"got {[logged(p) for p in paths]}\n{process.describe()}",
    )


def test_sigusr1_reopens_the_log_in_every_worker(runner: Runner, tmp_path: Path) -> None:
    log, rotated = tmp_path / "logs" / "access.log", tmp_path / "logs" / "access.log.1"
    process, requests, pids = start_workers(runner, write_config(tmp_path))
    workers = [pids[1], pids[2]]
    for _ in range(3):
        for pid in workers:
            request_on(requests, pid, [w for w in workers if w != pid])
    wait_logged([log], requests.numbers(), process)

    log.rename(rotated)  # logrotate's move: the workers still write to the moved file
    for pid in workers:
        request_on(requests, pid, [w for w in workers if w != pid])
    wait_logged([rotated], requests.numbers(), process)
    before = requests.numbers()

    process.send_signal(signal.SIGUSR1)
    wait_until(
        lambda: "SIGUSR1: reopening the log files (master and workers)" in process.stderr(),
        f"the master's SIGUSR1 line\n{process.describe()}",
    )
    # Each worker reopens when it handles the signal: keep asking each until one of its
    # lines is in the new file (the lines it wrote before that are in the old one).
    for pid in workers:
        others = [w for w in workers if w != pid]

        def in_new_file(pid: int = pid, others: list[int] = others) -> bool:
            request_on(requests, pid, others)
            wait_logged([log, rotated], requests.numbers(), process)
            return bool(set(logged(log)) & requests.numbers(pid))

        wait_until(in_new_file, f"a line of worker pid {pid} in the new access.log")
    for pid in workers:  # and once more each, now that both reopened
        request_on(requests, pid, [w for w in workers if w != pid])
    wait_logged([log, rotated], requests.numbers(), process)

    old, new = logged(rotated), logged(log)
    assert len(old) + len(new) == len(requests.served)  # none lost, none twice
    assert before <= set(old)  # every line from before the signal is in the old file
    assert not before & set(new)
    for pid in workers:  # the last line of each worker is in the new file
        assert max(requests.numbers(pid)) in new
    assert process.stop() == 0
    assert sorted(logged(rotated) + logged(log)) == sorted(requests.numbers())


def test_sigusr1_reopens_the_log_of_one_process(runner: Runner, tmp_path: Path) -> None:
    log, rotated = tmp_path / "logs" / "access.log", tmp_path / "logs" / "access.log.1"
    process = runner.start("serve", "-c", str(write_config(tmp_path, workers=None)))
    requests = Requests(process)
    for _ in range(5):
        requests.make()
    wait_logged([log], requests.numbers(), process)
    log.rename(rotated)
    requests.make()
    wait_logged([rotated], requests.numbers(), process)
    before = requests.numbers()
    process.send_signal(signal.SIGUSR1)

    def in_new_file() -> bool:
        requests.make()
        wait_logged([log, rotated], requests.numbers(), process)
        return bool(logged(log))

    wait_until(in_new_file, "a line in the new access.log")
    requests.make()
    wait_logged([log, rotated], requests.numbers(), process)
    assert set(logged(rotated)) >= before
    assert max(requests.numbers()) in logged(log)
    assert process.stop() == 0
    assert sorted(logged(rotated) + logged(log)) == sorted(requests.numbers())


def test_sighup_still_reopens_the_log_of_one_process(runner: Runner, tmp_path: Path) -> None:
    """Without workers SIGHUP keeps its old meaning for a file logger with
    ``reopen_on_sighup`` (the default): it reopens the file (the process does not take
    SIGHUP over for its "no reload here" warning when a logger handles it)."""
    log, rotated = tmp_path / "logs" / "access.log", tmp_path / "logs" / "access.log.1"
    process = runner.start("serve", "-c", str(write_config(tmp_path, workers=None)))
    requests = Requests(process)
    requests.make()
    wait_logged([log], requests.numbers(), process)
    log.rename(rotated)
    process.send_signal(signal.SIGHUP)

    def in_new_file() -> bool:
        requests.make()
        wait_logged([log, rotated], requests.numbers(), process)
        return bool(logged(log))

    wait_until(in_new_file, f"a line in the new access.log\n{process.describe()}")
    assert process.running()
    assert process.stop() == 0
    assert sorted(logged(rotated) + logged(log)) == sorted(requests.numbers())


def test_a_worker_ignores_sighup_even_with_reopen_on_sighup(runner: Runner, tmp_path: Path) -> None:
    """SIGHUP sent to one worker (``kill -HUP`` of its pid, or an old logrotate
    ``postrotate`` that signals every medusa process) neither stops it (SIGHUP's default
    action) nor makes it reopen: under workers, SIGHUP is the master's reload signal, and
    SIGUSR1 the reopening one."""
    log = tmp_path / "logs" / "access.log"
    config = write_config(tmp_path, logger_extra="reopen_on_sighup = true")
    process, requests, pids = start_workers(runner, config)
    workers = [pids[1], pids[2]]
    request_on(requests, workers[0], workers[1:])
    wait_logged([log], requests.numbers(), process)
    rotated = log.with_name("access.log.1")
    log.rename(rotated)
    os.kill(workers[0], signal.SIGHUP)
    # The worker goes on serving (a request it answers after the signal proves it handled
    # or ignored it: signals are delivered before the process returns to user code) ...
    request_on(requests, workers[0], workers[1:])
    wait_logged([log, rotated], requests.numbers(), process)
    assert process_state(workers[0]) not in ("X", "Z")
    # ... into the file it had open: it did not reopen.
    assert sorted(logged(rotated)) == sorted(requests.numbers())
    assert logged(log) == []
    assert "died" not in process.stderr()
    assert "SIGHUP: reading the configuration again" not in process.stderr()
    assert ready_workers(requests) == pids  # no worker was replaced
    assert process.stop() == 0


def test_a_reload_loses_no_access_line(runner: Runner, tmp_path: Path) -> None:
    """SIGHUP to the master replaces the workers: the old ones write what they queued
    before they exit, the new ones append to the same file."""
    log = tmp_path / "logs" / "access.log"
    process, requests, pids = start_workers(runner, write_config(tmp_path))
    workers = [pids[1], pids[2]]
    for pid in workers:
        request_on(requests, pid, [w for w in workers if w != pid])
    process.send_signal(signal.SIGHUP)
    wait_until(lambda: "reload done" in process.stderr(), f"the reload\n{process.describe()}")
    wait_until(
        lambda: process.stderr().count("stopped (exit status 0)") == 2,
        f"the old workers to exit\n{process.describe()}",
    )
    new = ready_workers(requests)
    assert not set(new.values()) & set(workers)
    for pid in new.values():
        request_on(requests, pid, [w for w in new.values() if w != pid])
    wait_logged([log], requests.numbers(), process)
    assert process.stop() == 0
    assert sorted(logged(log)) == sorted(requests.numbers())


def test_workers_rotating_one_file_by_size(runner: Runner, tmp_path: Path) -> None:
    """Both workers append to one access.log that the file logger rotates by size: the
    size counted is the file's, one worker rotates and the other follows, so each backup
    stays under rotate_bytes and the kept files hold an unbroken tail of the requests
    (each worker used to count its own lines only: files of twice the size, and lines
    lost in a file the other worker had deleted as the oldest backup)."""
    log = tmp_path / "logs" / "access.log"
    config = write_config(tmp_path, logger_extra="rotate_bytes = 1500\nbackups = 3")
    process, requests, pids = start_workers(runner, config)
    workers = [pids[1], pids[2]]
    files = [log.with_name(f"access.log.{k}") for k in (3, 2, 1)] + [log]

    def kept() -> list[int]:
        return [n for path in files for n in logged(path)]

    def written(number: int) -> Callable[[], bool]:
        return lambda: number in kept()

    # The requests so far (the status page's, to find the workers) are logged first.
    wait_until(lambda: len(kept()) == len(requests.served), "the first lines")
    first = len(requests.served)
    for turn in range(16):
        pid = workers[turn % 2]
        with stopped(workers[(turn + 1) % 2]):
            for _ in range(5):
                requests.make()
                assert requests.served[len(requests.served) - 1] == pid
                # One line at a time: the file order is the request order.
                wait_until(written(len(requests.served) - 1), "the line of the last request")
    assert process.stop() == 0
    numbers = kept()
    total = len(requests.served)
    # An unbroken tail of the requests, none twice; in request order from the ones made one
    # at a time (the first few, made while waiting for the workers, may be in any order).
    assert sorted(numbers) == list(range(total - len(numbers), total)), [logged(p) for p in files]
    assert [n for n in numbers if n >= first] == list(range(max(first, numbers[0]), total))
    assert numbers[0] > 0  # it did rotate past the backups (the oldest file was deleted)
    assert not log.with_name("access.log.4").exists()
    for path in files[:-1]:
        assert path.stat().st_size <= 1500


def test_sigusr1_during_a_reload_kills_no_worker(runner: Runner, tmp_path: Path) -> None:
    """logrotate may send SIGUSR1 while the master starts new workers (a reload, a
    replacement, ``max_requests``): the master passes it to every worker, also to one that
    has not installed its handler yet, whose default action for SIGUSR1 is to die. A
    starting worker must ignore it (it opens its files afterwards anyway): the reload
    completes. (It used to be "worker 1 (pid P) killed by SIGUSR1", then "reload failed".)
    The signal is sent every few milliseconds through the reload, so one arrives while a
    new worker starts."""
    process, _, _ = start_workers(runner, write_config(tmp_path))
    process.send_signal(signal.SIGHUP)

    def reload_over() -> bool:
        process.send_signal(signal.SIGUSR1)
        text = process.stderr()
        return "reload done" in text or "reload failed" in text

    wait_until(reload_over, f"the end of the reload\n{process.describe()}", interval=0.002)
    text = process.stderr()
    assert "killed by SIGUSR1" not in text, process.describe()
    assert "reload done: configuration 2 served by 2 workers" in text, process.describe()
    assert process.stop() == 0


def test_the_masters_captured_lines_are_written_once(runner: Runner, tmp_path: Path) -> None:
    """A file logger that captures the ``medusa`` logging logger gets each of the master's
    lines once, also after reloads. (The master builds the loggers at each reading of the
    configuration, twice at start, and kept every one attached: each line was written
    once per reading, 2 times after the start, 4 times after two reloads.)"""
    log = tmp_path / "logs" / "medusa.log"
    config = write_config(tmp_path)
    config.write_text(
        config.read_text()
        + '\n[logger.events]\ntype = "file"\npath = "logs/medusa.log"\ncapture = ["medusa"]\n'
    )
    process, _, _ = start_workers(runner, config)
    for generation in (2, 3):
        process.send_signal(signal.SIGHUP)
        done = f"reload done: configuration {generation} served by 2 workers"
        wait_until(in_stderr(process, done), f"{done!r}\n{process.describe()}")
    process.send_signal(signal.SIGUSR1)
    reopening = "SIGUSR1: reopening the log files (master and workers)"
    wait_until(in_stderr(process, reopening), f"the SIGUSR1 line\n{process.describe()}")
    assert process.stop() == 0
    text = log.read_text()
    assert text.count(reopening) == 1, text
    assert text.count("reload done: configuration 3 served by 2 workers") == 1, text


def in_stderr(process: Medusa, text: str) -> Callable[[], bool]:
    """A condition: ``text`` is in the process's standard error."""
    return lambda: text in process.stderr()


def thread_count(pid: int) -> int:
    """The threads of process ``pid`` (from /proc)."""
    return len(os.listdir(f"/proc/{pid}/task"))


def test_reloads_leave_no_logger_threads_in_the_master(runner: Runner, tmp_path: Path) -> None:
    """The master reads the configuration at start and on each SIGHUP, which builds the
    ``[logger.NAME]`` loggers (each with its writer thread) that only the workers use: the
    master must not keep one more thread per reload."""
    process, _, _ = start_workers(runner, write_config(tmp_path))
    before = thread_count(process.pid)
    for generation in range(2, 5):
        process.send_signal(signal.SIGHUP)
        done = f"reload done: configuration {generation} served by 2 workers"
        wait_until(in_stderr(process, done), f"{done!r}\n{process.describe()}")
    assert thread_count(process.pid) <= before, process.describe()
    assert process.stop() == 0


SCRIPT = """
from medusa.http import HTTPServer
from medusa.http.handlers import StatusHandler
from medusa.logging import FileLogger

workers = 2
access = FileLogger({log!r}, linger={linger})
servers = [
    HTTPServer(
        ("127.0.0.1", 0), root={root!r}, handlers=[StatusHandler("/status")], access_log=access
    )
]
"""


def test_a_script_logger_loses_no_line_when_the_workers_stop(
    runner: Runner, tmp_path: Path
) -> None:
    """A logger object a ``medusa run`` script passes to its server (as medusa-logging's
    README shows; not a ``[logger.NAME]``) writes the lines still queued when its worker
    stops, as it does at the exit of a single process. The writer lingers 2 s after each
    small batch, so the second line of each worker is still queued when the stop comes."""
    log = tmp_path / "access.log"
    (tmp_path / "site").mkdir()
    script = tmp_path / "start_medusa.py"
    script.write_text(SCRIPT.format(log=str(log), linger=2.0, root=str(tmp_path / "site")))
    process = runner.start("run", str(script))
    requests = Requests(process)
    wait_until(
        lambda: len(ready_workers(requests)) == 2, f"two ready workers\n{process.describe()}"
    )
    pids = ready_workers(requests)
    workers = [pids[1], pids[2]]
    for pid in workers:
        request_on(requests, pid, [w for w in workers if w != pid])
        request_on(requests, pid, [w for w in workers if w != pid])
    assert process.stop() == 0
    assert sorted(logged(log)) == sorted(requests.numbers()), process.describe()
