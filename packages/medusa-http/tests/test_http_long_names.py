"""Long file names in PUT (issue 13, after the outside test), through curl and raw sockets
on both event loops: a name of 239 to 255 bytes, whose temporary name
``.NAME.XXXXXXXX.upload`` would pass NAME_MAX, is stored (the temporary name is cut short);
a name over 255 bytes gets 414 saying the file name is too long, and a log line, not a
misleading 409 or a 500 with an ERROR line."""

from __future__ import annotations

import logging
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from medusa.core.passwords import set_password
from medusa.core.testing import ServerThread, require_tool
from medusa.http import HTTPServer, PublishingHandler

BACKENDS = ["asyncio", "uvloop"]


@dataclass
class Site:
    root: Path
    port: int


@pytest.fixture(params=BACKENDS)
def site(
    request: pytest.FixtureRequest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> Iterator[Site]:
    root = tmp_path / "site"
    (root / "incoming").mkdir(parents=True)
    passwords = tmp_path / "passwords"
    set_password(passwords, "alice", "secret")
    server = HTTPServer(
        ("127.0.0.1", 0), handlers=[PublishingHandler(root, passwords)], access_log=False
    )
    with (
        caplog.at_level(logging.INFO, logger="medusa"),
        ServerThread([server], backend=request.param),
    ):
        yield Site(root, server.port)
    records = caplog.get_records("call") + caplog.records
    bad = [r for r in records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


def raw_put(port: int, path: bytes, body: bytes) -> bytes:
    """PUT ``body`` to ``path`` (sent as is) as alice; return the whole answer."""
    head = (
        b"PUT " + path + b" HTTP/1.1\r\nHost: x\r\nAuthorization: Basic YWxpY2U6c2VjcmV0\r\n"
        b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)
    )
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(head + body)
        data = b""
        while piece := sock.recv(65536):
            data += piece
    return data


def curl_put(port: int, source: Path, name: str) -> tuple[int, str]:
    curl = require_tool("curl", "apt-get install curl")
    url = f"http://127.0.0.1:{port}/incoming/{quote(name)}"
    done = subprocess.run(
        [curl, "-sS", "-u", "alice:secret", "-T", str(source), "-w", "\n%{http_code}", url],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


@pytest.mark.parametrize("size", [239, 245, 255])
def test_long_names_are_stored_with_curl(site: Site, tmp_path: Path, size: int) -> None:
    source = tmp_path / "a.txt"
    source.write_bytes(b"long name\n")
    name = "q" * size
    status, _ = curl_put(site.port, source, name)
    assert status == 201
    assert (site.root / "incoming" / name).read_bytes() == b"long name\n"
    assert list((site.root / "incoming").glob(".*")) == []  # no temporary file left


def test_long_multibyte_name_is_stored(site: Site) -> None:
    """250 bytes of two-byte characters (125 of them): the temporary name is cut between
    two characters, never inside one."""
    name = "é" * 125
    answer = raw_put(site.port, b"/incoming/" + quote(name).encode(), b"accents")
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:200]
    assert (site.root / "incoming" / name).read_bytes() == b"accents"


def test_replacing_a_long_name(site: Site) -> None:
    name = b"r" * 250
    for body, status in ((b"first", b"201"), (b"second", b"204")):
        answer = raw_put(site.port, b"/incoming/" + name, body)
        assert answer.startswith(b"HTTP/1.1 " + status + b" "), answer[:200]
    assert (site.root / "incoming" / name.decode()).read_bytes() == b"second"


def test_name_over_255_bytes_is_414(
    site: Site, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "a.txt"
    source.write_bytes(b"too long\n")
    status, body = curl_put(site.port, source, "q" * 300)
    assert status == 414
    assert "file name is too long" in body
    answer = raw_put(site.port, b"/incoming/" + b"z" * 256, b"too long")
    assert answer.startswith(b"HTTP/1.1 414 "), answer[:200]
    assert b"file name is too long" in answer
    # A directory name over the limit, too.
    answer = raw_put(site.port, b"/" + b"d" * 300 + b"/a.txt", b"too long")
    assert answer.startswith(b"HTTP/1.1 414 "), answer[:200]
    assert sorted(p.name for p in (site.root / "incoming").iterdir()) == []
    lines = [r.getMessage() for r in caplog.records if "414 file name too long" in r.getMessage()]
    assert len(lines) == 3, lines
    assert lines[0].startswith("PUT /incoming/qqq"), lines[0]
    assert "from 127.0.0.1:" in lines[0]
