"""The status page: counters, channels and handlers of every running server."""

from __future__ import annotations

import http.client
import json
from pathlib import Path

import pytest

from medusa.core.testing import ServerThread
from medusa.http import FileHandler, HTTPServer, StatusHandler


@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
def test_status_json_and_html(tmp_path: Path, backend: str) -> None:
    (tmp_path / "f.txt").write_bytes(b"x" * 100)
    main = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[StatusHandler(), FileHandler(tmp_path)],
        access_log=None,
    )
    other = HTTPServer(("127.0.0.1", 0), root=tmp_path, access_log=None)
    with ServerThread([main, other], backend=backend):
        conn = http.client.HTTPConnection("127.0.0.1", main.port, timeout=10)
        conn.request("GET", "/f.txt")
        assert conn.getresponse().read() == b"x" * 100
        conn.request("GET", "/status?format=json")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "application/json"
        assert response.getheader("Cache-Control") == "no-store"
        document = json.loads(response.read())
        servers = {s["listening"][0]: s for s in document["servers"]}
        mine = servers[f"127.0.0.1:{main.port}"]
        assert f"127.0.0.1:{other.port}" in servers
        assert mine["type"] == "http"
        assert mine["counters"]["requests"] == 2
        assert mine["open_channels"] == 1
        [channel] = mine["channels"]
        local_port = conn.sock.getsockname()[1]
        assert channel["peer"] == f"127.0.0.1:{local_port}"
        assert channel["bytes_in"] > 0
        assert channel["bytes_out"] > 100
        assert mine["handlers"] == ["<StatusHandler /status>", repr(main.handlers[1])]
        conn.request("GET", "/status")
        response = conn.getresponse()
        page = response.read().decode()
        assert response.getheader("Content-Type") == "text/html; charset=utf-8"
        assert "<h1>Medusa status</h1>" in page
        assert f"127.0.0.1:{local_port}" in page
        assert "&lt;StatusHandler /status&gt;" in page
        conn.request("POST", "/status", body=b"")
        response = conn.getresponse()
        response.read()
        assert response.status == 405
        conn.close()


def test_status_path_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="must start with"):
        StatusHandler("status")
