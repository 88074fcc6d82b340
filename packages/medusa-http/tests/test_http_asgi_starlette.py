"""A real ASGI framework, Starlette, served by medusa-http's ASGI handler: routes, JSON,
streaming responses, request bodies (large, chunked, forms), lifespan with state,
FileResponse through ``http.response.pathsend``, an endpoint that raises, a sync endpoint
run in a thread; driven by http.client and curl on both loops."""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import subprocess
from collections.abc import AsyncIterator, Iterator, MutableMapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route

from medusa.core.testing import ServerThread, loop_backends, require_tool, wait_until
from medusa.http import ASGIHandler, HTTPServer


class Site(NamedTuple):
    server: HTTPServer
    events: list[str]
    sent: list[str]
    files: Path


def make_app(files: Path, events: list[str]) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"db": "connected"}
        events.append("shutdown")

    async def hello(request: Request) -> Response:
        return JSONResponse(
            {
                "hello": request.path_params.get("name", "world"),
                "db": request.state.db,
                "url": str(request.url),
                "root_path": request.scope["root_path"],
                "for_file": str(request.url_for("file")),
                "query": dict(request.query_params),
            }
        )

    async def upload(request: Request) -> Response:
        size = 0
        digest = hashlib.sha256()
        async for piece in request.stream():
            size += len(piece)
            digest.update(piece)
        return JSONResponse({"size": size, "sha256": digest.hexdigest()})

    async def form(request: Request) -> Response:
        # (request.form() needs python-multipart; the whole body, parsed here, is the point)
        fields = parse_qsl((await request.body()).decode())
        return JSONResponse(dict(fields))

    async def stream(request: Request) -> Response:
        async def lines() -> AsyncIterator[bytes]:
            for number in range(2000):
                yield b"line %d\n" % number

        return StreamingResponse(lines(), media_type="text/plain")

    async def file(request: Request) -> Response:
        return FileResponse(files / "big.bin", media_type="application/octet-stream")

    async def boom(request: Request) -> Response:
        raise RuntimeError("the endpoint broke")

    def sync(request: Request) -> Response:  # Starlette runs it in a thread (anyio)
        return PlainTextResponse("from a thread")

    async def moved(request: Request) -> Response:
        return RedirectResponse(request.url_for("hello"), status_code=303)

    routes = [
        Route("/", hello, name="hello"),
        Route("/hello/{name}", hello),
        Route("/upload", upload, methods=["POST", "PUT"]),
        Route("/form", form, methods=["POST"]),
        Route("/stream", stream),
        Route("/file", file, name="file"),
        Route("/boom", boom),
        Route("/sync", sync),
        Route("/moved", moved),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


@pytest.fixture(params=loop_backends())
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    events: list[str] = []
    sent: list[str] = []
    (tmp_path / "big.bin").write_bytes(bytes(range(256)) * 4096 + b"end")
    app = make_app(tmp_path, events)

    async def recording(scope: dict[str, Any], receive: Any, send: Any) -> None:
        async def send_recorded(message: MutableMapping[str, Any]) -> None:
            sent.append(message["type"])
            await send(message)

        await app(scope, receive, send_recorded)

    handler = ASGIHandler(recording, prefix="/api", name="starlette:app")
    server = HTTPServer(("127.0.0.1", 0), handlers=[handler], access_log=None)
    with ServerThread([server], backend=request.param):
        yield Site(server, events, sent, tmp_path)
    assert events == ["startup", "shutdown"]


def fetch(
    site: Site, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", site.server.port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response, response.read()
    finally:
        conn.close()


def test_routes_json_state_and_root_path(site: Site) -> None:
    response, data = fetch(site, "GET", "/api/hello/medusa?a=1")
    assert response.status == 200
    assert response.getheader("content-type") == "application/json"
    port = site.server.port
    assert json.loads(data) == {
        "hello": "medusa",
        "db": "connected",
        "url": f"http://127.0.0.1:{port}/api/hello/medusa?a=1",
        "root_path": "/api",
        "for_file": f"http://127.0.0.1:{port}/api/file",
        "query": {"a": "1"},
    }
    assert fetch(site, "GET", "/api/nothing")[0].status == 404
    response, _ = fetch(site, "GET", "/api/moved")
    assert response.status == 303
    assert response.getheader("location") == f"http://127.0.0.1:{port}/api/"


@pytest.mark.parametrize("chunked", [False, True])
def test_large_request_body(site: Site, chunked: bool) -> None:
    data = bytes(range(256)) * 12289  # about 3 MB: over max_body_size, streamed
    body: Any = iter([data[:1000000], data[1000000:]]) if chunked else data
    response, answer = fetch(site, "POST", "/api/upload", body=body)
    assert response.status == 200
    assert json.loads(answer) == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def test_form_post(site: Site) -> None:
    response, answer = fetch(
        site,
        "POST",
        "/api/form",
        body="name=M%C3%A9dusa&kind=server",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status == 200
    assert json.loads(answer) == {"name": "M\u00e9dusa", "kind": "server"}


def test_streaming_response(site: Site) -> None:
    response, data = fetch(site, "GET", "/api/stream")
    assert response.getheader("transfer-encoding") == "chunked"
    assert data == b"".join(b"line %d\n" % n for n in range(2000))


def test_file_response_goes_through_pathsend(site: Site) -> None:
    response, data = fetch(site, "GET", "/api/file")
    assert response.status == 200
    assert data == (site.files / "big.bin").read_bytes()
    assert int(response.getheader("content-length") or 0) == len(data)
    assert "http.response.pathsend" in site.sent
    response, data = fetch(site, "HEAD", "/api/file")
    assert data == b""
    assert int(response.getheader("content-length") or 0) == 256 * 4096 + 3


def test_an_endpoint_that_raises_is_a_logged_500(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        response, _ = fetch(site, "GET", "/api/boom")
        assert response.status == 500  # Starlette's own error page, then the exception
        wait_until(
            lambda: any(
                r.exc_info is not None and "the endpoint broke" in str(r.exc_info[1])
                for r in caplog.records
            ),
            what="the traceback logged",
        )
    assert fetch(site, "GET", "/api/sync")[1] == b"from a thread"


def test_curl(site: Site, tmp_path: Path) -> None:
    curl = require_tool("curl", "apt-get install curl")
    upload = tmp_path / "upload.bin"
    upload.write_bytes(b"u" * 200000)
    base = f"http://127.0.0.1:{site.server.port}/api"
    out = subprocess.run(
        [curl, "-sS", "--fail", "-T", str(upload), "-H", "Expect: 100-continue", f"{base}/upload"],
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout
    assert json.loads(out)["size"] == 200000
    out = subprocess.run(
        [curl, "-sS", "--fail", "-o", "-", f"{base}/file"],
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout
    assert out == (site.files / "big.bin").read_bytes()
    out = subprocess.run(
        [curl, "-sS", "--fail", "--http1.0", f"{base}/stream"],
        capture_output=True,
        timeout=30,
        check=True,
    ).stdout
    assert out.endswith(b"line 1999\n")
