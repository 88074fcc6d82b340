"""A first end-to-end check of the HTTP server through http.client on both loops."""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest

from medusa.core.testing import ServerThread
from medusa.http import HTTPServer


@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
def test_get_file(tmp_path: Path, backend: str) -> None:
    (tmp_path / "a.txt").write_bytes(b"hello")
    server = HTTPServer(("127.0.0.1", 0), root=tmp_path, access_log=None)
    with ServerThread([server], backend=backend):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/a.txt")
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == b"hello"
        assert response.getheader("Content-Type") == "text/plain; charset=utf-8"
        conn.close()
