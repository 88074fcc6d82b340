"""The ASGI hello path's work per request (issue 17's speed target), counted rather than
timed, and what its shortcuts must keep: the bytecode instructions that
:mod:`medusa.http.asgi`, :mod:`~medusa.http.asgicycle` and :mod:`~medusa.http.asgiscope`
execute to answer a keep-alive GET from a raw application, the request's own named task,
the remembered encoding of header lists, and the scope keys a connection's requests
share.

Instructions per request under callgrind are measured by ``bench/app_bench.py
instructions``; this test keeps the Python work of the ASGI modules from creeping back
(564 bytecodes per request of http.client's three header fields before the header lists'
encoding was remembered and a connection's scope keys made once; 475 after)."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from medusa.core.testing import ServerThread, loop_backends, wait_until
from medusa.http import HTTPServer
from medusa.http.asgi import TASK_NAME, ASGIHandler, ProtocolError
from medusa.http.asgicycle import FIELDS_CACHE_BYTES, FIELDS_CACHE_SIZE, encode_fields

REQUESTS = 50
ASGI_MODULES = ("/medusa/http/asgi.py", "/medusa/http/asgicycle.py", "/medusa/http/asgiscope.py")
MAX_BYTECODES_PER_REQUEST = 500
TIMEOUT = 10.0
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"13")],
}
BODY = {"type": "http.response.body", "body": b"Hello, World!"}


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send(START)
    await send(BODY)


@pytest.mark.parametrize("backend", loop_backends())
def test_asgi_hello_bytecodes(backend: str) -> None:
    handler = ASGIHandler(hello, lifespan=False)
    server = HTTPServer(("127.0.0.1", 0), handlers=[handler], access_log=None)
    executed = 0

    def opcodes(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal executed
        if event == "opcode":
            executed += 1
        return opcodes

    def trace(frame: FrameType, event: str, arg: Any) -> Any:
        name = frame.f_code.co_filename
        if name.endswith(ASGI_MODULES):
            frame.f_trace_opcodes = True
            return opcodes
        return None

    with ServerThread([server], backend=backend) as thread:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)

        def get() -> None:
            conn.request("GET", "/hello", headers={"User-Agent": "test"})
            response = conn.getresponse()
            assert response.status == 200
            assert response.read() == b"Hello, World!"

        for _ in range(3):  # the connection's scope keys made, the header list's encoding
            get()
        thread.call(lambda: sys.settrace(trace))
        try:
            for _ in range(REQUESTS):
                get()
        finally:
            thread.call(lambda: sys.settrace(None))
            conn.close()
    assert executed / REQUESTS <= MAX_BYTECODES_PER_REQUEST, executed / REQUESTS


class Seen:
    """What the application saw of each request: its task, its task's name, its scope."""

    def __init__(self) -> None:
        self.tasks: list[asyncio.Task[Any] | None] = []
        self.names: list[str] = []
        self.scopes: list[dict[str, Any]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        task = asyncio.current_task()
        self.tasks.append(task)
        self.names.append(task.get_name() if task is not None else "")
        self.scopes.append(scope)
        await asyncio.sleep(0)  # the task goes on after a turn of the loop
        await self.respond(scope, receive, send)

    async def respond(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send(START)
        await send(BODY)


@pytest.fixture(params=loop_backends())
def seen(request: pytest.FixtureRequest) -> Iterator[tuple[Seen, HTTPServer]]:
    app = Seen()
    server = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[
            ASGIHandler(app, prefix="/api", lifespan=False),
            ASGIHandler(app, lifespan=False),
        ],
        access_log=None,
        proxy_headers=True,
        proxy_trusted=["127.0.0.1/32"],
    )
    with ServerThread([server], backend=request.param):
        yield app, server


def test_each_request_runs_in_its_own_named_task(seen: tuple[Seen, HTTPServer]) -> None:
    app, server = seen
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    for _ in range(3):
        conn.request("GET", "/hello")
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == b"Hello, World!"
    conn.close()
    assert all(task is not None for task in app.tasks)
    assert len({id(task) for task in app.tasks}) == 3
    assert app.names == [TASK_NAME] * 3


def test_scope_keys_of_a_connection(seen: tuple[Seen, HTTPServer]) -> None:
    """The scheme, client and server a connection's scopes share, made once, give way to
    what a trusted proxy says for one request; each prefix keeps its root path."""
    app, server = seen
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    requests: list[tuple[str, dict[str, str]]] = [
        ("/hello", {}),
        ("/hello", {"X-Forwarded-For": "192.0.2.7", "X-Forwarded-Proto": "https"}),
        ("/api/hello", {}),
        ("/hello", {}),
    ]
    for path, headers in requests:
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == b"Hello, World!"
    port = conn.sock.getsockname()[1]
    conn.close()
    direct, proxied, prefixed, again = app.scopes
    for scope in (direct, prefixed, again):
        assert scope["client"] == ("127.0.0.1", port)
        assert scope["scheme"] == "http"
        assert scope["server"] == ("127.0.0.1", server.port)
    assert proxied["client"] is not None
    assert proxied["client"][0] == "192.0.2.7"
    assert proxied["scheme"] == "https"
    assert proxied["server"] == ("127.0.0.1", server.port)
    assert [scope["root_path"] for scope in app.scopes] == ["", "", "/api", ""]
    assert [scope["path"] for scope in app.scopes] == ["/hello", "/hello", "/api/hello", "/hello"]
    assert len({id(scope) for scope in app.scopes}) == 4
    assert len({id(scope["headers"]) for scope in app.scopes}) == 4


def test_a_plain_response_sets_no_instance_attribute(seen: tuple[Seen, HTTPServer]) -> None:
    """A request's cycle stores what every response sets in slots: a response of one body
    makes no instance dict (making one costs about 1,400 instructions per request)."""
    app, server = seen
    cycles: list[Any] = []

    async def keep(scope: dict[str, Any], receive: Any, send: Any) -> None:
        cycles.append(send.__self__)
        await send(START)
        await send(BODY)

    app.respond = keep  # type: ignore[method-assign]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    conn.request("GET", "/hello")
    response = conn.getresponse()
    assert response.read() == b"Hello, World!"
    conn.close()
    [cycle] = cycles
    assert vars(cycle) == {}


def test_header_names_are_remembered(seen: tuple[Seen, HTTPServer]) -> None:
    """The bytes of a header field name are made once (a lookup costs half an encoding);
    names longer than 64 characters are encoded each time."""
    app, server = seen
    long_name = "X-" + "n" * 70
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT)
    for _ in range(2):
        conn.request("GET", "/hello", headers={"X-Custom": "1", long_name: "2"})
        response = conn.getresponse()
        assert response.read() == b"Hello, World!"
    conn.close()
    first, second = (dict(scope["headers"]) for scope in app.scopes)
    assert first == second
    assert first[b"x-custom"] == b"1"
    assert first[long_name.lower().encode()] == b"2"
    same = {name: any(name is other for other in second) for name in first}
    assert same == {name: len(name) <= 64 for name in first}


MARKED_SERVER = textwrap.dedent(
    """
    import os
    import sys

    from medusa.core import run
    from medusa.http import HTTPServer
    from medusa.http.asgi import ASGIHandler

    async def app(scope, receive, send):
        if scope["path"] == "/mark":
            os.getppid()  # a mark in the trace
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"Hello, World!"})

    server = HTTPServer(
        ("127.0.0.1", 0), handlers=[ASGIHandler(app, lifespan=False)], access_log=None
    )
    run([server], backend=sys.argv[1])
    """
)


@pytest.mark.parametrize("backend", loop_backends())
def test_no_system_call_per_request_to_find_the_loop(tmp_path: Path, backend: str) -> None:
    """Python 3.11's ``asyncio.get_running_loop()`` makes a ``getpid`` system call: the
    loop is asked once per connection, not once per request."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (apt-get install strace)")
    trace = tmp_path / "trace.txt"
    argv = [strace, "-f", "-qq", "-e", "trace=getpid,getppid", "-o", str(trace)]
    process = subprocess.Popen(
        [*argv, sys.executable, "-c", MARKED_SERVER, backend],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # strace and the server in a process group of their own
    )
    assert process.stdout is not None
    try:
        deadline = time.monotonic() + TIMEOUT
        port = None
        while port is None and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if "not permitted" in line:
                pytest.skip("strace may not trace processes here (ptrace)")
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)/", line)
            port = int(found.group(1)) if found else None
        assert port is not None, "the server did not start"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
        for path in ["/hello", "/mark"] + ["/hello"] * REQUESTS + ["/mark"]:
            conn.request("GET", path)
            response = conn.getresponse()
            assert response.read() == b"Hello, World!"
        conn.close()
    finally:
        # To the group: SIGTERM to strace alone would let it detach and leave the server
        # running after the test.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        process.stdout.close()
        outlived = False
        try:
            wait_until(lambda: not _live_members(process.pid), TIMEOUT, "strace's group to end")
        except TimeoutError:
            outlived = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        assert not outlived, "the server outlived the test"
    calls = re.findall(r"^\d+\s+(getpid|getppid)\(", trace.read_text(), re.MULTILINE)
    first = calls.index("getppid")
    between = calls[first + 1 : first + 1 + calls[first + 1 :].index("getppid")]
    assert between.count("getpid") < REQUESTS // 2, between.count("getpid")


def _live_members(group: int) -> list[int]:
    """The processes of process group ``group`` that still run (not zombies), from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[2]) == group and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def test_encode_fields_remembers_header_lists() -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
    first = encode_fields(headers)
    assert first == (b"content-type: text/plain\r\n", 13, False)
    assert encode_fields(list(headers)) is first  # an equal list: remembered
    assert encode_fields(iter(headers)) is first  # any iterable of hashable pairs
    # Unhashable pairs (lists) and bytearrays are encoded each time, as before.
    assert encode_fields([[b"x-a", b"1"], [b"connection", b"close"]]) == (b"x-a: 1\r\n", None, True)
    assert encode_fields([(b"x-a", bytearray(b"1"))]) == (b"x-a: 1\r\n", None, False)
    # Malformed lists are refused every time, whatever was remembered before.
    for bad in (
        [(b"x-a", b"1\r\nx-b: 2")],
        [(b"content-length", b"12x")],
        [(b"", b"1")],
        [("x-a", "1")],
        [(b"x-a", b"1", b"2")],
    ):
        for _ in range(2):
            with pytest.raises(ProtocolError):
                encode_fields(bad)


def test_encode_fields_remembers_a_bounded_number() -> None:
    big = [(b"x-big", b"v" * FIELDS_CACHE_BYTES)]
    assert encode_fields(big) is not encode_fields(big)  # too large to keep
    kept = encode_fields([(b"x-kept", b"1")])
    assert encode_fields([(b"x-kept", b"1")]) is kept
    for number in range(FIELDS_CACHE_SIZE):  # fills the cache: it starts again
        encode_fields([(b"x-n", b"%d" % number)])
    assert encode_fields([(b"x-kept", b"1")]) is not kept
    assert encode_fields([(b"x-kept", b"1")]) == kept
