"""System calls per response on the file handler's zero-copy path, counted with strace
(issue 15): a large file on a keep-alive connection costs its open, the confinement check
(``readlink`` of ``/proc/self/fd/N``), one ``fstat``, ``TCP_CORK`` on and off, ``sendfile``
and ``close``; no ``getsockname`` (uvloop's transport socket made one per ``setsockopt``)
and no second ``fstat`` (``open()`` on the descriptor made one)."""

from __future__ import annotations

import collections
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

BACKENDS = ["asyncio", "uvloop"]
SIZE = 1 << 20
RESPONSES = 3
DEADLINE = 20.0

SERVER = textwrap.dedent(
    """
    import sys
    from medusa.core import run
    from medusa.http import HTTPServer

    server = HTTPServer(("127.0.0.1", 0), root=sys.argv[1], access_log=None)
    run([server], backend=sys.argv[2])
    """
)


def _read_line(stream: object, pattern: str, deadline: float) -> re.Match[str]:
    """The first line of ``stream`` (a text pipe) matching ``pattern``, before ``deadline``."""
    assert hasattr(stream, "readline")
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        match = re.search(pattern, line)
        if match is not None:
            return match
    raise AssertionError(f"no line matching {pattern!r}")


@pytest.fixture
def strace() -> str:
    path = shutil.which("strace")
    if path is None:
        pytest.skip("strace is not installed (apt-get install strace)")
    return path


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A medusa-http server process serving ``tmp_path``: ``(pid, port)``."""
    (tmp_path / "big.bin").write_bytes(os.urandom(SIZE))
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(tmp_path), request.param],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        found = _read_line(process.stdout, r"listening on http://127\.0\.0\.1:(\d+)/",
                           time.monotonic() + DEADLINE)  # fmt: skip
        yield process.pid, int(found.group(1))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(DEADLINE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


def _get(connection: http.client.HTTPConnection) -> None:
    connection.request("GET", "/big.bin")
    response = connection.getresponse()
    assert response.status == 200
    assert len(response.read()) == SIZE
    assert response.getheader("Connection") is None  # the connection stays open


def _count_calls(
    strace: str, pid: int, calls: str, trace: Path, action: Callable[[], None]
) -> collections.Counter[str]:
    """Run ``action`` with strace attached to ``pid`` (tracing ``calls``, a comma-separated
    list); return how many times each was made (skips where strace may not attach)."""
    tracer = subprocess.Popen(
        [strace, "-f", "-p", str(pid), "-e", f"trace={calls}", "-o", str(trace)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        attached = _read_line(tracer.stderr, r"attached|Operation not permitted",
                              time.monotonic() + DEADLINE)  # fmt: skip
        if "not permitted" in attached.group(0):
            pytest.skip("strace may not attach to a process here (ptrace)")
        action()
    finally:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(DEADLINE)
        assert tracer.stderr is not None
        tracer.stderr.close()
    return collections.Counter(
        match.group(1)
        for line in trace.read_text().splitlines()
        if (match := re.match(r"\d+\s+(\w+)\(", line)) is not None
    )


def test_large_file_response_system_calls(
    server: tuple[int, int], strace: str, tmp_path: Path
) -> None:
    pid, port = server
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)
    try:
        _get(connection)  # the connection's first large file: what is made once is made
        calls = "getsockname,fstat,newfstatat,statx,setsockopt,readlink,openat,sendfile"

        def responses() -> None:
            for _ in range(RESPONSES):
                _get(connection)

        counts = _count_calls(strace, pid, calls, tmp_path / "trace.txt", responses)
    finally:
        connection.close()
    fstats = counts["fstat"] + counts["newfstatat"] + counts["statx"]
    assert counts["openat"] == RESPONSES, counts
    assert counts["sendfile"] >= RESPONSES, counts
    assert counts["getsockname"] == 0, counts
    assert fstats == RESPONSES, counts
    assert counts["readlink"] <= RESPONSES, counts  # the confinement check
    assert counts["setsockopt"] <= 2 * RESPONSES, counts  # TCP_CORK on and off


def test_cached_small_file_responses_make_no_stat(
    server: tuple[int, int], strace: str, tmp_path: Path
) -> None:
    """A small file served from the cache is not checked with ``stat`` per response: inotify
    reports its changes (medusa.http.filewatch), and a ``poll`` asks whether one waits."""
    pid, port = server
    (tmp_path / "small.txt").write_bytes(b"Hello, World!")
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=DEADLINE)

    def get_small() -> None:
        connection.request("GET", "/small.txt")
        response = connection.getresponse()
        assert response.status == 200
        assert response.read() == b"Hello, World!"

    try:
        get_small()  # read, cached and watched

        def responses() -> None:
            for _ in range(RESPONSES):
                get_small()

        calls = "newfstatat,statx,stat,poll,ppoll"
        counts = _count_calls(strace, pid, calls, tmp_path / "trace.txt", responses)
    finally:
        connection.close()
    assert counts["newfstatat"] + counts["statx"] + counts["stat"] == 0, counts
    assert counts["poll"] + counts["ppoll"] >= RESPONSES, counts


PIPELINED = 40


def test_cached_small_file_asks_inotify_once_per_loop_turn(
    server: tuple[int, int], strace: str, tmp_path: Path
) -> None:
    """Pipelined requests answered in one turn of the event loop make one ``poll`` for
    the cache's change reports, not one each (medusa.http.filewatch)."""
    pid, port = server
    (tmp_path / "small.txt").write_bytes(b"Hello, World!")
    request = b"GET /small.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
        answers = bytearray()

        def exchange(count: int) -> None:
            answers.clear()
            sock.sendall(request * count)
            while answers.count(b"Hello, World!") < count:
                data = sock.recv(65536)
                assert data, "the connection closed"
                answers.extend(data)
            assert answers.count(b"HTTP/1.1 200 OK\r\n") == count, bytes(answers)

        exchange(1)  # read, cached and watched
        counts = _count_calls(
            strace, pid, "poll,ppoll,read,recvfrom", tmp_path / "trace.txt",
            lambda: exchange(PIPELINED),
        )  # fmt: skip
    reads = counts["read"] + counts["recvfrom"]
    # One poll per turn that answered from the cache: at most one per read (the 40
    # requests, 1.7 KB, usually arrive in one read).
    polls = counts["poll"] + counts["ppoll"]
    assert 1 <= polls <= reads, counts
    assert polls <= PIPELINED // 4, counts  # 40 without the per-turn rule
