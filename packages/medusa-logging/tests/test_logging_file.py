"""The file logger on a real file system: appending, rotation by size and time, SIGHUP."""

from __future__ import annotations

import calendar
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import pytest

from medusa.core.log import access_logger, line_queue
from medusa.core.options import ConfigError
from medusa.core.testing import wait_until
from medusa.logging import Entry, FileLogger, Severity
from medusa.logging.file import next_rollover


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_appends_lines_in_order(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    path.write_text("kept\n")
    logger = FileLogger(path)
    try:
        for n in range(1000):
            logger.log(f"line {n}")
        assert logger.flush(10)
    finally:
        logger.close()
    assert _lines(path) == ["kept"] + [f"line {n}" for n in range(1000)]
    assert logger.stats()["written"] == 1000


def test_threads_logging_at_once_lose_nothing(tmp_path: Path) -> None:
    # log() appends without a lock; the writer must still see, write and count every
    # record, in each thread's order, while it sleeps, writes and waits in turn.
    path = tmp_path / "threads.log"
    logger = FileLogger(path, linger=0.001)
    per_thread, names = 5000, ["a", "b", "c", "d"]

    def produce(name: str) -> None:
        for n in range(per_thread):
            logger.log(f"{name} {n}")
            if n % 500 == 0:
                logger.flush(10)  # the writer goes idle now and then: the wake-up path

    threads = [threading.Thread(target=produce, args=(name,)) for name in names]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert logger.flush(10)
        stats = logger.stats()
    finally:
        logger.close()
    lines = _lines(path)
    assert len(lines) == per_thread * len(names)
    for name in names:
        assert [int(x.split()[1]) for x in lines if x[0] == name] == list(range(per_thread))
    assert stats["received"] == stats["written"] == per_thread * len(names)
    assert stats["dropped"] == stats["queued"] == 0


def test_plain_lines_and_entries_interleaved(tmp_path: Path) -> None:
    # Text lines queue log() messages bare and emit() entries as they are: one file, in order.
    path = tmp_path / "mixed.log"
    logger = FileLogger(path)
    try:
        for n in range(300):
            logger.log(f"plain {n}")
            logger.emit(Entry(f"entry {n}", Severity.ERR, 0.5))
        assert logger.flush(10)
    finally:
        logger.close()
    assert _lines(path) == [f"{kind} {n}" for n in range(300) for kind in ("plain", "entry")]


def test_json_lines_of_log_calls_carry_their_time(tmp_path: Path) -> None:
    path = tmp_path / "access.jsonl"
    logger = FileLogger(path, format="json")
    try:
        before = time.time()
        logger.log("GET / 200")
        after = time.time()
        assert logger.flush()
    finally:
        logger.close()
    (line,) = _lines(path)
    record = json.loads(line)
    assert record["message"] == "GET / 200"
    stamp: float = calendar.timegm(time.strptime(record["time"][:19], "%Y-%m-%dT%H:%M:%S"))
    stamp += float("0." + record["time"][20:26])  # RFC 3339 in UTC: ...:SS.ffffffZ
    assert int(before) <= stamp <= after + 1e-6


def test_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "app.jsonl"
    logger = FileLogger(path, format="json")
    try:
        logger.emit(Entry("hi\nthere", Severity.WARNING, 0.5, "app", {"x@32473": {"k": "v"}}))
        assert logger.flush()
    finally:
        logger.close()
    (line,) = _lines(path)
    record = json.loads(line)
    assert record["time"] == "1970-01-01T00:00:00.500000Z"
    assert (record["severity"], record["msgid"], record["message"]) == (
        "warning",
        "app",
        "hi\nthere",
    )
    assert record["data"] == {"x@32473": {"k": "v"}}
    assert record["pid"] == os.getpid()


def test_rotation_by_size_at_record_boundaries(tmp_path: Path) -> None:
    path = tmp_path / "size.log"
    logger = FileLogger(path, rotate_bytes=100, backups=2)
    try:
        for n in range(30):
            logger.log(f"record {n:03d}")  # 11 bytes with the newline: 9 per file
        assert logger.flush()
    finally:
        logger.close()
    current, one, two = _lines(path), _lines(Path(f"{path}.1")), _lines(Path(f"{path}.2"))
    assert current == [f"record {n:03d}" for n in range(27, 30)]
    assert one == [f"record {n:03d}" for n in range(18, 27)]
    assert two == [f"record {n:03d}" for n in range(9, 18)]
    assert not Path(f"{path}.3").exists()  # only 2 backups kept
    for p in (path, Path(f"{path}.1"), Path(f"{path}.2")):
        assert p.stat().st_size <= 100
    assert logger.rotations == 3


def test_rotation_by_time(tmp_path: Path) -> None:
    start = time.mktime((2026, 3, 1, 10, 30, 0, 0, 0, -1))
    now = [start]
    path = tmp_path / "hourly.log"
    logger = FileLogger(path, rotate_when="hourly", clock=lambda: now[0])
    try:
        logger.log("at 10:30")
        assert logger.flush()
        now[0] = start + 20 * 60  # 10:50, same hour
        logger.log("at 10:50")
        assert logger.flush()
        now[0] = start + 40 * 60  # 11:10
        logger.log("at 11:10")
        assert logger.flush()
    finally:
        logger.close()
    assert _lines(Path(f"{path}.1")) == ["at 10:30", "at 10:50"]
    assert _lines(path) == ["at 11:10"]


def test_two_processes_rotating_one_file_by_size(tmp_path: Path) -> None:
    """Two loggers appending to one file, as the workers of ``medusa serve --workers 2``
    do: the size counted is the file's (both writers' lines), the one that rotates moves
    the file and the other follows it instead of rotating again, so every backup stays
    under ``rotate_bytes`` and the kept files hold an unbroken tail of the lines. (Each
    used to count its own lines only: files of twice the size, and lines written into a
    file the other had already deleted as the oldest backup were lost.)"""
    path = tmp_path / "shared.log"
    first = FileLogger(path, rotate_bytes=100, backups=3)
    second = FileLogger(path, rotate_bytes=100, backups=3)
    try:
        for n in range(60):
            logger = first if n % 2 == 0 else second
            logger.log(f"record {n:03d}")  # 11 bytes with the newline: 9 per file
            assert logger.flush()
    finally:
        first.close()
        second.close()
    files = [Path(f"{path}.{k}") for k in (3, 2, 1)] + [path]
    kept = [line for p in files for line in _lines(p)]
    assert kept == [f"record {n:03d}" for n in range(60 - len(kept), 60)]
    assert len(kept) == 3 * 9 + 6  # three full backups and the current file
    for p in files:
        assert p.stat().st_size <= 100
    assert not Path(f"{path}.4").exists()
    assert first.rotations + second.rotations == 6


def test_two_processes_rotating_one_file_by_time(tmp_path: Path) -> None:
    """At the hour, the first of two loggers of one file to write rotates it; the other
    follows into the new file and does not rotate that one away to ``PATH.1``."""
    start = time.mktime((2026, 3, 1, 10, 30, 0, 0, 0, -1))
    now = [start]
    path = tmp_path / "hourly.log"
    first = FileLogger(path, rotate_when="hourly", clock=lambda: now[0])
    second = FileLogger(path, rotate_when="hourly", clock=lambda: now[0])
    try:
        for logger, text in ((first, "first 10:30"), (second, "second 10:30")):
            logger.log(text)
            assert logger.flush()
        now[0] = start + 40 * 60  # 11:10
        for logger, text in ((first, "first 11:10"), (second, "second 11:10")):
            logger.log(text)
            assert logger.flush()
        now[0] = start + 50 * 60  # 11:20
        second.log("second 11:20")
        assert second.flush()
    finally:
        first.close()
        second.close()
    assert _lines(Path(f"{path}.1")) == ["first 10:30", "second 10:30"]
    assert _lines(path) == ["first 11:10", "second 11:10", "second 11:20"]
    assert not Path(f"{path}.2").exists()
    assert (first.rotations, second.rotations) == (1, 0)


def test_next_rollover() -> None:
    t = time.mktime((2026, 3, 1, 10, 30, 5, 0, 0, -1))
    assert next_rollover(t, "hourly") == time.mktime((2026, 3, 1, 11, 0, 0, 0, 0, -1))
    assert next_rollover(t, "daily") == time.mktime((2026, 3, 2, 0, 0, 0, 0, 0, -1))
    assert next_rollover(t, "") == float("inf")


def test_sighup_reopens_after_logrotate_moved_the_file(tmp_path: Path) -> None:
    path = tmp_path / "rotated.log"
    logger = FileLogger(path)
    try:
        logger.log("before")
        assert logger.flush()
        os.rename(path, f"{path}.1")  # what logrotate does
        logger.log("still to the old file")
        assert logger.flush()
        os.kill(os.getpid(), signal.SIGHUP)
        wait_until(lambda: logger.counters.opens == 2, what="the reopen after SIGHUP")
        logger.log("after")
        assert logger.flush()
    finally:
        logger.close()
    assert _lines(Path(f"{path}.1")) == ["before", "still to the old file"]
    assert _lines(path) == ["after"]


def test_unwritable_file_keeps_records_then_writes_them(tmp_path: Path) -> None:
    directory = tmp_path / "later"
    path = directory / "app.log"
    logger = FileLogger(path, retry_min=0.01, retry_max=0.05, check_directory=False)
    try:
        logger.log("waiting for the directory")
        wait_until(lambda: logger.counters.errors > 0, what="the failed open")
        assert logger.queued == 1
        directory.mkdir()
        assert logger.flush(5)
    finally:
        logger.close()
    assert _lines(path) == ["waiting for the directory"]
    assert logger.counters.dropped == 0


def test_a_path_in_a_missing_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"the directory .*missing does not exist"):
        FileLogger(tmp_path / "missing" / "x.log")
    (tmp_path / "file").write_text("")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        FileLogger(tmp_path / "file" / "x.log")
    with pytest.raises(ConfigError, match=r"logger\.disk: path .*missing.* does not exist"):
        FileLogger.from_config(
            {"type": "file", "path": "missing/x.log"}, prefix="logger.disk", base_dir=str(tmp_path)
        )


def test_close_counts_what_could_not_be_written(tmp_path: Path) -> None:
    logger = FileLogger(
        tmp_path / "missing" / "x.log", retry_min=0.01, retry_max=0.02, check_directory=False
    )
    for n in range(5):
        logger.log(f"lost {n}")
    logger.close(timeout=0.2)
    assert logger.counters.dropped == 5
    logger.log("after close")
    assert logger.counters.dropped == 6


def test_core_access_log_captured_into_a_file(tmp_path: Path) -> None:
    """Core's default access log writes to the logging logger medusa.<proto>.access; a
    captured logger takes those lines."""
    path = tmp_path / "access.log"
    std = logging.getLogger("medusa.ftp.access")
    std.setLevel(logging.INFO)
    logger = FileLogger(path, capture=["medusa.ftp.access"], propagate=False)
    try:
        assert not std.propagate
        access_logger("ftp").log('127.0.0.1 - - "RETR x" 226 13')
        assert logger.flush()
    finally:
        logger.close()
        std.setLevel(logging.NOTSET)
    assert _lines(path) == ['127.0.0.1 - - "RETR x" 226 13']
    assert std.propagate  # restored by close()
    assert not std.handlers


def test_from_config(tmp_path: Path) -> None:
    logger = FileLogger.from_config(
        {"type": "file", "path": "rel.log", "rotate_bytes": 1000, "backups": 3, "format": "json"},
        base_dir=str(tmp_path),
    )
    try:
        assert isinstance(logger, FileLogger)
        assert logger.path == str(tmp_path / "rel.log")
        assert (logger.rotate_bytes, logger.backups) == (1000, 3)
    finally:
        logger.close()
    with pytest.raises(ConfigError, match=r"logger\.rotate_when: must be"):
        FileLogger.from_config({"path": "x", "rotate_when": "weekly"})
    with pytest.raises(ConfigError, match=r"unknown option"):
        FileLogger.from_config({"path": "x", "rotate": 1})
    with pytest.raises(ConfigError, match=r"needs backups"):
        FileLogger.from_config({"path": "x", "rotate_bytes": 10, "backups": 0})


def test_a_line_is_queued_without_another_python_call(tmp_path: Path) -> None:
    """An access line's path on the event loop (issue 15): ``log()`` appends to the queue
    itself; another Python function runs only to wake a writer that sleeps for want of
    lines."""
    logger = FileLogger(tmp_path / "access.log", reopen_on_sighup=False)
    names: list[str] = []

    def profile(frame: FrameType, event: str, arg: object) -> None:
        if event == "call":  # Python functions only
            names.append(frame.f_code.co_name)

    try:
        sys.setprofile(profile)
        try:
            logger.log("one line")
        finally:
            sys.setprofile(None)
        assert names[:1] == ["log"]
        assert names[1:2] in ([], ["wake_writer"]), names
        assert logger.flush(30)
    finally:
        logger.close()
    assert (tmp_path / "access.log").read_text() == "one line\n"


def test_plain_text_files_let_a_server_queue_lines_itself(tmp_path: Path) -> None:
    """A text file logger answers :func:`medusa.core.log.line_queue` with itself and no
    prefix (an access log then appends its lines to the queue directly, issue 15); a JSON
    one, whose records carry their time, does not. Lines appended so are written as
    ``log()`` would have."""
    text = FileLogger(tmp_path / "access.log", reopen_on_sighup=False)
    timed = FileLogger(tmp_path / "access.json", format="json", reopen_on_sighup=False)
    try:
        assert line_queue(text, 1_800_000_000) == ("", text)
        assert line_queue(timed, 1_800_000_000) is None
        route = line_queue(text, 1_800_000_000)
        assert route is not None
        route[1].put(route[0] + "appended directly")
        text.log("through log()")
        assert text.flush(30)
    finally:
        text.close()
        timed.close()
    assert (tmp_path / "access.log").read_text() == "appended directly\nthrough log()\n"
