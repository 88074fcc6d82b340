"""gzip content coding: negotiation (sans-IO) and the file handler through real sockets."""

from __future__ import annotations

import gzip
import http.client
import shutil
import subprocess
from pathlib import Path

import pytest

from medusa.core.testing import ServerThread
from medusa.http import FileHandler, HTTPServer
from medusa.http.compression import accepts_gzip, compressible


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        ("", False),
        ("gzip", True),
        ("deflate, gzip;q=0.5", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0, *", False),
        ("*", True),
        ("*;q=0", False),
        ("br, deflate", False),
        ("identity", False),
    ],
)
def test_accepts_gzip(value: str | None, expected: bool) -> None:
    assert accepts_gzip(value) is expected


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("text/html", True),
        ("text/plain; charset=utf-8", True),
        ("application/json", True),
        ("application/javascript", True),
        ("image/svg+xml", True),
        ("application/vnd.api+json", True),
        ("image/png", False),
        ("application/gzip", False),
        ("application/zip", False),
        ("application/octet-stream", False),
    ],
)
def test_compressible(content_type: str, expected: bool) -> None:
    assert compressible(content_type) is expected


TEXT = b"Medusa serves many protocols from one event loop.\n" * 200


def fetch(port: int, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, body


@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
def test_gzip_negotiation(tmp_path: Path, backend: str) -> None:
    (tmp_path / "page.txt").write_bytes(TEXT)
    (tmp_path / "tiny.txt").write_bytes(b"short")
    (tmp_path / "image.png").write_bytes(b"\x89PNG" + bytes(4000))
    server = HTTPServer(
        ("127.0.0.1", 0), handlers=[FileHandler(tmp_path, gzip=True)], access_log=None
    )
    with ServerThread([server], backend=backend):
        port = server.port
        status, headers, body = fetch(port, "/page.txt", {"Accept-Encoding": "gzip, br"})
        assert status == 200
        assert headers["content-encoding"] == "gzip"
        assert headers["vary"] == "Accept-Encoding"
        assert gzip.decompress(body) == TEXT
        assert len(body) < len(TEXT)
        gz_etag = headers["etag"]
        assert gz_etag.endswith('-gzip"')

        status, plain, body = fetch(port, "/page.txt", {})
        assert status == 200
        assert "content-encoding" not in plain
        assert plain["vary"] == "Accept-Encoding"
        assert body == TEXT
        assert plain["etag"] != gz_etag

        status, headers, body = fetch(
            port, "/page.txt", {"Accept-Encoding": "gzip", "If-None-Match": gz_etag}
        )
        assert status == 304
        assert headers["etag"] == gz_etag

        status, headers, body = fetch(
            port, "/page.txt", {"Accept-Encoding": "gzip", "Range": "bytes=0-9"}
        )
        assert (status, body) == (206, TEXT[:10])
        assert "content-encoding" not in headers

        for path, expected in (("/tiny.txt", b"short"), ("/image.png", None)):
            status, headers, body = fetch(port, path, {"Accept-Encoding": "gzip"})
            assert status == 200
            assert "content-encoding" not in headers, path
            if expected is not None:
                assert body == expected

        status, headers, body = fetch(port, "/page.txt", {"Accept-Encoding": "gzip;q=0"})
        assert "content-encoding" not in headers


def test_off_by_default(tmp_path: Path) -> None:
    (tmp_path / "page.txt").write_bytes(TEXT)
    server = HTTPServer(("127.0.0.1", 0), root=tmp_path, access_log=None)
    with ServerThread([server]):
        status, headers, body = fetch(server.port, "/page.txt", {"Accept-Encoding": "gzip"})
        assert status == 200
        assert "content-encoding" not in headers
        assert "vary" not in headers
        assert body == TEXT


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_compressed(tmp_path: Path) -> None:
    (tmp_path / "page.txt").write_bytes(TEXT)
    server = HTTPServer(
        ("127.0.0.1", 0), handlers=[FileHandler(tmp_path, gzip=True)], access_log=None
    )
    with ServerThread([server]):
        result = subprocess.run(
            [
                "curl",
                "-sS",
                "--max-time",
                "20",
                "--compressed",
                "-D",
                "-",
                f"http://127.0.0.1:{server.port}/page.txt",
            ],
            capture_output=True,
            timeout=30,
            check=True,
        )
    head, _, body = result.stdout.partition(b"\r\n\r\n")
    assert b"Content-Encoding: gzip" in head
    assert body == TEXT
