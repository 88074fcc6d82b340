"""A real Redis for the end-to-end tests of medusa-chat's bus (Debian's ``redis-server``
7): started on 127.0.0.1 at a port of its own with no persistence (``--save ''``,
``--appendonly no``) in a temporary directory, stopped by its PID (SIGTERM, SIGKILL after
a bounded wait), and started again at the same port (empty) for the tests of a Redis
restart. A test that uses it skips with ``apt-get install redis-server`` when it is
missing.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import free_port_range

from medusa.core.testing import require_tool, stop_process

__all__ = ["RedisServer", "redis_server"]

START_TIMEOUT = 15.0
"""Seconds redis-server gets to answer PING."""


class RedisServer:
    """One ``redis-server`` process the test owns.

    Args:
        directory: its working directory (and log file).
        port: the TCP port on 127.0.0.1 (0: a free one).
    """

    def __init__(self, directory: Path, port: int = 0) -> None:
        self.program = require_tool("redis-server", "apt-get install redis-server")
        self.directory = directory
        self.port = port or free_port_range(1)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        """Start it and wait until it answers PING (fails after :data:`START_TIMEOUT`)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                self.program,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                "--daemonize",
                "no",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.directory,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = (self.directory / "redis.log").read_text("utf-8", "replace")
                self.stop()
                raise AssertionError(f"redis-server did not start:\n{output[-3000:]}")
            time.sleep(0.02)
        return self

    def ping(self) -> bool:
        """True when the server answers ``PING`` with ``+PONG``."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        """Run one command (RESP array of bulk strings) and return the raw reply."""
        parts = [f"*{len(args)}\r\n".encode()]
        for arg in args:
            data = arg.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
        with socket.create_connection(("127.0.0.1", self.port), timeout=5.0) as sock:
            sock.sendall(b"".join(parts))
            return sock.recv(65536)

    def stop(self) -> None:
        """Stop it (SIGTERM, then SIGKILL after 5 s) by its PID."""
        process, self.process = self.process, None
        if process is not None:
            stop_process(process)


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    """A started :class:`RedisServer`, stopped on exit."""
    server = RedisServer(directory).start()
    try:
        yield server
    finally:
        server.stop()
