"""HTTP behind a trusted proxy, through real sockets on both event loops: the PROXY
protocol (v1, v2) and ``proxy_headers`` (``Forwarded``, ``X-Forwarded-For``,
``X-Forwarded-Proto``) set the client that the access log, the status page and log lines
show, and the scheme of redirects; untrusted peers' headers are ignored; malformed ones
are ignored without a traceback; the configuration refuses a switch without
``proxy_trusted``."""

from __future__ import annotations

import json
import logging
import socket
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from medusa.core.options import ConfigError
from medusa.core.proxyprotocol import V2_SIGNATURE
from medusa.core.testing import ServerThread, wait_until
from medusa.http import FileHandler, HTTPServer, StatusHandler

BACKENDS = ["asyncio", "uvloop"]


@dataclass
class Lines:
    """An access-log Logger keeping its lines."""

    lines: list[str] = field(default_factory=list)

    def log(self, message: str) -> None:
        self.lines.append(message)


@dataclass
class Site:
    server: HTTPServer
    log: Lines
    st: ServerThread

    def exchange(self, raw: bytes, source: str = "127.0.0.1") -> bytes:
        """Send ``raw`` (one request with Connection: close) and read the whole answer."""
        with socket.create_connection(
            ("127.0.0.1", self.server.port), timeout=15, source_address=(source, 0)
        ) as sock:
            sock.sendall(raw)
            data = b""
            while True:
                try:
                    piece = sock.recv(65536)
                except ConnectionResetError:
                    break
                if not piece:
                    break
                data += piece
        return data

    def last_log_line(self, count: int) -> str:
        wait_until(lambda: len(self.log.lines) >= count, 10, f"{count} access-log lines")
        return self.log.lines[count - 1]


def get(path: str, *headers: str) -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    return f"GET {path} HTTP/1.1\r\nHost: example.org\r\n{extra}Connection: close\r\n\r\n".encode()


def v2_header(source: str, port: int) -> bytes:
    body = socket.inet_aton(source) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", port, 80)
    return V2_SIGNATURE + b"\x21\x11" + struct.pack("!H", len(body)) + body


def site(backend: str, tmp_path: Path, **kwargs: Any) -> Iterator[Site]:
    (tmp_path / "dir").mkdir(exist_ok=True)
    (tmp_path / "dir" / "index.html").write_bytes(b"index")
    (tmp_path / "hello.txt").write_bytes(b"hello")
    log = Lines()
    server = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[StatusHandler(), FileHandler(tmp_path)],
        access_log=log,
        **kwargs,
    )
    with ServerThread([server], backend=backend) as st:
        yield Site(server, log, st)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def proxied(backend: str, tmp_path: Path) -> Iterator[Site]:
    yield from site(
        backend, tmp_path, proxy_protocol=True, proxy_trusted=["127.0.0.1/32"], proxy_headers=True
    )


@pytest.fixture
def headers_only(backend: str, tmp_path: Path) -> Iterator[Site]:
    yield from site(backend, tmp_path, proxy_trusted=["127.0.0.1/32"], proxy_headers=True)


def test_proxy_v1_client_in_access_log_and_status(proxied: Site) -> None:
    answer = proxied.exchange(b"PROXY TCP4 127.0.0.5 127.0.0.1 4242 80\r\n" + get("/hello.txt"))
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert proxied.last_log_line(1).startswith("127.0.0.5 - - [")
    answer = proxied.exchange(v2_header("127.0.0.5", 4343) + get("/status?format=json"))
    document = json.loads(answer.partition(b"\r\n\r\n")[2])
    [mine] = [s for s in document["servers"] if s["listening"] == proxied.server.listening]
    assert [c["peer"] for c in mine["channels"]] == ["127.0.0.5:4343"]
    assert proxied.last_log_line(2).startswith("127.0.0.5 - - [")


def test_proxy_headers_set_client_and_scheme(headers_only: Site) -> None:
    answer = headers_only.exchange(
        get("/dir", "X-Forwarded-For: 6.6.6.6, 127.0.0.5", "X-Forwarded-Proto: https")
    )
    assert answer.startswith(b"HTTP/1.1 301 ")
    assert b"\r\nLocation: https://example.org/dir/\r\n" in answer
    assert headers_only.last_log_line(1).startswith("127.0.0.5 - - [")
    answer = headers_only.exchange(get("/dir", 'Forwarded: for="[2001:db8::5]:99";proto=https'))
    assert b"\r\nLocation: https://example.org/dir/\r\n" in answer
    assert headers_only.last_log_line(2).startswith("2001:db8::5 - - [")
    answer = headers_only.exchange(
        get("/status?format=json", "Forwarded: for=127.0.0.5;proto=https")
    )
    document = json.loads(answer.partition(b"\r\n\r\n")[2])
    [mine] = [s for s in document["servers"] if s["listening"] == headers_only.server.listening]
    assert [c["peer"] for c in mine["channels"]] == ["127.0.0.5:0"]


def test_headers_from_untrusted_peer_ignored(headers_only: Site) -> None:
    answer = headers_only.exchange(
        get("/dir", "X-Forwarded-For: 127.0.0.9", "X-Forwarded-Proto: https"), source="127.0.0.7"
    )
    assert b"\r\nLocation: http://example.org/dir/\r\n" in answer
    assert headers_only.last_log_line(1).startswith("127.0.0.7 - - [")


@pytest.mark.parametrize(
    "header",
    [
        "Forwarded: for=example.com;proto=https",
        "Forwarded: for=1.2.3.4;;",
        "X-Forwarded-For: 1.2.3.4:99999",
        "X-Forwarded-For: <script>",
    ],
)
def test_malformed_headers_ignored(
    headers_only: Site, header: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="medusa"):
        answer = headers_only.exchange(get("/dir", header))
    assert b"\r\nLocation: http://example.org/dir/\r\n" in answer
    assert headers_only.last_log_line(1).startswith("127.0.0.1 - - [")
    assert not any(r.exc_info for r in caplog.records)
    assert not any(r.levelno >= logging.WARNING for r in caplog.records)


def test_headers_ignored_without_proxy_headers(backend: str, tmp_path: Path) -> None:
    for each in site(backend, tmp_path, proxy_trusted=["127.0.0.1/32"]):
        answer = each.exchange(
            get("/dir", "X-Forwarded-For: 127.0.0.5", "X-Forwarded-Proto: https")
        )
        assert b"\r\nLocation: http://example.org/dir/\r\n" in answer
        assert each.last_log_line(1).startswith("127.0.0.1 - - [")


def test_configuration(tmp_path: Path) -> None:
    for switch in ("proxy_protocol", "proxy_headers"):
        with pytest.raises(ConfigError, match=rf"server\[0\]\.proxy_trusted: {switch}"):
            HTTPServer.from_config(
                {switch: True}, source="medusa.toml", prefix="server[0]", base_dir=str(tmp_path)
            )
        options: dict[str, Any] = {switch: True}
        with pytest.raises(ValueError, match="proxy_trusted"):
            HTTPServer(0, **options)
    with pytest.raises(ConfigError, match=r"server\[0\]\.proxy_trusted: '10\.0\.0\.1/8'"):
        HTTPServer.from_config(
            {"proxy_protocol": True, "proxy_trusted": ["10.0.0.1/8"]},
            source="medusa.toml",
            prefix="server[0]",
            base_dir=str(tmp_path),
        )
    server = HTTPServer.from_config(
        {
            "proxy_protocol": True,
            "proxy_trusted": ["127.0.0.1/32"],
            "proxy_timeout": 2,
            "proxy_headers": True,
        },
        source="medusa.toml",
        prefix="server[0]",
        base_dir=str(tmp_path),
    )
    assert isinstance(server, HTTPServer)
    assert server.proxy_timeout == 2.0
    assert server.forwarded_from is not None
