"""A real dnsmasq on 127.0.0.1 for tests and benchmarks: a foreground process with its own
hosts file, on a free port, stopped by its process ID.

It answers authoritatively (``--auth-zone``) for one zone and for the reverse zones of the
given subnets, so that negative answers carry the zone's SOA record (RFC 2308) and reverse
lookups of the hosts file's addresses work. Names outside those zones are REFUSED (it has no
upstream server). UDP answers over 512 bytes to plain queries are truncated (TC), and the
same questions are answered over TCP.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import dns.exception
import dns.message
import dns.query

from medusa.core.testing import stop_process

__all__ = ["Dnsmasq", "find_dnsmasq"]


def find_dnsmasq() -> str | None:
    """Return the path of the dnsmasq program (also looked for in /usr/sbin, which is not
    on every user's PATH), or None."""
    return shutil.which("dnsmasq") or shutil.which("dnsmasq", path="/usr/sbin:/sbin")


def _free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 right now."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise OSError("no free port for dnsmasq")


class Dnsmasq:
    """Run ``dnsmasq --no-daemon`` serving ``hosts`` until :meth:`stop`.

    Args:
        hosts: host name -> addresses (IPv4 or IPv6 text); written as an ``--addn-hosts``
            file, so each address also gets a PTR record for the first name it is given.
        zone: the authoritative zone; the hosts' names should end with it.
        subnets: networks whose reverse zones are answered (PTR, and NXDOMAIN with SOA for
            addresses without a name).
        ttl: the TTL of every answer and the SOA's MINIMUM, in seconds.
        log_queries: log every query to :attr:`log_path` (off for benchmarks).
        extra_args: more dnsmasq options (for example ``"--cname=alias.test,host.test"``).
        directory: where the hosts file and log go (a new temporary directory if None).

    Attributes:
        port: the UDP and TCP port it listens on (127.0.0.1), once started.
        log_path: dnsmasq's own log (``--log-queries`` lines included).

    Raises:
        FileNotFoundError: from :meth:`start` when dnsmasq is not installed.
        RuntimeError: from :meth:`start` when it does not come up.
    """

    def __init__(
        self,
        hosts: Mapping[str, Sequence[str]],
        *,
        zone: str = "test",
        subnets: Sequence[str] = ("10.0.0.0/8", "127.0.0.0/8", "fd00::/8"),
        ttl: int = 30,
        log_queries: bool = True,
        extra_args: Sequence[str] = (),
        directory: str | os.PathLike[str] | None = None,
    ) -> None:
        self.hosts = {name: list(addresses) for name, addresses in hosts.items()}
        self.zone = zone
        self.subnets = list(subnets)
        self.ttl = ttl
        self.log_queries = log_queries
        self.extra_args = list(extra_args)
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="medusa-dnsmasq-")
            directory = self._tmp.name
        self.directory = Path(directory)
        self.hosts_path = self.directory / "dnsmasq.hosts"
        self.log_path = self.directory / "dnsmasq.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def nameserver(self) -> str:
        """``"127.0.0.1:PORT"``, the form :class:`~medusa.dns.resolver.DNSResolver` takes."""
        return f"127.0.0.1:{self.port}"

    def write_hosts(self) -> None:
        """Write :attr:`hosts` to the hosts file (read again by :meth:`reload`)."""
        lines = [
            f"{address} {name}" for name, addresses in self.hosts.items() for address in addresses
        ]
        self.hosts_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def command(self, port: int) -> list[str]:
        """The dnsmasq command line for ``port``."""
        program = find_dnsmasq()
        if program is None:
            raise FileNotFoundError("dnsmasq is not installed (apt-get install dnsmasq-base)")
        args = [
            program,
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            f"--port={port}",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            f"--addn-hosts={self.hosts_path}",
            f"--local-ttl={self.ttl}",
            f"--auth-ttl={self.ttl}",
            f"--auth-server=ns.{self.zone},127.0.0.1",
            f"--auth-zone={','.join([self.zone, *self.subnets])}",
            f"--auth-soa=1,hostmaster.{self.zone},1200,120,1209600",
            "--pid-file=",
            "--log-facility=-",
        ]
        if self.log_queries:
            args.append("--log-queries")
        if os.geteuid() == 0:
            args.append("--user=root")  # keep reading our own 0700 directory after start
        return args + self.extra_args

    def start(self, timeout: float = 10.0) -> Dnsmasq:
        """Start dnsmasq on a free port and wait until it answers a query.

        Raises:
            FileNotFoundError: dnsmasq is not installed.
            RuntimeError: it exited or did not answer within ``timeout`` seconds.
        """
        self.write_hosts()
        last = "did not start"
        for _ in range(5):
            port = _free_port()
            with open(self.log_path, "ab") as log:
                process = subprocess.Popen(
                    self.command(port), stdin=subprocess.DEVNULL, stdout=log, stderr=log
                )
            self.process, self.port = process, port
            if self._wait_ready(timeout):
                return self
            self.stop()
            last = self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
        raise RuntimeError(f"dnsmasq did not come up: {last}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        query = dns.message.make_query(f"{self.zone}.", "SOA")
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                dns.query.udp(query, "127.0.0.1", port=self.port, timeout=0.2)
            except (dns.exception.DNSException, OSError):
                time.sleep(0.01)  # not yet listening: poll again, bounded by the deadline
                continue
            return True
        return False

    def reload(self) -> None:
        """Write the hosts file again and make dnsmasq read it (SIGHUP); it serves the new
        data shortly after, not necessarily at once."""
        self.write_hosts()
        if self.process is not None:
            self.process.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        """Stop dnsmasq (SIGTERM to its process ID, SIGKILL after 5 s) and wait for it."""
        process, self.process = self.process, None
        if process is not None:
            stop_process(process)

    def close(self) -> None:
        """:meth:`stop`, then remove the temporary directory if this object made it."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Dnsmasq:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
