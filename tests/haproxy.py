"""A real HAProxy for the end-to-end tests (Debian's ``haproxy`` 2.6): write a configuration,
start ``haproxy -f CFG -db`` (foreground, no daemon) and wait until it accepts on every
port it binds; stop it with SIGTERM (SIGKILL after a bounded wait).

Use :func:`haproxy` as a context manager with a configuration from :func:`haproxy_config`
(global and defaults sections plus the frontends and backends given), for example
:func:`tcp_relay` (mode tcp, ``send-proxy``/``send-proxy-v2``) or :func:`http_relay`
(mode http, ``option forwardfor`` and ``X-Forwarded-Proto: https``). A test that uses it
skips with ``apt-get install haproxy`` when haproxy is missing.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from tests.conftest import free_port_range

from medusa.core.testing import require_tool

__all__ = [
    "HAProxy",
    "free_port",
    "haproxy",
    "haproxy_config",
    "http_relay",
    "listens",
    "tcp_relay",
]

START_TIMEOUT = 15.0
"""Seconds haproxy gets to accept on its ports."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing uses at ``host`` now (:func:`tests.conftest.free_port_range`)."""
    return free_port_range(1, (host,))


def haproxy_config(*sections: str, timeout: str = "30s") -> str:
    """A whole configuration: ``global`` (maxconn 256), ``defaults`` (timeouts of
    ``timeout``) and the ``sections`` (frontends, backends, listens) as given."""
    head = (
        "global\n"
        "    maxconn 256\n"
        "\n"
        "defaults\n"
        "    timeout connect 5s\n"
        f"    timeout client {timeout}\n"
        f"    timeout server {timeout}\n"
    )
    return head + "".join(f"\n{section.strip()}\n" for section in sections)


def tcp_relay(
    name: str,
    listen: tuple[str, int],
    servers: Sequence[tuple[str, int]],
    send_proxy: str = "send-proxy",
    options: str = "",
) -> str:
    """A ``listen`` section in mode tcp: ``listen`` relayed to ``servers`` (round robin),
    each with ``send_proxy`` (``"send-proxy"``, ``"send-proxy-v2"`` or ``""``) and the
    server ``options`` (``"proxy-v2-options crc32c,unique-id"``)."""
    lines = [f"listen {name}", "    mode tcp", f"    bind {listen[0]}:{listen[1]}"]
    lines.append("    balance roundrobin")
    for i, (host, port) in enumerate(servers):
        lines.append(f"    server s{i} {host}:{port} {send_proxy} {options}".rstrip())
    return "\n".join(lines)


def http_relay(
    name: str,
    listen: tuple[str, int],
    servers: Sequence[tuple[str, int]],
    *,
    proto: str = "https",
) -> str:
    """A ``listen`` section in mode http: ``option forwardfor`` (``X-Forwarded-For``) and
    ``X-Forwarded-Proto: proto`` set on every request, relayed to ``servers``."""
    lines = [
        f"listen {name}",
        "    mode http",
        f"    bind {listen[0]}:{listen[1]}",
        "    option forwardfor",
        f"    http-request set-header X-Forwarded-Proto {proto}",
        "    balance roundrobin",
    ]
    for i, (host, port) in enumerate(servers):
        lines.append(f"    server s{i} {host}:{port}")
    return "\n".join(lines)


def listens(host: str, port: int) -> bool:
    """Whether a TCP socket listens on IPv4 ``host``:``port`` (Linux's /proc/net/tcp;
    elsewhere a connection is tried)."""
    try:
        table = Path("/proc/net/tcp").read_text()
    except OSError:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            return False
    (number,) = struct.unpack("=I", socket.inet_aton(host))
    wanted = f"{number:08X}:{port:04X}"
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[1] == wanted and fields[3] == "0A":  # TCP_LISTEN
            return True
    return False


class HAProxy:
    """A running ``haproxy -db`` (see :func:`haproxy`).

    Attributes:
        proc: the process.
        config_path: its configuration file.
        log_path: its standard output and error.
    """

    def __init__(self, config: str, directory: Path) -> None:
        program = require_tool("haproxy", "apt-get install haproxy")
        self.config_path = directory / f"haproxy-{time.monotonic_ns()}.cfg"
        self.config_path.write_text(config)
        self.log_path = self.config_path.with_suffix(".log")
        self._log = open(self.log_path, "wb")  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                [program, "-db", "-f", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
        except BaseException:
            self._log.close()
            raise

    def output(self) -> str:
        """What haproxy printed so far."""
        self._log.flush()
        return self.log_path.read_text("utf-8", "replace")

    def describe(self) -> str:
        """Configuration, status and output, for failure messages."""
        return (
            f"haproxy exit status: {self.proc.poll()}\n--- config ---\n"
            f"{self.config_path.read_text()}\n--- output ---\n{self.output()[-4000:]}"
        )

    def wait_listening(self, ports: Sequence[tuple[str, int]], timeout: float) -> None:
        """Wait until a socket listens on each of ``ports`` (no connection is made, so
        the servers behind see none); fail the test (with the
        configuration and haproxy's output) when it exits or ``timeout`` s pass."""
        deadline = time.monotonic() + timeout
        for host, port in ports:
            while not listens(host, port):
                if self.proc.poll() is not None:
                    pytest.fail(f"haproxy exited\n{self.describe()}")
                if time.monotonic() > deadline:
                    pytest.fail(f"haproxy does not listen on {host}:{port}\n{self.describe()}")
                time.sleep(0.02)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s; closes the log."""
        try:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(10)
        finally:
            self._log.close()


@contextlib.contextmanager
def haproxy(
    config: str,
    directory: Path,
    listening: Sequence[tuple[str, int]],
    timeout: float = START_TIMEOUT,
) -> Iterator[HAProxy]:
    """Run haproxy with ``config`` (written into ``directory``) until the block ends.

    Args:
        config: the whole configuration (:func:`haproxy_config`).
        directory: where the configuration and log files go (a test's ``tmp_path``).
        listening: ``(host, port)`` pairs (IPv4) haproxy binds: the block starts once a
            socket listens on each.
        timeout: seconds to wait for that.

    Skips the test when haproxy is not installed (``apt-get install haproxy``).
    """
    process = HAProxy(config, directory)
    try:
        process.wait_listening(listening, timeout)
        yield process
    finally:
        process.stop()
