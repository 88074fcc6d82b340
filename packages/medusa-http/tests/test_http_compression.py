"""gzip content coding: negotiation (sans-IO) and the file handler through real sockets."""

from __future__ import annotations

import gzip
import http.client
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from medusa.core.producers import SimpleProducer
from medusa.core.testing import ServerThread
from medusa.http import FileHandler, HTTPServer
from medusa.http.compression import GzipProducer, accepts_gzip, compressible


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


@pytest.mark.skipif(
    shutil.which("curl") is None, reason="curl is not installed (apt-get install curl)"
)
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


LARGE = b"".join(b"line %06d of a large log file that compresses well\n" % i for i in range(40000))


@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
def test_gzip_large_file_streams(tmp_path: Path, backend: str) -> None:
    """Files over the small-file size are coded as they are read: chunked over HTTP/1.1,
    close-delimited over HTTP/1.0; validators, HEAD and ranges as for small files."""
    assert len(LARGE) > 2 << 20
    (tmp_path / "big.txt").write_bytes(LARGE)
    (tmp_path / "big.bin").write_bytes(LARGE)  # application/octet-stream: never coded
    server = HTTPServer(
        ("127.0.0.1", 0), handlers=[FileHandler(tmp_path, gzip=True)], access_log=None
    )
    with ServerThread([server], backend=backend):
        port = server.port
        status, headers, body = fetch(port, "/big.txt", {"Accept-Encoding": "gzip"})
        assert status == 200
        assert headers["content-encoding"] == "gzip"
        assert headers["transfer-encoding"] == "chunked"
        assert "content-length" not in headers
        assert headers["vary"] == "Accept-Encoding"
        assert gzip.decompress(body) == LARGE
        assert len(body) < len(LARGE) // 5
        etag = headers["etag"]
        assert etag.endswith('-gzip"')

        again = fetch(port, "/big.txt", {"Accept-Encoding": "gzip", "If-None-Match": etag})
        assert again[0] == 304
        assert again[1]["etag"] == etag

        status, plain, body = fetch(port, "/big.txt", {})
        assert (status, body) == (200, LARGE)
        assert plain["content-length"] == str(len(LARGE))
        assert plain["vary"] == "Accept-Encoding"
        assert "content-encoding" not in plain

        ranged = fetch(port, "/big.txt", {"Accept-Encoding": "gzip", "Range": "bytes=5-9"})
        assert (ranged[0], ranged[2]) == (206, LARGE[5:10])
        assert "content-encoding" not in ranged[1]

        binary = fetch(port, "/big.bin", {"Accept-Encoding": "gzip"})
        assert "content-encoding" not in binary[1]
        assert binary[2] == LARGE

        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("HEAD", "/big.txt", headers={"Accept-Encoding": "gzip"})
        head = conn.getresponse()
        assert head.getheader("Content-Encoding") == "gzip"
        # No length is known without coding the file: none is claimed (it said 0).
        assert head.getheader("Content-Length") is None
        assert head.read() == b""
        conn.close()

        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET /big.txt HTTP/1.0\r\nAccept-Encoding: gzip\r\n\r\n")
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        head_bytes, _, coded = data.partition(b"\r\n\r\n")
        assert b"Content-Encoding: gzip" in head_bytes
        assert b"Transfer-Encoding" not in head_bytes
        assert gzip.decompress(coded) == LARGE


def test_gzip_producer_round_trip_and_stable_output() -> None:
    def run() -> bytes:
        producer = GzipProducer(SimpleProducer(LARGE, buffer_size=4096))
        out = b""
        while piece := producer.more():
            out += piece
        assert producer.more() == b""
        return out

    first = run()
    assert gzip.decompress(first) == LARGE
    assert run() == first  # same input, same bytes: the entity tag can stay stable


@pytest.mark.skipif(
    shutil.which("curl") is None, reason="curl is not installed (apt-get install curl)"
)
def test_curl_compressed_large_file(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_bytes(LARGE)
    server = HTTPServer(
        ("127.0.0.1", 0), handlers=[FileHandler(tmp_path, gzip=True)], access_log=None
    )
    with ServerThread([server]):
        out = tmp_path / "out"
        subprocess.run(
            [
                "curl",
                "-sS",
                "--compressed",
                "--noproxy",
                "*",
                "-o",
                str(out),
                f"http://127.0.0.1:{server.port}/big.txt",
            ],
            check=True,
            timeout=60,
        )
    assert out.read_bytes() == LARGE
