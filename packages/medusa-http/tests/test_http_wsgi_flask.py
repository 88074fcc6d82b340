"""Flask through WSGI (medusa.http.wsgi), with real clients (http.client, curl) on both
loops: a route, a streamed response, a file upload read through ``request.files``, and
``send_file`` (which goes through ``wsgi.file_wrapper``)."""

from __future__ import annotations

import hashlib
import http.client
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from medusa.core.testing import ServerThread, loop_backends, require_tool
from medusa.http import HTTPServer, WSGIHandler

pytest.importorskip("flask", reason="flask is not installed (pip install flask)")

import flask


@pytest.fixture(params=loop_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def make_app(files: Path) -> flask.Flask:
    app = flask.Flask(__name__)

    @app.route("/hello/<name>")
    def hello(name: str) -> dict[str, str]:
        return {"hello": name, "q": flask.request.args.get("q", "")}

    @app.route("/stream")
    def stream() -> flask.Response:
        count = int(flask.request.args["n"])

        def lines() -> Iterator[str]:
            for number in range(count):
                yield f"line {number} of {flask.request.path}\n"

        return flask.Response(flask.stream_with_context(lines()), mimetype="text/plain")

    @app.route("/upload", methods=["POST"])
    def upload() -> dict[str, object]:
        stored = flask.request.files["document"]
        target = files / "uploaded.bin"
        stored.save(target)
        data = target.read_bytes()
        return {
            "name": stored.filename,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "note": flask.request.form["note"],
        }

    @app.route("/file")
    def file() -> flask.Response:
        return flask.send_file(files / "download.bin", mimetype="application/octet-stream")

    return app


@pytest.fixture
def served(backend: str, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    server = HTTPServer(
        ("127.0.0.1", 0), handlers=[WSGIHandler(make_app(tmp_path), threads=4)], access_log=None
    )
    with ServerThread([server], backend=backend):
        yield server.port, tmp_path


def test_route_and_stream(served: tuple[int, Path]) -> None:
    port, _ = served
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/hello/medusa?q=1")
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "application/json"
    assert flask.json.loads(response.read()) == {"hello": "medusa", "q": "1"}
    connection.request("GET", "/stream?n=5000")
    response = connection.getresponse()
    body = response.read().decode()
    assert response.status == 200
    lines = body.splitlines()
    assert len(lines) == 5000
    assert lines[-1] == "line 4999 of /stream"
    connection.request("GET", "/missing")
    response = connection.getresponse()
    assert response.status == 404
    response.read()
    connection.close()


def test_upload_with_curl(served: tuple[int, Path]) -> None:
    curl = require_tool("curl", "apt-get install curl")
    port, directory = served
    document = directory / "document.bin"
    content = os.urandom(3 << 20)
    document.write_bytes(content)
    result = subprocess.run(
        [
            curl,
            "-sS",
            "--max-time",
            "30",
            "-F",
            f"document=@{document}",
            "-F",
            "note=from curl",
            f"http://127.0.0.1:{port}/upload",
        ],
        capture_output=True,
        check=True,
    )
    assert flask.json.loads(result.stdout) == {
        "name": "document.bin",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        "note": "from curl",
    }


def test_send_file(served: tuple[int, Path]) -> None:
    port, directory = served
    content = os.urandom(1 << 20)
    (directory / "download.bin").write_bytes(content)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", "/file")
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Length") == str(len(content))
    assert response.read() == content
    connection.close()
