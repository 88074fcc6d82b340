"""HTTPS with certfile/keyfile (TLS 1.2 and later only), beside plain HTTP in one process.

The tests make their own CA and certificate with trustme and talk to the server with
http.client and curl --cacert."""

from __future__ import annotations

import hashlib
import http.client
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from medusa.core.testing import ServerThread
from medusa.http import HTTPServer

BACKENDS = ["asyncio", "uvloop"]
BIG = 3 * 1024 * 1024 + 17


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> tuple[Path, Path, Path]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile = tmp_path / "cert.pem"
    keyfile = tmp_path / "key.pem"
    cafile = tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(certfile), append=True)
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    return certfile, keyfile, cafile


@pytest.fixture(params=BACKENDS)
def servers(
    request: pytest.FixtureRequest, tmp_path: Path, tls_files: tuple[Path, Path, Path]
) -> Iterator[tuple[HTTPServer, HTTPServer, Path]]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_bytes(b"<p>secure</p>")
    (site / "big.bin").write_bytes(bytes(range(256)) * (BIG // 256) + b"x" * (BIG % 256))
    certfile, keyfile, cafile = tls_files
    https = HTTPServer(
        ("127.0.0.1", 0), root=site, access_log=None, certfile=str(certfile), keyfile=str(keyfile)
    )
    plain = HTTPServer(("127.0.0.1", 0), root=site, access_log=None)
    with ServerThread([https, plain], backend=request.param):
        yield https, plain, cafile


def client_context(cafile: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cafile))


def test_https_and_http_in_one_process(servers: tuple[HTTPServer, HTTPServer, Path]) -> None:
    https, plain, cafile = servers
    assert https.url_scheme == "https"
    conn = http.client.HTTPSConnection(
        "127.0.0.1", https.port, context=client_context(cafile), timeout=10
    )
    conn.request("GET", "/")
    response = conn.getresponse()
    assert response.status == 200
    assert response.read() == b"<p>secure</p>"
    assert conn.sock is not None
    assert conn.sock.version() in ("TLSv1.2", "TLSv1.3")
    conn.close()
    conn2 = http.client.HTTPConnection("127.0.0.1", plain.port, timeout=10)
    conn2.request("GET", "/")
    assert conn2.getresponse().read() == b"<p>secure</p>"
    conn2.close()


def test_large_file_over_tls_is_intact(servers: tuple[HTTPServer, HTTPServer, Path]) -> None:
    """TLS cannot use sendfile: the file goes through bounded reads and must arrive whole."""
    https, _, cafile = servers
    conn = http.client.HTTPSConnection(
        "127.0.0.1", https.port, context=client_context(cafile), timeout=30
    )
    for _ in range(2):  # twice on one keep-alive connection
        conn.request("GET", "/big.bin")
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200
        assert len(body) == BIG
        expected = bytes(range(256)) * (BIG // 256) + b"x" * (BIG % 256)
        assert hashlib.sha256(body).digest() == hashlib.sha256(expected).digest()
    conn.close()


def test_directory_redirect_uses_https(servers: tuple[HTTPServer, HTTPServer, Path]) -> None:
    https, _, cafile = servers
    (Path(https.handlers[-1].filesystem.root) / "sub").mkdir()  # type: ignore[attr-defined]
    conn = http.client.HTTPSConnection(
        "127.0.0.1", https.port, context=client_context(cafile), timeout=10
    )
    conn.request("GET", "/sub")
    response = conn.getresponse()
    response.read()
    assert response.status == 301
    assert response.getheader("Location") == f"https://127.0.0.1:{https.port}/sub/"
    conn.close()


def test_only_tls_1_2_and_later(servers: tuple[HTTPServer, HTTPServer, Path]) -> None:
    """The server's context refuses anything older than TLS 1.2. (A handshake test with a
    TLS 1.1 client cannot fail on systems whose OpenSSL already refuses 1.1 everywhere, as
    Debian's does, so the setting itself is checked.)"""
    https, _, _ = servers
    assert https.ssl is not None
    assert https.ssl.minimum_version == ssl.TLSVersion.TLSv1_2
    assert https.ssl.verify_mode == ssl.CERT_NONE  # clients are not asked for certificates


@pytest.mark.skipif(
    shutil.which("curl") is None, reason="curl is not installed (apt-get install curl)"
)
def test_curl_with_cacert(servers: tuple[HTTPServer, HTTPServer, Path]) -> None:
    https, _, cafile = servers
    result = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "20",
            "--cacert",
            str(cafile),
            f"https://127.0.0.1:{https.port}/",
        ],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"<p>secure</p>"
    refused = subprocess.run(
        ["curl", "-sS", "--max-time", "20", f"https://127.0.0.1:{https.port}/"],
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert refused.returncode != 0  # an unknown CA is not trusted
