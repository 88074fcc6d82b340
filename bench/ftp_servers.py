"""The servers of bench/ftp_bench.py: the served tree, and medusa (``medusa serve -c``),
pyftpdlib (its default ``FTPServer`` in a process of its own) and vsftpd (Debian's, in the
foreground with a configuration of our own), each started on a free port of 127.0.0.1 with
a passive port range, and stopped by PID.
"""

from __future__ import annotations

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

root, port, low, high, user, password = sys.argv[1:7]
config_logging(level=logging.WARNING)
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


@dataclass
class Peer:
    """A server under test.

    Attributes:
        name: its row in the report.
        argv: the command that runs it in the foreground.
        port: its control port.
        stor_user: ``(user, password)`` for uploads (into ``/upload``).
        single_process: its work is done in the process started (its CPU time is read);
            vsftpd's is done in a process per session.
    """

    name: str
    argv: list[str]
    port: int
    stor_user: tuple[str, str]
    single_process: bool = True
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    figures: dict[str, list[float]] = field(default_factory=dict)

    def start(self, work: Path, cpu: int | None) -> None:
        """Run the server (pinned to ``cpu``) and wait until it greets (at most 15 s).

        Raises:
            RuntimeError: when it exits or does not greet in time (with its stderr).
        """
        self.log = work / f"{self.name}.stderr"
        argv = self.argv if cpu is None else ["taskset", "-c", str(cpu), *self.argv]
        with open(self.log, "wb") as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                with socket.create_connection((HOST, self.port), timeout=2) as sock:
                    if sock.recv(1024).startswith(b"220"):
                        return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} did not start:\n{self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        """SIGTERM to the server's PID, SIGKILL after 5 s."""
        if self.proc is not None:
            stop_process(self.proc)


def medusa_peer(work: Path, root: Path, ports: range, backend: str, name: str) -> Peer:
    port = free_port()
    config = work / f"{name}.toml"
    config.write_text(
        f"""
[medusa]
backend = "{backend}"
log_level = "warning"
grace = 1

[[server]]
type = "ftp"
listen = "{HOST}:{port}"
anonymous_root = "{root}"
passive_ports = [{ports.start}, {ports.stop - 1}]
max_sessions_per_ip = 1000
xferlog = false
session_log = false

[[server.user]]
name = "{USER}"
password = "{hash_password(PASSWORD)}"
root = "{root}"
permissions = ["read", "write", "delete"]
"""
    )
    script = Path(sys.executable).with_name("medusa")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "medusa.core.cli"]
    return Peer(name, [*command, "serve", "-c", str(config)], port, (USER, PASSWORD))


def pyftpdlib_peer(root: Path, ports: range) -> Peer:
    port = free_port()
    argv = [sys.executable, "-c", PYFTPDLIB_SERVER, str(root), str(port)]
    argv += [str(ports.start), str(ports.stop - 1), USER, PASSWORD]
    return Peer("pyftpdlib", argv, port, (USER, PASSWORD))


def vsftpd_peer(work: Path, root: Path, ports: range) -> Peer:
    binary = shutil.which("vsftpd") or "/usr/sbin/vsftpd"
    if not os.path.exists(binary):
        raise RuntimeError("vsftpd is not installed (apt-get install vsftpd)")
    port = free_port()
    empty = work / "vsftpd-empty"
    empty.mkdir(mode=0o755)
    config = work / "vsftpd.conf"
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
        "xferlog_enable": "NO",
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
    return Peer("vsftpd", [binary, str(config)], port, ANONYMOUS, single_process=False)
