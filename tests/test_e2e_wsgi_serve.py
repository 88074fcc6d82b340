"""``medusa serve --app ... --interface wsgi``: a WSGI application served by the ``medusa``
command as a subprocess, driven by curl: static files of ROOT in front of it, a streamed
upload, ``--threads``, ``wsgi.multiprocess`` under ``--workers 2``, ``medusa.toml``'s
``app`` handler with ``interface = "wsgi"``, and Django's WSGI entry point from
``--app-dir``."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
from tests.conftest import Runner, curl, write_tree
from tests.djangoproject import PACKAGE, django_project

pytestmark = pytest.mark.e2e

APP = """
import hashlib
import json
import threading


def app(environ, start_response):
    digest = hashlib.sha256()
    size = 0
    while data := environ["wsgi.input"].read(65536):
        digest.update(data)
        size += len(data)
    answer = {
        "script_name": environ["SCRIPT_NAME"],
        "path_info": environ["PATH_INFO"],
        "method": environ["REQUEST_METHOD"],
        "size": size,
        "sha256": digest.hexdigest(),
        "multiprocess": environ["wsgi.multiprocess"],
        "thread": threading.current_thread().name,
    }
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps(answer).encode()]
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    directory = tmp_path / "project"
    write_tree(directory, {"webapp.py": APP.encode(), "site/style.css": b"body {}\n"})
    return directory


def test_serve_wsgi_app(runner: Runner, project: Path) -> None:
    process = runner.start(
        "serve", "site", "--http", "127.0.0.1:0", "--app", "webapp:app",
        "--interface", "wsgi", "--threads", "2", cwd=project,
    )  # fmt: skip
    url = process.endpoint.url
    assert curl(f"{url}/style.css").body == b"body {}\n"  # a file of ROOT first
    upload = project / "upload.bin"
    content = os.urandom(5 << 20)
    upload.write_bytes(content)
    answer = json.loads(curl("-X", "POST", "--data-binary", f"@{upload}", f"{url}/up").body)
    assert answer["path_info"] == "/up"
    assert answer["size"] == len(content)
    assert answer["sha256"] == hashlib.sha256(content).hexdigest()
    assert answer["multiprocess"] is False
    assert answer["thread"] in ("wsgi-1", "wsgi-2")
    assert process.stop() == 0
    assert '"POST /up HTTP/1.1" 200' in process.stderr()  # the access log


def test_workers_and_medusa_toml(runner: Runner, project: Path) -> None:
    config = project / "medusa.toml"
    config.write_text(
        """
[[server]]
type = "http"
listen = "127.0.0.1:0"

[[server.handler]]
type = "app"
app = "webapp:app"
prefix = "/wsgi"
interface = "wsgi"
threads = 3
"""
    )
    process = runner.start("serve", "-c", str(config), "--workers", "2", cwd=project)
    url = process.endpoint.url
    answer = json.loads(curl(f"{url}/wsgi/x").body)
    assert (answer["script_name"], answer["path_info"]) == ("/wsgi", "/x")
    assert answer["multiprocess"] is True
    assert curl(f"{url}/other").status == 404
    assert process.stop() == 0


def test_django_wsgi_entry_point(runner: Runner) -> None:
    directory = django_project()
    process = runner.start(
        "serve", "--http", "127.0.0.1:0", "--app", f"{PACKAGE}.wsgi:application",
        "--app-dir", str(directory), "--interface", "wsgi",
    )  # fmt: skip
    url = process.endpoint.url
    assert curl(f"{url}/").body == b"hello from django"
    answer = curl("-L", f"{url}/thanks?name=x")  # a redirect to the slashed path, followed
    assert (answer.status, answer.body) == (200, b"thanks, x")
    assert process.stop() == 0
