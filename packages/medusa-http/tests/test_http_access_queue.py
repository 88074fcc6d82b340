"""The access log's direct path (issue 15, part 1: the default access log at most 15 % of
a hello request's CPU): when the access logger takes plain lines into a queue (core's
console, medusa-logging's text files; :func:`medusa.core.log.line_queue`), the server makes
the usual line with one f-string and appends it to the queue itself. Counted, not timed:
the line is made by compiled code (``AccessLog.log``, mypyc), in which no Python function
runs but the writer's wake-up. Every other line (a user, a target
that needs escaping, no request line) takes the long way, to the same queue, in the same
format."""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest

from medusa.core.console import ConsoleLog, ConsoleLogger
from medusa.core.testing import ServerThread, wait_until
from medusa.http import HTTPServer
from medusa.http.request import Request

BACKENDS = ["asyncio", "uvloop"]
TIMEOUT = 10.0
NAME = "medusa.test.access"
LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d medusa\.test\.access INFO "
    r"(127\.0\.0\.1 - (\S+) \[\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d [+-]\d{4}\] (.*))$"
)


class Hello:
    """Answers every request with 13 bytes; ``/user`` sets an access-log user first."""

    def match(self, request: Request) -> bool:
        return True

    def handle_request(self, request: Request) -> None:
        if request.path == "/user":
            request.user = 'al"ice'
        request.respond(200, b"Hello, World!", content_type="text/plain")


class Pipe:
    """A pipe whose write end is the console's descriptor; the test reads what came."""

    def __init__(self) -> None:
        self.read_end, self.write_end = os.pipe()
        os.set_blocking(self.read_end, False)
        self.text = ""

    def lines(self) -> list[str]:
        try:
            while chunk := os.read(self.read_end, 65536):
                self.text += chunk.decode()
        except BlockingIOError:
            pass
        return self.text.splitlines()

    def close(self) -> None:
        os.close(self.read_end)
        os.close(self.write_end)


@pytest.fixture
def pipe() -> Iterator[Pipe]:
    """The pipe, with INFO lines of the test's logger name enabled."""
    logger = logging.getLogger(NAME)
    level = logger.level
    logger.setLevel(logging.INFO)
    made = Pipe()
    yield made
    made.close()
    logger.setLevel(level)


def exchange(sock: socket.socket, request: bytes) -> bytes:
    """Send ``request`` and read its response head and 13-byte body (or a 400 to the end)."""
    sock.sendall(request)
    data = b""
    while not (b"\r\n\r\n" in data and data.endswith((b"Hello, World!", b"\n"))):
        piece = sock.recv(65536)
        if not piece:
            break
        data += piece
    return data


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_hello_line_is_queued_by_compiled_code_alone(pipe: Pipe, backend: str) -> None:
    console = ConsoleLog(pipe.write_end)
    server = HTTPServer(
        ("127.0.0.1", 0), handlers=[Hello()], access_log=ConsoleLogger(NAME, console)
    )
    inside: list[str] = []
    entered = 0
    depth = 0

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        nonlocal depth, entered
        if event == "c_call" and getattr(arg, "__qualname__", "") == "AccessLog.log":
            entered += 1
            depth += 1
        elif event == "c_return" and depth and getattr(arg, "__qualname__", "") == "AccessLog.log":
            depth -= 1
        elif event == "call" and depth:
            inside.append(frame.f_code.co_name)

    request = b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n"
    try:
        with (
            ServerThread([server], backend=backend) as thread,
            socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock,
        ):
            for _ in range(3):  # the target remembered as plain, the second's route made
                assert exchange(sock, request).endswith(b"Hello, World!")
            profiled = 0
            while profiled < 10:  # until a response falls within one second (no new route)
                profiled += 1
                inside.clear()
                entered = 0
                thread.call(lambda: sys.setprofile(profile))
                try:
                    assert exchange(sock, request).endswith(b"Hello, World!")
                finally:
                    thread.call(lambda: sys.setprofile(None))
                if "line_queue" not in inside:  # core's: called when a new second's route is made
                    break
        # The line is made and queued in compiled code; a Python call only to wake a
        # sleeping writer.
        assert entered == 1, entered
        assert inside in ([], ["wake_writer"]), inside
        assert console.flush(30)
    finally:
        console.close()
    lines = pipe.lines()
    assert len(lines) == 3 + profiled
    for line in lines:
        match = LINE.match(line)
        assert match is not None, line
        assert match.group(3) == '"GET /hello.txt HTTP/1.1" 200 13', line


def test_every_other_line_goes_to_the_same_queue_in_the_same_format(pipe: Pipe) -> None:
    """A user, a target that needs escaping and a request without a request line take the
    long way (common_log_line), then the same queue: in order, each line whole."""
    console = ConsoleLog(pipe.write_end)
    server = HTTPServer(
        ("127.0.0.1", 0), handlers=[Hello()], access_log=ConsoleLogger(NAME, console)
    )
    try:
        with ServerThread([server]):
            with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
                for target in (b"/a", b"/user", b"/a\\b", b"/a"):
                    head = b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n"
                    assert exchange(sock, head).endswith(b"Hello, World!")
            with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as sock:
                assert exchange(sock, b"\x01garbage\r\n\r\n").startswith(b"HTTP/1.1 400 ")
            wait_until(lambda: len(pipe.lines()) >= 5, TIMEOUT, "five access lines")
    finally:
        console.close()
    fields = [LINE.match(line) for line in pipe.lines()]
    assert all(fields), pipe.text
    users_requests = [(m.group(2), m.group(3)) for m in fields if m]
    assert users_requests[:4] == [
        ("-", '"GET /a HTTP/1.1" 200 13'),
        ('al\\"ice', '"GET /user HTTP/1.1" 200 13'),
        ("-", '"GET /a\\\\b HTTP/1.1" 200 13'),
        ("-", '"GET /a HTTP/1.1" 200 13'),
    ]
    assert users_requests[4][0] == "-"
    assert re.fullmatch(r'"-" 400 \d+', users_requests[4][1]), users_requests[4]
