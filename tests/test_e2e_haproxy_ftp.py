# ruff: noqa: S321  (ftplib is the client of the FTP server under test)
"""FTP behind a real HAProxy in TCP mode (Debian's haproxy 2.6), with ``send-proxy`` and
``send-proxy-v2``: HAProxy on 127.0.0.1 relays the control port and the passive port range
to medusa (``workers = 2``) on 127.0.0.2, which announces 127.0.0.1 in PASV
(``masquerade_address``). The client connects from 127.0.0.5 (ftplib's and lftp's source
address): transfers work both ways in passive mode (PASV and EPSV), the transfer and
session logs name 127.0.0.5, PORT is checked against 127.0.0.5, and connections that skip
HAProxy are refused.
"""

from __future__ import annotations

import contextlib
import ftplib
import io
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import Medusa, Runner, free_port_range, read_tree, wait_until, write_tree
from tests.haproxy import HAProxy, haproxy, haproxy_config

from medusa.core.passwords import hash_password

pytestmark = pytest.mark.e2e

CLIENT = "127.0.0.5"
PROXY = "127.0.0.1"
BACKEND = "127.0.0.2"
IO_TIMEOUT = 15.0
PAYLOAD = os.urandom(3 * 1024 * 1024 + 5)
LFTP = shutil.which("lftp")


def free_port(host: str) -> int:
    """A TCP port free on ``host`` and on 127.0.0.1."""
    return free_port_range(1, (host, PROXY))


def free_range(size: int) -> tuple[int, int]:
    """``size`` consecutive ports free on 127.0.0.1 and 127.0.0.2 (a passive range)."""
    low = free_port_range(size, (PROXY, BACKEND))
    return low, low + size - 1


def ftp_sections(
    port: int,
    passive: tuple[int, int],
    send_proxy: str,
    backends: tuple[str, ...] = (BACKEND,),
    affinity: str = "",
) -> tuple[str, str, str, str]:
    """HAProxy sections for FTP in TCP mode: the control port and the passive range on
    127.0.0.1, relayed to medusa on each of ``backends`` with ``send_proxy``. With several
    backends, ``affinity`` keeps a client's data connections on the machine of its control
    connection: ``"source"`` (``balance source`` in both backends) or ``"stick"`` (a stick
    table on the control backend, matched by the passive one)."""
    control_rules = passive_rules = ""
    if affinity == "source":
        control_rules = passive_rules = "    balance source\n"
    elif affinity == "stick":
        control_rules = "    stick-table type ip size 100k expire 1h\n    stick on src\n"
        passive_rules = "    stick match src table ftp_control\n"
    control_servers = "".join(
        f"    server m{i} {host}:{port} {send_proxy} check check-send-proxy inter 200ms\n"
        for i, host in enumerate(backends)
    )
    # No port: each passive connection goes to the port the client connected to.
    passive_servers = "".join(
        f"    server m{i} {host} {send_proxy}\n" for i, host in enumerate(backends)
    )
    return (
        f"frontend ftp_control\n    mode tcp\n    bind {PROXY}:{port}\n"
        "    default_backend ftp_control\n",
        f"backend ftp_control\n    mode tcp\n    timeout tunnel 1h\n{control_rules}"
        f"{control_servers}",
        f"frontend ftp_passive\n    mode tcp\n    bind {PROXY}:{passive[0]}-{passive[1]}\n"
        "    default_backend ftp_passive\n",
        f"backend ftp_passive\n    mode tcp\n{passive_rules}{passive_servers}",
    )


def medusa_config(
    tmp_path: Path, name: str, host: str, port: int, passive: tuple[int, int], workers: int
) -> Path:
    """A medusa.toml serving ``site`` on ``host:port`` behind HAProxy (trusted 127.0.0.1,
    masquerade 127.0.0.1), with its transfer and session logs in ``logs/NAME-*.log``."""
    config = tmp_path / f"{name}.toml"
    config.write_text(
        f"""
[medusa]
grace = 2
workers = {workers}

[logger.xfer]
type = "file"
path = "logs/{name}-xfer.log"

[logger.sessions]
type = "file"
path = "logs/{name}-session.log"

[[server]]
type = "ftp"
listen = "{host}:{port}"
anonymous_root = "site"
passive_ports = [{passive[0]}, {passive[1]}]
masquerade_address = "{PROXY}"
proxy_protocol = true
proxy_trusted = ["{PROXY}/32"]
xferlog = "xfer"
session_log = "sessions"

[[server.user]]
name = "alice"
password = "{hash_password("pw")}"
root = "site"
permissions = ["read", "write", "delete", "rename", "mkdir"]
"""
    )
    return config


@pytest.fixture(params=["send-proxy", "send-proxy-v2"])
def send_proxy(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Setup:
    """medusa behind HAProxy: its process, HAProxy, the ports and the served tree."""

    def __init__(self, medusa: Medusa, proxy: HAProxy, port: int, site: Path, logs: Path):
        self.medusa = medusa
        self.haproxy = proxy
        self.port = port
        self.site = site
        self.logs = logs

    def describe(self) -> str:
        return f"{self.medusa.describe()}\n{self.haproxy.describe()}"

    def xferlog(self) -> str:
        path = self.logs / "medusa-xfer.log"
        return path.read_text() if path.exists() else ""

    def session_log(self) -> str:
        path = self.logs / "medusa-session.log"
        return path.read_text() if path.exists() else ""


@pytest.fixture
def behind_haproxy(runner: Runner, tmp_path: Path, send_proxy: str) -> Iterator[Setup]:
    port = free_port(BACKEND)
    low, high = free_range(8)
    site = tmp_path / "site"
    write_tree(site, {"payload.bin": PAYLOAD, "docs/a.txt": b"a\n" * 1000})
    (site / "incoming").mkdir()
    logs = tmp_path / "logs"
    logs.mkdir()
    config = medusa_config(tmp_path, "medusa", BACKEND, port, (low, high), workers=2)
    medusa = runner.start("serve", "-c", str(config))
    sections = ftp_sections(port, (low, high), send_proxy)
    with haproxy(haproxy_config(*sections), tmp_path, [(PROXY, port), (PROXY, low)]) as proxy:
        yield Setup(medusa, proxy, port, site, logs)


def client(setup: Setup, user: str = "alice", password: str = "pw") -> ftplib.FTP:  # noqa: S107
    """An ftplib session from 127.0.0.5 through HAProxy (data connections too)."""
    ftp = ftplib.FTP(source_address=(CLIENT, 0), timeout=IO_TIMEOUT)
    ftp.connect(PROXY, setup.port)
    ftp.login(user, password)
    return ftp


def test_passive_transfers_through_haproxy_log_the_client(behind_haproxy: Setup) -> None:
    setup = behind_haproxy
    ftp = client(setup)
    try:
        # PASV announces HAProxy's address (masquerade_address), not medusa's.
        assert "(127,0,0,1," in ftp.sendcmd("PASV"), setup.describe()
        ftp.trust_server_pasv_ipv4_address = True  # type: ignore[attr-defined]  # go where PASV says
        got: list[bytes] = []
        ftp.retrbinary("RETR payload.bin", got.append)
        assert b"".join(got) == PAYLOAD, setup.describe()
        ftp.storbinary("STOR incoming/up.bin", io.BytesIO(PAYLOAD))
        assert (setup.site / "incoming" / "up.bin").read_bytes() == PAYLOAD
        ftp.af = socket.AF_INET6  # ftplib sends EPSV for a non-IPv4 family
        assert "docs" in ftp.nlst()
        ftp.af = socket.AF_INET
        # PORT is checked against the client's address, not HAProxy's.
        assert ftp.sendcmd("PORT 127,0,0,5,200,10").startswith("200")
        with pytest.raises(ftplib.error_perm, match=r"^501"):
            ftp.sendcmd("PORT 127,0,0,1,200,10")
        ftp.quit()
    finally:
        ftp.close()
    wait_until(lambda: setup.xferlog().count(f" {CLIENT} ") == 2, "two xferlog lines")
    text = setup.xferlog()
    assert PROXY not in text
    assert BACKEND not in text
    # (HAProxy's health checks make sessions of their own, from its address.)
    lines = [line for line in setup.session_log().splitlines() if "[alice]" in line]
    assert lines, setup.session_log()
    assert all(line.startswith(f"{CLIENT}:") for line in lines), setup.session_log()
    assert "data connection from" not in setup.session_log()  # no data connection refused


def test_connections_that_skip_haproxy_are_refused(behind_haproxy: Setup) -> None:
    """A data connection straight to medusa's passive port from another address is port
    theft; one from HAProxy's address without a header (a trusted peer must send one) is
    refused too; both are logged and the session goes on."""
    setup = behind_haproxy
    ftp = client(setup)
    try:
        ftp.voidcmd("TYPE I")
        port = ftp.makepasv()[1]
        for source in ("127.0.0.9", PROXY):
            with socket.create_connection(
                (BACKEND, port), timeout=IO_TIMEOUT, source_address=(source, 0)
            ) as sock:
                # The server may close first (at once for a foreign address), then with
                # bytes unread: a reset is as good as an end of file.
                with contextlib.suppress(OSError):
                    sock.sendall(b"hello\r\n")
                    sock.shutdown(socket.SHUT_WR)
                with contextlib.suppress(ConnectionResetError):
                    assert sock.recv(10) == b""
        wait_until(
            lambda: setup.session_log().count("refused") == 2,
            f"two refusals in the session log\n{setup.session_log()}",
        )
        assert "data connection from 127.0.0.9 refused (port theft)" in setup.session_log()
        assert "data connection from 127.0.0.1 refused (bad PROXY header" in setup.session_log()
        got: list[bytes] = []
        ftp.retrbinary("RETR docs/a.txt", got.append)
        assert b"".join(got) == b"a\n" * 1000
        ftp.quit()
    finally:
        ftp.close()


@pytest.mark.skipif(LFTP is None, reason="lftp is not installed (apt-get install lftp)")
def test_lftp_from_another_address_mirrors_both_ways(behind_haproxy: Setup, tmp_path: Path) -> None:
    setup = behind_haproxy
    upload = tmp_path / "upload"
    write_tree(upload, {"x.bin": os.urandom(200_000), "sub/y.txt": b"y\n" * 500})
    url = f"ftp://alice:pw@{PROXY}:{setup.port}"
    settings = (
        f"set net:socket-bind-ipv4 {CLIENT}; set ftp:ssl-allow no; set ftp:passive-mode yes; "
        "set net:max-retries 1; set net:timeout 15; set cmd:fail-exit yes; "
    )
    for script in (
        f"mirror -R --parallel=3 {upload} /incoming/tree",
        f"mirror --parallel=3 /incoming/tree {tmp_path / 'copy'}",
    ):
        assert LFTP is not None
        done = subprocess.run(
            [LFTP, "-c", f"{settings} open {url}; {script}"],
            capture_output=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, f"{done.stderr.decode(errors='replace')}\n{setup.describe()}"
    assert read_tree(setup.site / "incoming" / "tree") == read_tree(upload)
    assert read_tree(tmp_path / "copy") == read_tree(upload)
    wait_until(lambda: setup.xferlog().count(f" {CLIENT} ") == 4, "four xferlog lines")
    assert PROXY not in setup.xferlog()


@pytest.mark.parametrize("affinity", ["source", "stick"])
def test_two_machines_keep_each_clients_data_on_its_machine(
    runner: Runner, tmp_path: Path, affinity: str
) -> None:
    """Two medusa "machines" (127.0.0.2 and 127.0.0.3, the same passive range each) behind
    one HAProxy whose backends keep a client on one machine (``balance source``, or a stick
    table shared by the control and passive backends): clients from four addresses all
    transfer in passive mode, each client's transfers are logged by one machine only, and
    HAProxy's health checks (``check-send-proxy``) are not refused."""
    hosts = (BACKEND, "127.0.0.3")
    port = free_port(BACKEND)
    low, high = free_range(8)
    site = tmp_path / "site"
    write_tree(site, {"payload.bin": PAYLOAD})
    (site / "incoming").mkdir()
    (tmp_path / "logs").mkdir()
    machines = [
        runner.start(
            "serve", "-c", str(medusa_config(tmp_path, f"m{i}", host, port, (low, high), 1))
        )
        for i, host in enumerate(hosts)
    ]
    sections = ftp_sections(port, (low, high), "send-proxy-v2", hosts, affinity)
    clients = ["127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8"]
    with haproxy(haproxy_config(*sections), tmp_path, [(PROXY, port), (PROXY, low)]) as proxy:
        for address in clients:
            for _ in range(2):  # two sessions each: the second must find the same machine
                ftp = ftplib.FTP(source_address=(address, 0), timeout=IO_TIMEOUT)
                try:
                    ftp.connect(PROXY, port)
                    ftp.login("alice", "pw")
                    got: list[bytes] = []
                    ftp.retrbinary("RETR payload.bin", got.append)
                    assert b"".join(got) == PAYLOAD, proxy.describe()
                    ftp.storbinary(f"STOR incoming/{address}.bin", io.BytesIO(b"x" * 1000))
                    ftp.quit()
                finally:
                    ftp.close()
        logs = [tmp_path / "logs" / f"m{i}-xfer.log" for i in range(len(hosts))]

        def logged() -> int:
            return sum(p.read_text().count("\n") for p in logs if p.exists())

        wait_until(lambda: logged() == 4 * len(clients), "every transfer logged")
        texts = [p.read_text() if p.exists() else "" for p in logs]
        for address in clients:
            counts = [text.count(f" {address} ") for text in texts]
            assert sorted(counts) == [0, 4], (address, counts)
        for machine in machines:
            assert "refused" not in machine.stderr(), machine.describe()
            sessions = tmp_path / "logs" / f"m{machines.index(machine)}-session.log"
            assert "data connection from" not in sessions.read_text()
