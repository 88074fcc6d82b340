"""The servers of bench/ftp_bench.py: the served tree, and medusa (``medusa serve -c``),
pyftpdlib (its default ``FTPServer`` in a process of its own) and vsftpd (Debian's, in the
foreground with a configuration of our own), each started on a free port of 127.0.0.1 with
a passive port range, and stopped by PID.

Each runs with its logs off (``logs="off"``) or with its default logging
(``logs="default"``): medusa's session log and transfer log (``xferlog``, both on by
default) at its default level ``info`` on standard error; pyftpdlib's ``config_logging()``
defaults (level INFO: a line per command and per transfer, on standard error); vsftpd's
transfer log as Debian's ``/etc/vsftpd.conf`` enables it (``xferlog_enable=YES``, its own
format), into a file. A server's standard output and error go through a pipe that ``cat``,
pinned to the client's CPU, drains into a file, as a service manager collects a service's
output.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from medusa.core.passwords import hash_password
from medusa.core.testing import stop_process

MIB = 1024 * 1024
HOST = "127.0.0.1"
USER, PASSWORD = "bench", "bench-password"  # a throw-away account on the loopback
ANONYMOUS = ("anonymous", "bench@example.org")
LIST_ENTRIES = 24

PYFTPDLIB_SERVER = """
import logging, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.log import config_logging
from pyftpdlib.servers import FTPServer

root, port, low, high, user, password, logs = sys.argv[1:8]
if logs == "off":
    config_logging(level=logging.WARNING)
else:
    config_logging()  # pyftpdlib's defaults: INFO, a line per command and transfer
authorizer = DummyAuthorizer()
authorizer.add_anonymous(root)
authorizer.add_user(user, password, root, perm="elradfmw")
FTPHandler.authorizer = authorizer
FTPHandler.passive_ports = range(int(low), int(high) + 1)
print("pyftpdlib use_sendfile =", FTPHandler.use_sendfile, file=sys.stderr, flush=True)
server = FTPServer(("127.0.0.1", int(port)), FTPHandler)
server.max_cons = 1024
server.max_cons_per_ip = 0
server.serve_forever()
"""


# -- the tree and the servers ---------------------------------------------------------------


def make_tree(root: Path, size: int, small: int) -> None:
    """The served tree: ``big.bin`` (``size`` bytes), ``small.bin`` (``small`` bytes), the
    ``list/`` directory of :data:`LIST_ENTRIES` files, an ``upload/`` directory."""
    root.mkdir(mode=0o755)
    block = os.urandom(4 * MIB)
    with open(root / "big.bin", "wb") as file:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            file.write(piece)
            left -= len(piece)
    (root / "small.bin").write_bytes(os.urandom(small))
    listing = root / "list"
    listing.mkdir(mode=0o755)
    for number in range(LIST_ENTRIES):
        (listing / f"file-{number:02d}.txt").write_bytes(b"x" * (number * 100))
    upload = root / "upload"
    upload.mkdir(mode=0o755)
    for path in [root / "big.bin", root / "small.bin", *listing.iterdir()]:
        path.chmod(0o644)
    with_ftp = _ftp_ids()
    if with_ftp is not None:
        os.chown(upload, *with_ftp)  # vsftpd's anonymous uploads are made as "ftp"


def _ftp_ids() -> tuple[int, int] | None:
    try:
        entry = pwd.getpwnam("ftp")
    except KeyError:
        return None
    return entry.pw_uid, entry.pw_gid


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """CPU time of process ``pid`` and of its children that ended and were waited for
    (``utime + stime + cutime + cstime`` of ``/proc/PID/stat``), seconds, in clock ticks
    (usually 10 ms): vsftpd's sessions are processes of their own, reaped by it."""
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rsplit(")", 1)[1].split()  # fields from the 3rd (state) on
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def cgroup2_mount() -> Path | None:
    """Where the unified (v2) cgroup hierarchy is mounted, when this process may make
    groups in it (root), else None."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(OSError), open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 2 and fields[2] == "cgroup2":
                return Path(fields[1])
    return None


class CpuGroup:
    """A cgroup (v2) of its own for a server and every process it forks: its CPU time is
    ``cpu.stat``'s ``usage_usec``, exact whatever the processes (vsftpd's session
    processes are not waited for in a way that adds their time to its own). Made empty
    and removed by :meth:`remove`.

    Raises:
        OSError: when the group cannot be made.
    """

    def __init__(self, mount: Path, name: str) -> None:
        self.path = mount / f"medusa-ftp-bench-{os.getpid()}-{name}"
        self.path.mkdir()

    def add(self, pid: int) -> None:
        """Move process ``pid`` (before it forks) into the group."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def cpu_seconds(self) -> float:
        """CPU time of every process that was ever in the group, seconds."""
        for line in (self.path / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) / 1e6
        raise OSError(f"no usage_usec in {self.path / 'cpu.stat'}")

    def remove(self) -> None:
        """Kill what is left in the group, then remove it (at most 5 s)."""
        with contextlib.suppress(OSError):
            (self.path / "cgroup.kill").write_text("1")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                self.path.rmdir()
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.05)


def children(pid: int) -> list[int]:
    """The PIDs of the children of process ``pid`` (every thread's)."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as file:
                found.extend(int(word) for word in file.read().split())
        except OSError:
            continue
    return found


@dataclass
class Peer:
    """A server under test.

    Attributes:
        name: its row in the report (``vsftpd`` or ``vsftpd (default logs)``...).
        server: which server (``medusa``, ``pyftpdlib``, ``vsftpd``).
        logs: ``"off"`` or ``"default"`` (see the module documentation).
        argv: the command that runs it in the foreground.
        port: its control port.
        stor_user: ``(user, password)`` for uploads (into ``/upload``).
        log_file: a log the server writes itself (vsftpd's transfer log), or None.
        output: the file its standard output and error end in.
    """

    name: str
    server: str
    logs: str
    argv: list[str]
    port: int
    stor_user: tuple[str, str]
    log_file: Path | None = None
    proc: subprocess.Popen[bytes] | None = None
    reader: subprocess.Popen[bytes] | None = None
    output: Path | None = None
    group: CpuGroup | None = None
    figures: dict[str, list[float]] = field(default_factory=dict)

    def start(self, work: Path, cpu: int | None, client_cpu: int | None) -> None:
        """Run the server (pinned to ``cpu``; its output through a pipe that ``cat``, on
        ``client_cpu``, drains into a file) and wait until it greets (at most 15 s).

        Raises:
            RuntimeError: when it exits or does not greet in time (with its output).
        """
        slug = self.name.replace(" ", "-").replace("(", "").replace(")", "")
        self.output = work / f"{slug}.output"
        argv = self.argv if cpu is None else ["taskset", "-c", str(cpu), *self.argv]
        reader = ["cat"] if client_cpu is None else ["taskset", "-c", str(client_cpu), "cat"]
        read_end, write_end = os.pipe()
        try:
            with open(self.output, "wb") as out:
                self.reader = subprocess.Popen(reader, stdin=read_end, stdout=out)
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=write_end, stderr=write_end
            )
        finally:
            os.close(read_end)
            os.close(write_end)
        mount = cgroup2_mount()
        if mount is not None:
            try:
                self.group = CpuGroup(mount, slug)
                self.group.add(self.proc.pid)  # before the first connection: no fork yet
            except OSError as exc:
                print(f"{self.name}: no cgroup for its CPU time ({exc})", file=sys.stderr)
                if self.group is not None:
                    self.group.remove()
                self.group = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection((HOST, self.port), timeout=2) as sock:
                    if sock.recv(1024).startswith(b"220"):
                        self.settle()
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not start:\n{self.output_text()}")

    def output_text(self) -> str:
        """What the server wrote so far (its output, then its own log file)."""
        texts = [path.read_text(errors="replace") for path in self.log_paths() if path.exists()]
        return "".join(texts)

    def log_paths(self) -> list[Path]:
        """The files the server's log lines end in."""
        return [path for path in (self.output, self.log_file) if path is not None]

    def log_lines(self) -> int:
        """Lines logged so far (output and own log file)."""
        total = 0
        for path in self.log_paths():
            with contextlib.suppress(OSError), open(path, "rb") as file:
                total += sum(chunk.count(b"\n") for chunk in iter(lambda: file.read(1 << 20), b""))
        return total

    @property
    def exact_cpu(self) -> bool:
        """True when :meth:`cpu_seconds` counts every process of the server (a cgroup);
        else only the server's process and the children it waited for, which misses
        vsftpd's sessions."""
        return self.group is not None

    def cpu_seconds(self) -> float:
        """CPU seconds of the server and of its session processes (see
        :attr:`exact_cpu`)."""
        assert self.proc is not None
        if self.group is not None:
            return self.group.cpu_seconds()
        return cpu_seconds(self.proc.pid)

    def settle(self, timeout: float = 10.0) -> None:
        """Wait until the server has no child process left (vsftpd's sessions end after
        their QUIT; their CPU time counts once they are reaped), at most ``timeout`` s."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while children(self.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        """SIGTERM to the server's PID, SIGKILL after 5 s; then the pipe's reader."""
        if self.proc is not None:
            stop_process(self.proc)
        if self.group is not None:
            self.group.remove()
            self.group = None
        if self.reader is not None:
            stop_process(self.reader)


def display_name(server: str, logs: str) -> str:
    """A peer's row name: ``medusa``, ``medusa (default logs)``..."""
    return server if logs == "off" else f"{server} (default logs)"


def medusa_peer(
    work: Path, root: Path, ports: range, backend: str, name: str, logs: str = "off"
) -> Peer:
    """medusa as ``medusa serve -c`` on ``backend``; ``logs="default"``: its session log
    and xferlog on (their defaults) at its default level."""
    port = free_port()
    slug = f"{name}-{logs}"
    config = work / f"{slug}.toml"
    quiet = 'log_level = "warning"\n' if logs == "off" else ""
    logs_off = "xferlog = false\nsession_log = false\n" if logs == "off" else ""
    config.write_text(
        f"""
[medusa]
backend = "{backend}"
{quiet}grace = 1

[[server]]
type = "ftp"
listen = "{HOST}:{port}"
anonymous_root = "{root}"
passive_ports = [{ports.start}, {ports.stop - 1}]
max_sessions_per_ip = 1000
{logs_off}
[[server.user]]
name = "{USER}"
password = "{hash_password(PASSWORD)}"
root = "{root}"
permissions = ["read", "write", "delete"]
"""
    )
    script = Path(sys.executable).with_name("medusa")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "medusa.core.cli"]
    return Peer(
        display_name(name, logs),
        name,
        logs,
        [*command, "serve", "-c", str(config)],
        port,
        (USER, PASSWORD),
    )


def pyftpdlib_peer(root: Path, ports: range, logs: str = "off") -> Peer:
    """pyftpdlib's default ``FTPServer``; ``logs="default"``: ``config_logging()``."""
    port = free_port()
    argv = [sys.executable, "-c", PYFTPDLIB_SERVER, str(root), str(port)]
    argv += [str(ports.start), str(ports.stop - 1), USER, PASSWORD, logs]
    return Peer(display_name("pyftpdlib", logs), "pyftpdlib", logs, argv, port, (USER, PASSWORD))


def vsftpd_peer(work: Path, root: Path, ports: range, logs: str = "off") -> Peer:
    """vsftpd in the foreground; ``logs="default"``: its transfer log on, as Debian's
    configuration has it, into a file of ``work``."""
    binary = shutil.which("vsftpd") or "/usr/sbin/vsftpd"
    if not os.path.exists(binary):
        raise RuntimeError("vsftpd is not installed (apt-get install vsftpd)")
    port = free_port()
    empty = work / f"vsftpd-empty-{logs}"
    empty.mkdir(mode=0o755)
    config = work / f"vsftpd-{logs}.conf"
    log_file = work / "vsftpd-xfer.log" if logs == "default" else None
    settings = {
        "listen": "YES",
        "listen_ipv6": "NO",
        "listen_address": HOST,
        "listen_port": str(port),
        "background": "NO",
        "anonymous_enable": "YES",
        "anon_root": str(root),
        "local_enable": "NO",
        "write_enable": "YES",
        "anon_upload_enable": "YES",
        "anon_other_write_enable": "YES",
        "anon_umask": "022",
        "pasv_enable": "YES",
        "pasv_min_port": str(ports.start),
        "pasv_max_port": str(ports.stop - 1),
        "connect_from_port_20": "NO",
        "seccomp_sandbox": "NO",
        "isolate": "NO",
        "isolate_network": "NO",
        "xferlog_enable": "NO" if log_file is None else "YES",
        "vsftpd_log_file": str(log_file or work / "vsftpd-unused.log"),
        "dirmessage_enable": "NO",
        "max_clients": "0",
        "max_per_ip": "0",
        "secure_chroot_dir": str(empty),
        "ftp_username": "ftp",
        "nopriv_user": "ftp",
        "ssl_enable": "NO",
    }
    config.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    config.chmod(0o600)
    return Peer(
        display_name("vsftpd", logs),
        "vsftpd",
        logs,
        [binary, str(config)],
        port,
        ANONYMOUS,
        log_file=log_file,
    )
