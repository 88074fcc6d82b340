"""HTTP behind a real HAProxy (Debian's haproxy 2.6, started on 127.0.0.1 by the test) in
front of ``medusa serve -c`` (one process, and 2 workers): in mode tcp with ``send-proxy``
and ``send-proxy-v2`` (with CRC32C and UNIQUE_ID TLVs), and in mode http with
``option forwardfor`` and ``X-Forwarded-Proto: https`` (``proxy_headers``). The client
connects from 127.0.0.5 (``curl --interface 127.0.0.5``): the access log and the status
page show 127.0.0.5, not HAProxy's 127.0.0.1, and a redirect keeps https. Bad input over
real sockets straight to medusa: an untrusted peer's header, a header truncated at every
byte then EOF, garbage, oversize, and a trusted peer that sends nothing (closed after
``proxy_timeout``): each connection closed, one warning line, no traceback.
"""

from __future__ import annotations

import contextlib
import json
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import Medusa, Runner, curl, wait_until
from tests.haproxy import HAProxy, free_port, haproxy, haproxy_config, http_relay, tcp_relay

from medusa.core.proxyprotocol import V2_SIGNATURE

pytestmark = pytest.mark.e2e

CLIENT = "127.0.0.5"
UNTRUSTED = "127.0.0.7"
IO_TIMEOUT = 15.0


@dataclass
class Deployment:
    """medusa behind haproxy: ``tcp`` (PROXY protocol) and ``http`` (headers) fronts."""

    medusa: Medusa
    proxy: HAProxy
    tcp_port: int
    http_port: int
    direct_tcp: int
    log: Path

    def access_lines(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def wait_access(self, count: int) -> list[str]:
        wait_until(
            lambda: len(self.access_lines()) >= count,
            f"{count} access-log lines\n{self.medusa.describe()}",
        )
        return self.access_lines()


def _config(tmp_path: Path, workers: int, headers: bool) -> Path:
    # Under --workers the master binds each address once, keyed by the address: two
    # servers on "127.0.0.1:0" would share one socket there, so they get distinct ports.
    ports = (free_port(), free_port()) if workers > 1 else (0, 0)
    site = tmp_path / "site"
    (site / "dir").mkdir(parents=True)
    (site / "dir" / "index.html").write_bytes(b"index\n")
    (site / "page.txt").write_bytes(b"page\n")
    config = tmp_path / "medusa.toml"
    config.write_text(
        f"[medusa]\nworkers = {workers}\ngrace = 2\n\n"
        '[logger.disk]\ntype = "file"\npath = "access.log"\n\n'
        # The PROXY protocol listener (haproxy mode tcp).
        '[[server]]\ntype = "http"\n'
        f'listen = "127.0.0.1:{ports[0]}"\nroot = "site"\n'
        'access_log = "disk"\nproxy_protocol = true\nproxy_trusted = ["127.0.0.1/32"]\n'
        "proxy_timeout = 1\n"
        '[[server.handler]]\ntype = "status"\npath = "/status"\n\n'
    )
    if headers:  # the forwarded-headers listener (haproxy mode http)
        with config.open("a") as f:
            f.write(
                '[[server]]\ntype = "http"\n'
                f'listen = "127.0.0.1:{ports[1]}"\nroot = "site"\n'
                'access_log = "disk"\nproxy_headers = true\nproxy_trusted = ["127.0.0.1/32"]\n'
            )
    return config


@pytest.fixture(params=["send-proxy", "send-proxy-v2"])
def send_proxy(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@contextlib.contextmanager
def _deploy(
    runner: Runner, tmp_path: Path, send_proxy: str, workers: int, headers: bool = True
) -> Iterator[Deployment]:
    config = _config(tmp_path, workers, headers)
    medusa = runner.start("serve", "-c", str(config), listening=1 + headers, cwd=tmp_path)
    tcp_end = medusa.endpoints[0]
    http_end = medusa.endpoints[-1]  # the same as tcp_end without headers: unused then
    tcp_port, http_port = free_port(), free_port()
    options = "proxy-v2-options crc32c,unique-id" if send_proxy == "send-proxy-v2" else ""
    tcp = tcp_relay(
        "medusa_tcp", ("127.0.0.1", tcp_port), [("127.0.0.1", tcp_end.port)], send_proxy, options
    )
    if options:
        tcp += "\n    unique-id-format %ci:%cp"
    sections = [tcp]
    fronts = [("127.0.0.1", tcp_port)]
    if headers:
        sections.append(
            http_relay("medusa_http", ("127.0.0.1", http_port), [("127.0.0.1", http_end.port)])
        )
        fronts.append(("127.0.0.1", http_port))
    with haproxy(haproxy_config(*sections), tmp_path, fronts) as proxy:
        yield Deployment(medusa, proxy, tcp_port, http_port, tcp_end.port, tmp_path / "access.log")


@pytest.fixture
def deployed(runner: Runner, tmp_path: Path, send_proxy: str) -> Iterator[Deployment]:
    with _deploy(runner, tmp_path, send_proxy, 1) as deployment:
        yield deployment


def _status(port: int) -> dict[str, object]:
    answer = curl("--interface", CLIENT, f"http://127.0.0.1:{port}/status?format=json")
    assert answer.status == 200
    document: dict[str, object] = json.loads(answer.body)
    return document


def _peers(document: dict[str, object]) -> list[str]:
    servers = document["servers"]
    assert isinstance(servers, list)
    return [channel["peer"] for server in servers for channel in server["channels"]]


def test_proxy_protocol_client_address(deployed: Deployment) -> None:
    answer = curl("--interface", CLIENT, f"http://127.0.0.1:{deployed.tcp_port}/page.txt")
    assert answer.status == 200
    assert answer.body == b"page\n"
    [line] = deployed.wait_access(1)
    assert line.startswith(f"{CLIENT} - - [")
    assert '"GET /page.txt HTTP/1.1" 200 5' in line
    peers = _peers(_status(deployed.tcp_port))
    assert any(peer.startswith(f"{CLIENT}:") for peer in peers), peers
    assert not any(peer.startswith("127.0.0.1:") for peer in peers), peers
    assert all(line.startswith(f"{CLIENT} ") for line in deployed.wait_access(2))
    assert "Traceback" not in deployed.medusa.stderr()


def test_forwarded_headers_client_and_https_redirect(deployed: Deployment) -> None:
    answer = curl("--interface", CLIENT, f"http://127.0.0.1:{deployed.http_port}/dir")
    assert answer.status == 301
    assert answer.header("Location") == f"https://127.0.0.1:{deployed.http_port}/dir/"
    [line] = deployed.wait_access(1)
    assert line.startswith(f"{CLIENT} - - [")
    # A client's own X-Forwarded-For is not believed: haproxy appends the real address.
    answer = curl(
        "--interface",
        CLIENT,
        "-H",
        "X-Forwarded-For: 6.6.6.6",
        f"http://127.0.0.1:{deployed.http_port}/page.txt",
    )
    assert answer.status == 200
    assert deployed.wait_access(2)[1].startswith(f"{CLIENT} - - [")


def _exchange(port: int, data: bytes, source: str = "127.0.0.1", shut: bool = False) -> bytes:
    with socket.create_connection(("127.0.0.1", port), IO_TIMEOUT, (source, 0)) as sock:
        if data:
            sock.sendall(data)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            try:
                piece = sock.recv(65536)
            except ConnectionResetError:
                return out
            if not piece:
                return out
            out += piece


def _v2(tlvs: bytes = b"") -> bytes:
    body = socket.inet_aton(CLIENT) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", 5, 80)
    body += tlvs
    return V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", len(body)) + body


GET = b"GET /page.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def test_bad_input_straight_to_medusa(deployed: Deployment) -> None:
    port = deployed.direct_tcp
    medusa = deployed.medusa
    # A v2 header with TLVs (ALPN, AUTHORITY, NOOP) from the trusted address: served.
    tlvs = b"\x01\x00\x02h2" + b"\x02\x00\x07example" + b"\x04\x00\x00"
    assert _exchange(port, _v2(tlvs) + GET).startswith(b"HTTP/1.1 200 ")
    # An untrusted peer sending a header: closed, logged.
    assert _exchange(port, b"PROXY TCP4 1.2.3.4 127.0.0.1 1 80\r\n" + GET, UNTRUSTED) == b""
    wait_until(lambda: "not in proxy_trusted" in medusa.stderr(), "the refusal line")
    # ...and without one it is served as itself.
    assert _exchange(port, GET, UNTRUSTED).startswith(b"HTTP/1.1 200 ")
    # Truncated at every byte, then EOF: closed each time.
    header = b"PROXY TCP4 127.0.0.5 127.0.0.1 4000 80\r\n"
    for data in (header, _v2(tlvs)):
        for cut in range(len(data)):
            assert _exchange(port, data[:cut], shut=True) == b"", cut
    # Garbage, oversize v1 and v2: closed.
    for data in (GET, b"PROXY TCP4 " + b"9" * 200, V2_SIGNATURE + b"\x21\x11\xff\xff" + b"\0" * 64):
        assert _exchange(port, data) == b""
    # A trusted peer that sends nothing is closed after proxy_timeout (1 s).
    assert _exchange(port, b"") == b""
    wait_until(lambda: "no complete PROXY header within 1 s" in medusa.stderr(), "timeout line")
    errors = medusa.stderr()
    assert "Traceback" not in errors
    assert errors.count("end of file") >= len(header) + len(_v2(tlvs)) - 2
    # Through haproxy everything still works.
    assert (
        curl("--interface", CLIENT, f"http://127.0.0.1:{deployed.tcp_port}/page.txt").status == 200
    )


def test_in_front_of_two_workers(runner: Runner, tmp_path: Path, send_proxy: str) -> None:
    with _deploy(runner, tmp_path, send_proxy, 2) as each:

        def two_ready() -> bool:
            rows = _status(each.tcp_port).get("workers", [])
            assert isinstance(rows, list)
            return sum(1 for row in rows if row["state"] == "ready") == 2

        wait_until(two_ready, f"two ready workers\n{each.medusa.describe()}")
        rows = _status(each.tcp_port)["workers"]
        assert isinstance(rows, list)
        workers = {row["pid"] for row in rows}
        for _ in range(10):
            document = _status(each.tcp_port)
            assert document["pid"] in workers  # a worker answered, through haproxy
            peers = _peers(document)
            assert any(peer.startswith(f"{CLIENT}:") for peer in peers), peers
        answer = curl("--interface", CLIENT, f"http://127.0.0.1:{each.http_port}/dir")
        assert answer.header("Location") == f"https://127.0.0.1:{each.http_port}/dir/"
        lines = each.wait_access(12)
        assert all(line.startswith(f"{CLIENT} - - [") for line in lines), lines
        assert "Traceback" not in each.medusa.stderr()
        assert each.medusa.stop() == 0


def test_health_checks_are_served_quietly(runner: Runner, tmp_path: Path) -> None:
    """HAProxy's health checks with ``check-send-proxy`` (a LOCAL header, then a reset at
    once) leave no log line: on uvloop such a connection is reset before its channel asks
    for the peer address, and it used to be logged, every check, as a PROXY header from a
    peer not in proxy_trusted."""
    config = _config(tmp_path, 1, headers=False)
    medusa = runner.start("serve", "-c", str(config), listening=1, cwd=tmp_path)
    port = free_port()
    relay = tcp_relay(
        "checked",
        ("127.0.0.1", port),
        [("127.0.0.1", medusa.endpoints[0].port)],
        "send-proxy-v2",
        "check check-send-proxy inter 50ms",
    )
    with haproxy(haproxy_config(relay), tmp_path, [("127.0.0.1", port)]):

        def checks() -> int:
            document = _status(port)
            servers = document["servers"]
            assert isinstance(servers, list)
            return int(servers[0]["counters"]["connections"])

        wait_until(lambda: checks() >= 40, "40 connections (health checks) seen")
    assert "proxy_trusted" not in medusa.stderr(), medusa.describe()
    assert "Traceback" not in medusa.stderr()
