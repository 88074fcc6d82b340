"""A client closing an HTTPS connection logs nothing: ``eof_received`` must not return True
on a TLS transport (asyncio warns that it has no effect there), on both loops. The plain
TCP half-close (answer what was read, then close) is checked beside it."""

from __future__ import annotations

import http.client
import logging
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from medusa.core.testing import ServerThread, wait_until
from medusa.http import HTTPServer

BACKENDS = ["asyncio", "uvloop"]
TIMEOUT = 10.0


@pytest.fixture(params=BACKENDS)
def servers(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ServerThread, HTTPServer, HTTPServer, Path]]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile, keyfile, cafile = tmp_path / "cert.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    for pem in cert.cert_chain_pems[1:]:
        pem.write_to_path(str(certfile), append=True)
    cert.private_key_pem.write_to_path(str(keyfile))
    ca.cert_pem.write_to_path(str(cafile))
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_bytes(b"<p>secure</p>")
    https = HTTPServer(
        ("127.0.0.1", 0), root=site, access_log=None, certfile=str(certfile), keyfile=str(keyfile)
    )
    plain = HTTPServer(("127.0.0.1", 0), root=site, access_log=None)
    with ServerThread([https, plain], backend=request.param) as st:
        yield st, https, plain, cafile


def asyncio_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "asyncio" and r.levelno >= logging.WARNING
    ]


def test_client_closing_https_logs_no_warning(
    servers: tuple[ServerThread, HTTPServer, HTTPServer, Path], caplog: pytest.LogCaptureFixture
) -> None:
    st, https, _, cafile = servers
    caplog.set_level(logging.DEBUG, logger="asyncio")
    context = ssl.create_default_context(cafile=str(cafile))
    for close_notify in (False, True):
        conn = http.client.HTTPSConnection(
            "127.0.0.1", https.port, context=context, timeout=TIMEOUT
        )
        conn.request("GET", "/")
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == b"<p>secure</p>"
        assert conn.sock is not None
        if close_notify:
            raw = conn.sock.unwrap()  # a TLS close_notify, then the TCP close
            raw.close()
        conn.close()
        wait_until(
            lambda: st.call(lambda: len(https.channels)) == 0, TIMEOUT, "the server closed it"
        )
    assert asyncio_warnings(caplog) == []


def test_plain_half_close_still_answers(
    servers: tuple[ServerThread, HTTPServer, HTTPServer, Path], caplog: pytest.LogCaptureFixture
) -> None:
    _, _, plain, _ = servers
    with socket.create_connection(("127.0.0.1", plain.port), timeout=TIMEOUT) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert data.endswith(b"<p>secure</p>")
    assert asyncio_warnings(caplog) == []
