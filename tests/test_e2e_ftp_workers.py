# ruff: noqa: S321  (ftplib is the client of the FTP servers under test)
"""FTP with several processes on one machine: passive ports shared by two ``medusa serve``
processes (a port another process listens on is skipped, never a failed ``PASV``), and
``medusa serve --workers 2``, where each passive data connection must reach the worker
whose session opened it (lftp mirrors both ways, ftplib sessions held in both workers).
"""

from __future__ import annotations

import ftplib
import io
import os
import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest
from tests.conftest import Medusa, Runner, read_tree, wait_until, write_tree

pytestmark = pytest.mark.e2e

LFTP = shutil.which("lftp")

IO_TIMEOUT = 15.0
PAYLOAD = os.urandom(1024 * 1024 + 11)


def free_port_pair() -> int:
    """Return a port ``p`` such that ``p`` and ``p + 1`` were both free on 127.0.0.1 (a
    passive range of two ports for the servers under test)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port >= 65535:
            continue
        try:
            for candidate in (port, port + 1):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", candidate))
        except OSError:
            continue
        return port
    pytest.fail("no two consecutive free ports")


def ftp_config(tmp_path: Path, name: str, passive: tuple[int, int], extra: str = "") -> Path:
    """Write a ``medusa.toml`` with one FTP server (anonymous on ``site``, user ``alice``
    writing to ``site``) and return its path."""
    from medusa.core.passwords import hash_password

    config = tmp_path / f"{name}.toml"
    config.write_text(
        f"""
[medusa]
grace = 2
{extra}

[[server]]
type = "ftp"
listen = "127.0.0.1:0"
anonymous_root = "site"
passive_ports = [{passive[0]}, {passive[1]}]
data_timeout = 30

[[server.user]]
name = "alice"
password = "{hash_password("pw")}"
root = "site"
permissions = ["read", "write", "delete", "rename", "mkdir"]
"""
    )
    return config


def pasv_port(ftp: ftplib.FTP) -> int:
    """Send ``PASV`` and return the port of its 227 reply (fails on any other reply)."""
    reply = ftp.sendcmd("PASV")
    match = re.search(r"\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", reply)
    assert reply.startswith("227"), reply
    assert match, reply
    return int(match.group(5)) * 256 + int(match.group(6))


def login(port: int, user: str = "anonymous", password: str = "guest@") -> ftplib.FTP:  # noqa: S107
    ftp = ftplib.FTP()
    ftp.connect("127.0.0.1", port, timeout=IO_TIMEOUT)
    ftp.login(user, password)
    ftp.voidcmd("TYPE I")
    return ftp


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_two_processes_share_a_passive_range(runner: Runner, tmp_path: Path) -> None:
    """Two processes, one range of two ports: while process A holds one port with an open
    PASV listener, every PASV of process B gets the other port (the taken one is skipped,
    whichever port B tries first), and both serve a download at the same time."""
    site = tmp_path / "site"
    write_tree(site, {"payload.bin": PAYLOAD})
    low = free_port_pair()
    config = ftp_config(tmp_path, "shared", (low, low + 1))
    first = runner.start("serve", "-c", str(config))
    second = runner.start("serve", "-c", str(config))
    a = login(first.endpoint.port)
    b = login(second.endpoint.port)
    try:
        held = pasv_port(a)
        assert held in (low, low + 1)
        other = low + 1 if held == low else low
        # B starts at a random port of the range: 24 tries all land on the free one
        # only if the taken one is skipped (a failure would be a 425 reply).
        for _ in range(24):
            assert pasv_port(b) == other, second.describe()
        # Both transfers run at once, each data connection to its own process.
        data_a = socket.create_connection(("127.0.0.1", held), timeout=IO_TIMEOUT)
        data_b = socket.create_connection(("127.0.0.1", other), timeout=IO_TIMEOUT)
        assert a.sendcmd("RETR payload.bin")[:3] in ("125", "150")
        assert b.sendcmd("RETR payload.bin")[:3] in ("125", "150")
        got: dict[str, bytes] = {}
        reader = threading.Thread(target=lambda: got.update(b=read_all(data_b)))
        reader.start()
        got["a"] = read_all(data_a)
        reader.join(IO_TIMEOUT)
        data_a.close()
        data_b.close()
        assert got == {"a": PAYLOAD, "b": PAYLOAD}
        assert a.voidresp().startswith("226")
        assert b.voidresp().startswith("226")
        # With both ports held (a listener each), a third PASV gets 425, not an error.
        c = login(second.endpoint.port)
        try:
            pasv_port(a)
            pasv_port(b)
            with pytest.raises(ftplib.error_temp, match=r"^425"):
                c.sendcmd("PASV")
            c.voidcmd("NOOP")  # the session goes on
        finally:
            c.close()
        a.quit()
        b.quit()
    finally:
        a.close()
        b.close()
    for process in (first, second):
        assert process.stop() == 0, process.describe()
        assert "Traceback" not in process.stderr(), process.describe()


# -- medusa serve --workers 2 -------------------------------------------------------------------


def children(pid: int) -> set[int]:
    """The pids of ``pid``'s child processes (Linux ``/proc``)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "children").read_text()
        except OSError:
            continue
        found.update(int(word) for word in text.split())
    return found


def socket_owner(pids: set[int], local_port: int, remote_port: int) -> int | None:
    """The pid among ``pids`` holding the TCP socket 127.0.0.1:``local_port`` connected to
    port ``remote_port`` (from ``/proc/net/tcp`` and each process's descriptors)."""
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if int(local.split(":")[1], 16) == local_port and int(remote.split(":")[1], 16) == (
            remote_port
        ):
            inode = fields[9]
            break
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        fd_dir = Path(f"/proc/{pid}/fd")
        try:
            for fd in fd_dir.iterdir():
                try:
                    if os.readlink(fd) == target:
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None


def start_workers(runner: Runner, tmp_path: Path, passive: tuple[int, int]) -> Medusa:
    config = ftp_config(tmp_path, "workers", passive, extra="workers = 2")
    process = runner.start("serve", "-c", str(config))
    wait_until(lambda: len(children(process.pid)) >= 2, "two workers running")
    return process


def test_sessions_in_both_workers_transfer_in_passive_mode(runner: Runner, tmp_path: Path) -> None:
    """With 2 workers, sessions held open until both workers own one; each of them then
    downloads and uploads through PASV and EPSV: the data connection reaches the worker
    whose session listens on that port (no other process listens there)."""
    site = tmp_path / "site"
    write_tree(site, {"payload.bin": PAYLOAD})
    low = 61000 + os.getpid() % 2000 * 2
    process = start_workers(runner, tmp_path, (low, low + 19))
    workers = children(process.pid)
    sessions: dict[int, ftplib.FTP] = {}
    spare: list[ftplib.FTP] = []
    try:

        def one_more() -> bool:
            ftp = login(process.endpoint.port, "alice", "pw")
            sock = ftp.sock
            assert sock is not None
            owner = socket_owner(workers, process.endpoint.port, sock.getsockname()[1])
            if owner is not None and owner not in sessions:
                sessions[owner] = ftp
            else:
                spare.append(ftp)
            return len(sessions) == 2

        wait_until(one_more, "sessions in both workers", timeout=60)
        for pid, ftp in sessions.items():
            name = f"up-{pid}.bin"
            ftp.storbinary(f"STOR {name}", io.BytesIO(PAYLOAD))
            got: list[bytes] = []
            ftp.retrbinary(f"RETR {name}", got.append)
            assert b"".join(got) == PAYLOAD
            ftp.set_pasv(True)
            ftp.af = socket.AF_INET6  # ftplib sends EPSV for a non-IPv4 family
            got = []
            ftp.retrbinary("RETR payload.bin", got.append)
            ftp.af = socket.AF_INET
            assert b"".join(got) == PAYLOAD
        for ftp in sessions.values():
            ftp.quit()
    finally:
        for ftp in [*sessions.values(), *spare]:
            ftp.close()
    assert process.stop() == 0, process.describe()
    assert "Traceback" not in process.stderr(), process.describe()


@pytest.mark.skipif(LFTP is None, reason="lftp is not installed (apt-get install lftp)")
def test_lftp_mirrors_both_ways_against_two_workers(runner: Runner, tmp_path: Path) -> None:
    """lftp uploads a tree and downloads it again in passive mode, with 4 parallel
    connections (spread over both workers), byte for byte."""
    site = tmp_path / "site"
    site.mkdir()
    low = 63000 + os.getpid() % 1000 * 2
    process = start_workers(runner, tmp_path, (low, low + 39))
    upload = tmp_path / "upload"
    write_tree(
        upload,
        {f"d{i}/f{j}.bin": os.urandom(40_000 + i * 1000 + j) for i in range(3) for j in range(6)},
    )
    url = f"ftp://alice:pw@127.0.0.1:{process.endpoint.port}"
    settings = (
        "set ftp:ssl-allow no; set ftp:passive-mode yes; set net:max-retries 1; "
        "set net:timeout 15; set cmd:fail-exit yes; "
    )
    for script in (
        f"mirror -R --parallel=4 {upload} /uploaded",
        f"mirror --parallel=4 /uploaded {tmp_path / 'copy'}",
    ):
        assert LFTP is not None
        done = subprocess.run(
            [LFTP, "-c", f"{settings} open {url}; {script}"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{done.stderr.decode(errors='replace')}\n{process.describe()}"
    assert read_tree(site / "uploaded") == read_tree(upload)
    assert read_tree(tmp_path / "copy") == read_tree(upload)
    assert process.stop() == 0, process.describe()
