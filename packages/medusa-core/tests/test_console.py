"""Core's console log: lines to a descriptor through a bounded queue and a writer thread,
with real pipes (no mocks): the format, drops counted and reported when nobody reads, the
route that skips :mod:`logging`, and a forked child's own writer."""

from __future__ import annotations

import fcntl
import logging
import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType

import pytest

from medusa.core.console import ConsoleHandler, ConsoleLog, ConsoleLogger, line_prefix
from medusa.core.log import line_queue

LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (\S+) ([A-Z]+) (.*)$")
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


@pytest.fixture(autouse=True)
def info_level() -> Iterator[None]:
    """The test loggers let INFO lines through (the root's level under pytest is WARNING)."""
    logger = logging.getLogger("medusa.test")
    level = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(level)


def small_pipe() -> tuple[int, int]:
    """A pipe that holds one page (4096 bytes), so that it fills after a few lines."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, F_SETPIPE_SZ, 4096)
    return read_end, write_end


def read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks).decode()


def test_lines_have_time_name_level_and_message() -> None:
    read_end, write_end = os.pipe()
    console = ConsoleLog(write_end)
    ConsoleLogger("medusa.test.access", console).log('127.0.0.1 - - "GET / HTTP/1.1" 200 5')
    handler = ConsoleHandler(console)
    record = logging.LogRecord("medusa.test", logging.WARNING, __file__, 1, "a %s", ("b",), None)
    handler.handle(record)
    assert console.flush(30)
    console.close()
    os.close(write_end)
    lines = read_all(read_end).splitlines()
    parsed = [LINE.match(line) for line in lines]
    assert all(parsed), lines
    assert [m.groups() for m in parsed if m] == [
        ("medusa.test.access", "INFO", '127.0.0.1 - - "GET / HTTP/1.1" 200 5'),
        ("medusa.test", "WARNING", "a b"),
    ]


def test_a_traceback_is_written_under_its_line() -> None:
    read_end, write_end = os.pipe()
    console = ConsoleLog(write_end)
    try:
        raise ValueError("broken")
    except ValueError:
        record = logging.LogRecord(
            "medusa", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    ConsoleHandler(console).handle(record)
    console.close()
    os.close(write_end)
    text = read_all(read_end)
    assert LINE.match(text.splitlines()[0])
    assert "Traceback (most recent call last)" in text
    assert text.rstrip().endswith("ValueError: broken")


def test_an_unread_pipe_never_blocks_and_drops_are_counted_then_reported() -> None:
    read_end, write_end = small_pipe()
    console = ConsoleLog(write_end, buffer=100)
    logger = ConsoleLogger("medusa.test.access", console)
    total = 2000
    for number in range(total):  # returns although nobody reads: put() never blocks
        logger.log(f"line {number}")
    dropped = console.stats()["dropped"]
    assert dropped > 0
    reader_text: list[str] = []
    reader = threading.Thread(target=lambda: reader_text.append(read_all(read_end)))
    reader.start()  # the pipe drains: what was queued is written, and the notice
    assert console.flush(60)
    logger.log("after the drain")
    assert console.flush(60)
    console.close()
    os.close(write_end)
    reader.join(60)
    lines = [LINE.match(line) for line in reader_text[0].splitlines()]
    assert all(lines)
    messages = [m.group(3) for m in lines if m]
    written = [text for text in messages if text.startswith("line ")]
    notices = [text for text in messages if "log lines dropped" in text]
    reported = sum(int(text.split()[0]) for text in notices)
    assert reported == dropped == console.stats()["dropped"]
    assert len(written) + dropped == total  # every line written or counted, none lost silently
    assert written == sorted(written, key=lambda text: int(text.split()[1]))  # in order
    assert messages[-1] == "after the drain"


def test_a_closed_pipe_keeps_lines_queued_and_counts_errors() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)  # EPIPE (Python ignores SIGPIPE)
    console = ConsoleLog(write_end, buffer=10, retry_min=0.01, retry_max=0.01)
    logger = ConsoleLogger("medusa.test.access", console)
    for number in range(50):
        logger.log(f"line {number}")
    console.close(timeout=0.05)
    os.close(write_end)
    stats = console.stats()
    assert stats["errors"] >= 1
    assert stats["written"] == 0
    assert stats["dropped"] == 50


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a new interpreter (the console is process-wide state); its
    standard error is a pipe this test reads."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )


def test_default_loggers_skip_logging_only_when_the_console_is_their_only_destination() -> None:
    done = run_python(
        """
        import logging
        from medusa.core.console import install_console
        from medusa.core.log import default_logger, access_logger

        install_console(logging.INFO)
        print(type(access_logger("http")).__name__)
        access_logger("http").log("direct line")
        logging.getLogger("medusa.ftp.xferlog").addHandler(logging.NullHandler())
        print(type(default_logger("medusa.ftp.xferlog")).__name__)
        logging.getLogger("medusa").propagate = False
        print(type(default_logger("medusa.monitor.audit")).__name__)
        logging.getLogger("medusa").propagate = True
        logging.getLogger("medusa.chat").warning("through %s", "logging")
        logging.getLogger("medusa.http.access").setLevel(logging.WARNING)
        print(access_logger("http").enabled)
        access_logger("http").log("silenced")
        """
    )
    assert done.stdout.split() == ["ConsoleLogger", "StdlibLogger", "StdlibLogger", "False"]
    lines = [LINE.match(line) for line in done.stderr.splitlines()]
    assert [m.groups() for m in lines if m] == [
        ("medusa.http.access", "INFO", "direct line"),
        ("medusa.chat", "WARNING", "through logging"),
    ]


def test_a_forked_child_writes_its_own_lines_and_not_the_parents_queue() -> None:
    done = run_python(
        """
        import logging, os
        from medusa.core.console import install_console
        from medusa.core.log import access_logger

        console = install_console(logging.INFO)
        log = access_logger("http")
        log.log("parent before fork")
        pid = os.fork()
        if pid == 0:
            log.log("child")
            console.close()
            os._exit(0)
        os.waitpid(pid, 0)
        log.log("parent after fork")
        """
    )
    messages = sorted(m.group(3) for m in map(LINE.match, done.stderr.splitlines()) if m)
    assert messages == ["child", "parent after fork", "parent before fork"]


def calls_made(action: Callable[[], object]) -> list[str]:
    """The functions ``action`` calls, Python and C, by name, as :func:`sys.setprofile`
    reports them (no timing: what the code does, counted)."""
    names: list[str] = []

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call":
            names.append(frame.f_code.co_name)
        elif event == "c_call":
            names.append(getattr(arg, "__name__", "?"))

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return [name for name in names if name != "setprofile"]


def test_an_access_line_is_one_call_a_clock_read_and_an_append() -> None:
    """The default access log's path on the event loop (every response): the console
    logger's ``log`` reads the clock and appends the whole line to the queue itself: no
    other Python function, and a lock only to wake a writer that sleeps for want of lines
    (issue 15: at most 15 % of a hello request's CPU for the access log)."""
    read_end, write_end = os.pipe()
    console = ConsoleLog(write_end)
    logger = ConsoleLogger("medusa.test.access", console)
    try:
        for _ in range(10):  # until one line is logged within one second (no new prefix)
            second = int(time.time())
            logger.log("first")
            calls = calls_made(lambda: logger.log('127.0.0.1 - - "GET / HTTP/1.1" 200 5'))
            if int(time.time()) == second:
                break
        assert calls[:5] == ["<lambda>", "log", "time", "len", "append"]
        # Then, only when the writer slept for want of lines: waking it.
        assert calls[5:6] in ([], ["wake_writer"]), calls
        assert console.flush(30)
    finally:
        console.close()
        os.close(write_end)
    lines = read_all(read_end).splitlines()
    assert [LINE.match(line).group(3) for line in lines[-1:]] == [  # type: ignore[union-attr]
        '127.0.0.1 - - "GET / HTTP/1.1" 200 5'
    ]


def test_a_console_logger_hands_out_its_queue_and_prefix_for_a_second() -> None:
    """:func:`medusa.core.log.line_queue` of a console logger: the prefix its own lines get
    in that second and the console queue (a server's access log appends whole lines to it
    itself, issue 15); None while the logger's level drops INFO lines."""
    read_end, write_end = os.pipe()
    console = ConsoleLog(write_end)
    name = "medusa.test.route"
    logging.getLogger(name).setLevel(logging.INFO)
    logger = ConsoleLogger(name, console)
    try:
        second = 1_800_000_000
        assert line_queue(logger, second) == (line_prefix(second, name, "INFO"), console)
        logging.getLogger(name).setLevel(logging.WARNING)
        assert line_queue(logger, second) is None
    finally:
        logging.getLogger(name).setLevel(logging.NOTSET)
        console.close()
        os.close(write_end)
        os.close(read_end)
