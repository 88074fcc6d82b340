"""``medusa serve --app``: a Python web application (ASGI 3 here) served by the ``medusa``
command, as a subprocess: static files of an explicit ROOT in front of the application, the
application alone without ROOT, a prefix, a factory, ``medusa.toml``'s ``app`` handler, the
access log, and the errors: a bad spec (exit 2) and a failed lifespan startup (exit 1 with
the application's message)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from tests.conftest import Runner, curl, write_tree

pytestmark = pytest.mark.e2e

APP = """
import json

STATE = {}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if STATE.get("fail"):
                    await send({"type": "lifespan.startup.failed", "message": "no database"})
                    return
                scope["state"]["started"] = "yes"
                await send({"type": "lifespan.startup.complete"})
            else:
                print("lifespan shutdown", flush=True)
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    answer = {
        "path": scope["path"],
        "root_path": scope["root_path"],
        "method": scope["method"],
        "body": len(body),
        "started": scope["state"].get("started"),
    }
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": json.dumps(answer).encode()})


def create_app():
    return app


def failing():
    STATE["fail"] = True
    return app
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    write_tree(
        directory,
        {
            "webapp.py": APP.encode(),
            "site/style.css": b"body {}\n",
            "site/index.html": b"<p>static index</p>\n",
        },
    )
    return directory


def test_static_files_in_front_of_the_application(runner: Runner, project: Path) -> None:
    process = runner.start(
        "serve", "site", "--http", "127.0.0.1:0", "--app", "webapp:app", "--status", cwd=project
    )
    url = process.endpoint.url
    css = curl(f"{url}/style.css")
    assert css.body == b"body {}\n"  # a file of ROOT
    assert (css.header("content-type") or "").startswith("text/css")
    for path in ("/", "/missing.css", "/api/x"):  # a directory, a missing file: the app
        answer = curl(f"{url}{path}")
        assert answer.status == 200
        assert f'"path": "{path}"'.encode() in answer.body
        assert b'"started": "yes"' in answer.body
    posted = curl("-X", "POST", "--data-binary", "12345", f"{url}/style.css")
    assert b'"method": "POST"' in posted.body  # not GET/HEAD: the application's
    assert curl(f"{url}/status").status == 200  # --status still first
    assert process.stop() == 0
    assert "lifespan shutdown" in process.stdout()
    assert '"GET /style.css HTTP/1.1" 200' in process.stderr()  # the access log
    assert '"POST /style.css HTTP/1.1" 200' in process.stderr()


def test_without_root_the_application_gets_every_path(runner: Runner, project: Path) -> None:
    process = runner.start(
        "serve",
        "--http",
        "127.0.0.1:0",
        "--app",
        "webapp:create_app()",
        "--app-dir",
        str(project),
        "--app-prefix",
        "/api",
    )
    url = process.endpoint.url
    answer = curl(f"{url}/api/webapp.py")
    assert b'"path": "/api/webapp.py", "root_path": "/api"' in answer.body
    assert curl(f"{url}/webapp.py").status == 404  # outside the prefix; no files served
    assert process.stop(signal.SIGINT) == 0


def test_the_app_handler_in_medusa_toml(runner: Runner, project: Path) -> None:
    config = project / "medusa.toml"
    config.write_text(
        """
[[server]]
type = "http"
listen = "127.0.0.1:0"

[[server.handler]]
type = "app"
app = "webapp:app"
prefix = "/v1"
interface = "asgi"

[[server.handler]]
type = "files"
root = "site"
"""
    )
    process = runner.start("serve", "-c", str(config), cwd=Path("/"))
    url = process.endpoint.url
    assert b'"root_path": "/v1"' in curl(f"{url}/v1/thing").body
    assert curl(f"{url}/style.css").body == b"body {}\n"  # after the application's prefix
    assert process.stop() == 0


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("webapp", "expected MODULE:ATTRIBUTE"),
        ("nosuchmodule:app", "no module named 'nosuchmodule'"),
        ("webapp:nothing", "'webapp' has no attribute 'nothing'"),
        ("webapp:STATE", "is not callable"),
    ],
)
def test_a_bad_spec_exits_2(runner: Runner, project: Path, spec: str, message: str) -> None:
    done = runner.run("serve", "--http", "127.0.0.1:0", "--app", spec, cwd=project)
    assert done.returncode == 2, done.stderr
    assert "--app" in done.stderr
    assert message in done.stderr, done.stderr
    assert "listening" not in done.stdout


def test_a_failed_lifespan_startup_exits_with_its_message(runner: Runner, project: Path) -> None:
    done = runner.run("serve", "--http", "127.0.0.1:0", "--app", "webapp:failing()", cwd=project)
    assert done.returncode == 1, done.stderr
    assert "webapp:failing(): lifespan startup failed: no database" in done.stderr
    assert "listening" not in done.stdout
