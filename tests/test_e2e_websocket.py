"""ASGI WebSockets through the ``medusa`` command: a Starlette application with a WebSocket
route served by ``medusa serve --app`` (``--ws-max-size``) and by ``medusa.toml``'s ``app``
handler (``ws_max_size``), driven by the ``websockets`` client library; the access log's
101 line; SIGTERM closing an open WebSocket with 1001."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import Runner, write_tree
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

pytestmark = pytest.mark.e2e

APP = """
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocketDisconnect


async def echo(websocket):
    offered = websocket.scope["subprotocols"]
    await websocket.accept(subprotocol="echo.v1" if "echo.v1" in offered else None)
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text(f"{websocket.scope['root_path']}:{text}")
    except WebSocketDisconnect as exc:
        print(f"disconnect {exc.code}", flush=True)


app = Starlette(routes=[WebSocketRoute("/ws", echo)])
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    write_tree(directory, {"wsapp.py": APP.encode()})
    return directory


def open_websocket(url: str, **options: Any) -> ClientConnection:
    connection: ClientConnection = connect(
        url.replace("http://", "ws://"), proxy=None, open_timeout=10, close_timeout=10, **options
    )
    return connection


def test_medusa_serve_app_websocket(runner: Runner, project: Path) -> None:
    process = runner.start(
        "serve",
        "--http",
        "127.0.0.1:0",
        "--app",
        "wsapp:app",
        "--app-dir",
        str(project),
        "--ws-max-size",
        "1000",
    )
    url = process.endpoint.url
    with open_websocket(f"{url}/ws", subprotocols=["echo.v1"]) as ws:
        assert ws.subprotocol == "echo.v1"
        ws.send("hello")
        assert ws.recv() == ":hello"
        ws.send("x" * 1001)  # over --ws-max-size
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    with open_websocket(f"{url}/ws") as ws:
        ws.send("before the stop")
        assert ws.recv() == ":before the stop"
        process.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001  # going away
    assert process.wait() == 0
    assert "disconnect 1009" in process.stdout()
    assert "disconnect 1001" in process.stdout()
    assert '"GET /ws HTTP/1.1" 101' in process.stderr()  # the access log


def test_app_handler_websocket_options_in_medusa_toml(runner: Runner, project: Path) -> None:
    config = project / "medusa.toml"
    config.write_text(
        """
[[server]]
type = "http"
listen = "127.0.0.1:0"

[[server.handler]]
type = "app"
app = "wsapp:app"
prefix = "/chat"
ws_max_size = 10
ws_ping_interval = 0
"""
    )
    process = runner.start("serve", "-c", str(config), cwd=project)
    with open_websocket(f"{process.endpoint.url}/chat/ws") as ws:
        ws.send("0123456789")
        assert ws.recv() == "/chat:0123456789"
        ws.send("0123456789a")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1009
    assert process.stop() == 0
