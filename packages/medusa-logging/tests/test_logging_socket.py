"""The socket logger and the multi logger against real listeners on 127.0.0.1 and a Unix
socket; the syslog logger on a Unix datagram socket standing in for /dev/log."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from medusa.core.options import ConfigError
from medusa.core.testing import wait_until
from medusa.logging import FileLogger, MultiLogger, SocketLogger, SyslogLogger, logger_from_config


class LineListener:
    """A stream listener that collects the lines it receives (a log collector)."""

    def __init__(
        self, family: int = socket.AF_INET, address: tuple[str, int] | str = ("127.0.0.1", 0)
    ) -> None:
        self.family = family
        self.lines: list[str] = []
        self.read = True
        self._lock = threading.Lock()
        self._server = socket.socket(family, socket.SOCK_STREAM)
        if family == socket.AF_INET:
            self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(address)
        self._server.listen()
        self.address = self._server.getsockname()
        self._conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self._conns.append(conn)
            if self.read:
                threading.Thread(target=self._receive, args=(conn,), daemon=True).start()

    def _receive(self, conn: socket.socket) -> None:
        buffered = b""
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            buffered += data
            *complete, buffered = buffered.split(b"\n")
            with self._lock:
                self.lines.extend(line.decode() for line in complete)

    def close(self) -> None:
        # shutdown() wakes the threads blocked in accept() and recv(); close() alone would not.
        for sock in (self._server, *self._conns):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._thread.join(5)


@pytest.fixture
def listener() -> Iterator[LineListener]:
    lis = LineListener()
    yield lis
    lis.close()


def test_text_lines_to_tcp(listener: LineListener) -> None:
    logger = SocketLogger(f"127.0.0.1:{listener.address[1]}")
    try:
        for n in range(500):
            logger.log(f"line {n}")
        logger.log("two\nlines")
        wait_until(lambda: len(listener.lines) == 501, what="501 lines")
    finally:
        logger.close()
    assert listener.lines == [f"line {n}" for n in range(500)] + ["two\\nlines"]


def test_json_lines_to_a_unix_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "collector.sock")
    lis = LineListener(socket.AF_UNIX, path)
    logger = SocketLogger(f"unix:{path}", format="json", hostname="h1", msgid="access")
    try:
        logger.log("GET /")
        wait_until(lambda: lis.lines, what="one JSON line")
    finally:
        logger.close()
        lis.close()
    record = json.loads(lis.lines[0])
    assert (record["message"], record["host"], record["msgid"], record["severity"]) == (
        "GET /",
        "h1",
        "access",
        "info",
    )


def test_reconnects_when_the_listener_comes_back() -> None:
    first = LineListener()
    port = first.address[1]
    logger = SocketLogger(port, retry_min=0.01, retry_max=0.05)
    try:
        logger.log("one")
        wait_until(lambda: first.lines == ["one"], what="the first line")
        first.close()
        logger.log("two")
        wait_until(lambda: logger.counters.errors > 0, what="the writer to notice")
        second = LineListener(address=("127.0.0.1", port))
        try:
            logger.log("three")
            wait_until(lambda: second.lines == ["two", "three"], what="the queued lines")
        finally:
            second.close()
    finally:
        logger.close()
    assert logger.counters.dropped == 0


def test_a_stalled_listener_never_blocks_the_caller() -> None:
    """A collector that accepts and never reads: the kernel buffers fill, the writer is
    stuck in send, the buffer fills, and log() still returns at once, counting drops."""
    lis = LineListener()
    lis.read = False
    logger = SocketLogger(lis.address[1], buffer=1000, connect_timeout=30)
    total = 100_000
    done = threading.Event()

    def produce() -> None:
        for _ in range(total):
            logger.log("x" * 1000)
        done.set()

    thread = threading.Thread(target=produce, daemon=True)
    try:
        thread.start()
        assert done.wait(60), "log() blocked"
        stats = logger.stats()
        assert stats["dropped"] > 0
        assert stats["received"] + stats["dropped"] == total
        assert stats["queued"] <= 1000
    finally:
        lis.close()
        logger.close(timeout=1)


def test_syslog_to_a_local_unix_datagram_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "log")  # stands in for /dev/log
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(path)
        receiver.settimeout(10)
        logger = SyslogLogger(path=path, app_name="medusa", procid="99", facility="local0")
        try:
            logger.log("local message")
            data = receiver.recv(4096)
        finally:
            logger.close()
    # RFC 3164 as glibc's syslog(3) writes it: no HOSTNAME. local0.info = 16 * 8 + 6.
    assert data.startswith(b"<134>")
    assert data.endswith(b" medusa[99]: local message")
    assert len(data.split(b" medusa[")[0]) == len(b"<134>Mmm dd hh:mm:ss")


def test_multi_fans_out(tmp_path: Path, listener: LineListener) -> None:
    path = tmp_path / "multi.log"
    multi = logger_from_config(
        {
            "type": "multi",
            "loggers": [
                {"type": "file", "path": "multi.log"},
                {"type": "socket", "address": f"127.0.0.1:{listener.address[1]}"},
            ],
        },
        base_dir=str(tmp_path),
    )
    assert isinstance(multi, MultiLogger)
    try:
        for n in range(100):
            multi.log(f"both {n}")
        assert multi.flush(5)
        wait_until(lambda: len(listener.lines) == 100, what="100 lines at the listener")
        assert all(s["written"] == 100 for s in multi.stats().values())
    finally:
        multi.close()
    assert path.read_text().splitlines() == listener.lines == [f"both {n}" for n in range(100)]
    assert isinstance(multi.loggers[0], FileLogger)


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"logger\.loggers\[1\]\.type: no logger type 'nope'"):
        logger_from_config(
            {"type": "multi", "loggers": [{"type": "file", "path": "/tmp/x"}, {"type": "nope"}]}
        )
    with pytest.raises(ConfigError, match=r"logger\.transport: must be one of udp, tcp, unix"):
        logger_from_config({"type": "syslog", "transport": "tls"})
    with pytest.raises(ConfigError, match=r"logger\.facility: unknown facility"):
        logger_from_config({"type": "syslog", "facility": "local9"})
    with pytest.raises(ConfigError, match=r"logger\.buffer: must be greater than 0"):
        logger_from_config({"type": "socket", "buffer": 0})
    with pytest.raises(ConfigError, match=r"logger\.port: expected an integer"):
        logger_from_config({"type": "syslog", "port": "514"})


def test_syslog_from_config() -> None:
    logger = logger_from_config(
        {
            "type": "syslog",
            "transport": "tcp",
            "host": "127.0.0.1",
            "port": 6514,
            "facility": "local7",
            "severity": "notice",
            "app_name": "web",
            "capture": ["medusa.test.cfg"],
            "propagate": False,
            "sequence_id": True,
        }
    )
    assert isinstance(logger, SyslogLogger)
    try:
        assert logger.describe() == "syslog tcp 127.0.0.1:6514"
        assert logger.severity.name == "NOTICE"
        assert logger.sequence_id
    finally:
        logger.close(timeout=0.1)
