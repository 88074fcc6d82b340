"""Basic authentication (RFC 7617) through real sockets on both event loops: the 401
challenge, wrong and malformed credentials, success through the wrapped handler (sync and
async), the user in the access log, the warning log, keep-alive after a 401, and curl."""

from __future__ import annotations

import asyncio
import base64
import http.client
import logging
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from medusa.core.passwords import PasswordFile, set_password
from medusa.core.testing import ServerThread, wait_until
from medusa.http import FileHandler, HTTPServer, Request
from medusa.http.auth import BasicAuthHandler, parse_basic_credentials

BACKENDS = ["asyncio", "uvloop"]
REALM = 'Private "zone"'
CHALLENGE = 'Basic realm="Private \\"zone\\"", charset="UTF-8"'


class ListLogger:
    """A Logger that keeps its lines (the access log under test)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, message: str) -> None:
        self.lines.append(message)


class AsyncHello:
    """Answers /async from a coroutine, to show an awaitable result is passed on."""

    def match(self, request: Request) -> bool:
        return request.path == "/async"

    async def handle_request(self, request: Request) -> None:
        await asyncio.sleep(0)
        request.respond(200, f"hello {request.user}".encode(), content_type="text/plain")


@dataclass
class Setup:
    server: HTTPServer
    thread: ServerThread
    log: ListLogger


@pytest.fixture(scope="module")
def password_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth") / "passwords"
    set_password(path, "alice", "wonder land")
    set_password(path, "josé", "café")
    return path


@pytest.fixture(params=BACKENDS)
def setup(request: pytest.FixtureRequest, tmp_path: Path, password_file: Path) -> Iterator[Setup]:
    (tmp_path / "file.txt").write_bytes(b"file body")
    log = ListLogger()
    passwords = PasswordFile(password_file)
    srv = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[
            BasicAuthHandler(AsyncHello(), passwords, realm=REALM),
            BasicAuthHandler(FileHandler(tmp_path), str(password_file), realm=REALM),
        ],
        access_log=log,
    )
    with ServerThread([srv], backend=request.param) as thread:
        yield Setup(srv, thread, log)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def fetch(
    setup: Setup, target: str, authorization: str | None = None
) -> tuple[http.client.HTTPResponse, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", setup.server.port, timeout=10)
    try:
        headers = {} if authorization is None else {"Authorization": authorization}
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    return response, body


def test_no_credentials_gives_a_challenge(setup: Setup) -> None:
    response, body = fetch(setup, "/file.txt")
    assert response.status == 401
    assert response.getheader("WWW-Authenticate") == CHALLENGE
    assert b"file body" not in body


def test_wrong_password_is_refused_and_logged(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="medusa"):
        response, _ = fetch(setup, "/file.txt", basic("alice", "not-the-password"))
    assert response.status == 401
    assert response.getheader("WWW-Authenticate") == CHALLENGE
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("127.0.0.1:" in m and "'alice'" in m for m in messages), messages
    assert not any("not-the-password" in m for m in messages)


def test_right_password_reaches_the_wrapped_handler(setup: Setup) -> None:
    response, body = fetch(setup, "/file.txt", basic("alice", "wonder land"))
    assert response.status == 200
    assert body == b"file body"
    lines = setup.thread.call(lambda: list(setup.log.lines))
    assert lines[-1].startswith("127.0.0.1 - alice [")
    assert lines[-1].endswith('"GET /file.txt HTTP/1.1" 200 9')


def test_utf8_credentials_and_async_handler(setup: Setup) -> None:
    response, body = fetch(setup, "/async", basic("josé", "café"))
    assert response.status == 200
    assert body == "hello josé".encode()


@pytest.mark.parametrize(
    "value",
    [
        "Basic",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),  # not UTF-8
        "Bearer abc",
    ],
)
def test_malformed_header_gives_401(setup: Setup, value: str) -> None:
    response, _ = fetch(setup, "/file.txt", value)
    assert response.status == 401
    assert response.getheader("WWW-Authenticate") == CHALLENGE


def test_keep_alive_continues_after_a_401(setup: Setup) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", setup.server.port, timeout=10)
    try:
        conn.request("GET", "/file.txt")
        first = conn.getresponse()
        first.read()
        assert first.status == 401
        assert not first.will_close
        sock = conn.sock
        conn.request("GET", "/file.txt", headers={"Authorization": basic("alice", "wonder land")})
        second = conn.getresponse()
        assert second.read() == b"file body"
        assert second.status == 200
        assert conn.sock is sock  # the same connection
    finally:
        conn.close()


def test_unmatched_requests_fall_through(setup: Setup) -> None:
    response, _ = fetch(setup, "/missing.txt", basic("alice", "wonder land"))
    assert response.status == 404


@pytest.mark.skipif(
    shutil.which("curl") is None, reason="curl is not installed (apt-get install curl)"
)
def test_curl(setup: Setup) -> None:
    url = f"http://127.0.0.1:{setup.server.port}/file.txt"
    ok = subprocess.run(
        ["curl", "-sS", "-u", "alice:wonder land", url],
        capture_output=True,
        timeout=30,
        check=True,
    )
    assert ok.stdout == b"file body"
    refused = subprocess.run(
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-u", "alice:nope", url],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert refused.stdout == "401"


def test_parse_basic_credentials() -> None:
    assert parse_basic_credentials(None) is None
    assert parse_basic_credentials(basic("a", "b:c")) == ("a", "b:c")
    assert parse_basic_credentials("bAsIc " + base64.b64encode(b"a:").decode()) == ("a", "")
    assert parse_basic_credentials("Basic " + base64.b64encode(b"a\r\nb:x").decode()) is None


@pytest.mark.parametrize("realm", ["a\r\nSet-Cookie: x=1", "a\nb", "tab\there", "snow ☃"])
def test_bad_realm_is_refused(password_file: Path, tmp_path: Path, realm: str) -> None:
    with pytest.raises(ValueError, match="realm"):
        BasicAuthHandler(FileHandler(tmp_path), password_file, realm=realm)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_changed_password_stops_the_remembered_one(tmp_path: Path, backend: str) -> None:
    """A success is remembered (no scrypt per request), but not past a change of the
    user's entry: once the file is changed, the old password is refused (the file is read
    again at most once a second) and the new one accepted."""
    (tmp_path / "file.txt").write_bytes(b"file body")
    path = tmp_path / "passwords"
    set_password(path, "alice", "old password")
    srv = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[BasicAuthHandler(FileHandler(tmp_path), str(path), realm=REALM)],
        access_log=None,
    )
    with ServerThread([srv], backend=backend) as thread:
        setup = Setup(srv, thread, ListLogger())
        for _ in range(2):  # the second one from the remembered success
            assert fetch(setup, "/file.txt", basic("alice", "old password"))[0].status == 200
        set_password(path, "alice", "new password")
        wait_until(
            lambda: fetch(setup, "/file.txt", basic("alice", "old password"))[0].status == 401,
            timeout=15,
            what="the old password refused after the change",
        )
        assert fetch(setup, "/file.txt", basic("alice", "new password"))[0].status == 200
