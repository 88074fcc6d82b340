"""Every handler type configured in one ``medusa.toml`` and driven through the real
``medusa serve -c`` with curl, wget and ``http.client``: the status page (HTML and JSON),
a redirect, ``~user`` directories of a real Unix user, virtual hosts, Basic authentication
round a private host, a directory listing mirrored by ``wget -r``, and gzip."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import pwd
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.conftest import Medusa, Runner, curl, medusa_command

from medusa.core.testing import require_tool

USER = "medusa-e2e-web"
PASSWORD = "open sesame"  # noqa: S105 (a test user's password)
BIG = b"".join(b"row %05d: compressible text for the gzip check\n" % i for i in range(5000))


@pytest.fixture(scope="module")
def unix_user(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throw-away Unix user whose home has a public_html (needs root, as in CI)."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("creating a Unix user needs root and useradd")
    home = tmp_path_factory.mktemp("home") / USER
    subprocess.run(["userdel", USER], capture_output=True, check=False)
    subprocess.run(
        ["useradd", "--home-dir", str(home), "--create-home", "--shell", "/bin/sh", USER],
        check=True,
        capture_output=True,
    )
    try:
        public = home / "public_html"
        public.mkdir()
        (public / "index.html").write_bytes(b"<h1>a user's page</h1>\n")
        (home / "secret.txt").write_bytes(b"not published\n")
        entry = pwd.getpwnam(USER)
        for path in (public, public / "index.html", home / "secret.txt"):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        yield USER
    finally:
        subprocess.run(["userdel", USER], capture_output=True, check=False)


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, module_runner: Runner, unix_user: str
) -> Medusa:
    base = tmp_path_factory.mktemp("handlers")
    site = base / "site"
    (site / "docs" / "deep").mkdir(parents=True)
    (site / "index.html").write_bytes(b"<h1>www</h1>\n")
    (site / "big.txt").write_bytes(BIG)
    (site / "docs" / "a <b>.txt").write_bytes(b"angle brackets\n")
    (site / "docs" / "deep" / "c.txt").write_bytes(b"deep file\n")
    (base / "default").mkdir()
    (base / "default" / "index.html").write_bytes(b"<h1>default host</h1>\n")
    (base / "private").mkdir()
    (base / "private" / "index.html").write_bytes(b"<h1>members only</h1>\n")
    subprocess.run(
        [*medusa_command(), "passwd", str(base / "members"), "member", "--stdin"],
        input=PASSWORD + "\n",
        text=True,
        check=True,
        capture_output=True,
        timeout=60,
    )
    (base / "medusa.toml").write_text(
        """
[[server]]
type = "http"
listen = "127.0.0.1:0"

[[server.handler]]
type = "status"
path = "/server-status"

[[server.handler]]
type = "redirect"
rules = [["/old/(.*)", "/docs/\\\\1"], ["/moved", "/", 308]]

[[server.handler]]
type = "userdir"

[[server.handler]]
type = "vhost"
default = [{ type = "files", root = "default" }]

[[server.handler.hosts."private.example"]]
type = "auth"
passwords = "members"
realm = "Members"
handler = { type = "files", root = "private" }

[server.handler.hosts]
"www.example" = [
  { type = "listing", root = "site" },
  { type = "files", root = "site", gzip = true },
]
"""
    )
    return module_runner.start("serve", "-c", str(base / "medusa.toml"))


def _url(server: Medusa, path: str) -> str:
    return server.endpoint.where.rstrip("/") + path


def test_status_page_html_and_json(server: Medusa) -> None:
    page = curl(_url(server, "/server-status"))
    assert page.status == 200
    assert b"<h1>Medusa status</h1>" in page.body
    assert b" s</p>" in page.body  # "up N s"
    assert b"VirtualHostHandler" in page.body
    endpoint = server.endpoint
    conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=10)
    try:
        conn.request("GET", "/server-status?format=json")
        response = conn.getresponse()
        assert response.getheader("Content-Type", "").startswith("application/json")
        report = json.loads(response.read())
    finally:
        conn.close()
    assert report["uptime"] >= 0
    assert report["servers"][0]["counters"]["requests"] >= 1
    assert any("VirtualHostHandler" in h for h in report["servers"][0]["handlers"])


def test_redirects(server: Medusa) -> None:
    moved = curl("-H", "Host: www.example", _url(server, "/old/deep/c.txt"))
    assert moved.status == 301
    assert moved.header("Location") is not None
    assert (moved.header("Location") or "").endswith("/docs/deep/c.txt")
    followed = curl("-L", "-H", "Host: www.example", _url(server, "/old/deep/c.txt"))
    assert (followed.status, followed.body) == (200, b"deep file\n")
    assert curl(_url(server, "/moved")).status == 308


def test_user_directory(server: Medusa, unix_user: str) -> None:
    page = curl(_url(server, f"/~{unix_user}/"))
    assert (page.status, page.body) == (200, b"<h1>a user's page</h1>\n")
    assert curl(_url(server, f"/~{unix_user}")).status == 301
    assert curl(_url(server, f"/~{unix_user}/../secret.txt")).status == 404
    assert curl(_url(server, "/~no-such-user-here/")).status == 404


def test_virtual_hosts_and_auth(server: Medusa) -> None:
    assert curl(_url(server, "/")).body == b"<h1>default host</h1>\n"
    assert curl("-H", "Host: WWW.example:80", _url(server, "/")).body == b"<h1>www</h1>\n"
    refused = curl("-H", "Host: private.example", _url(server, "/"))
    assert refused.status == 401
    assert 'realm="Members"' in (refused.header("WWW-Authenticate") or "")
    wrong = curl("-u", "member:nope", "-H", "Host: private.example", _url(server, "/"))
    assert wrong.status == 401
    page = curl("-u", f"member:{PASSWORD}", "-H", "Host: private.example", _url(server, "/"))
    assert (page.status, page.body) == (200, b"<h1>members only</h1>\n")


def test_listing_mirrored_by_wget(server: Medusa, tmp_path: Path) -> None:
    listing = curl("-H", "Host: www.example", _url(server, "/docs/"))
    assert listing.status == 200
    assert b"a &lt;b&gt;.txt" in listing.body
    assert b"<b>" not in listing.body
    wget = require_tool("wget", "apt-get install wget")
    subprocess.run(
        [
            wget, "-q", "-r", "-np", "-nH", "--no-proxy", "-e", "robots=off",
            "--header", "Host: www.example", "-P", str(tmp_path), _url(server, "/docs/"),
        ],
        check=True,
        timeout=60,
    )  # fmt: skip
    assert (tmp_path / "docs" / "a <b>.txt").read_bytes() == b"angle brackets\n"
    assert (tmp_path / "docs" / "deep" / "c.txt").read_bytes() == b"deep file\n"


def test_gzip(server: Medusa, tmp_path: Path) -> None:
    coded = curl("-H", "Host: www.example", "-H", "Accept-Encoding: gzip", _url(server, "/big.txt"))
    assert coded.header("Content-Encoding") == "gzip"
    assert coded.header("Vary") == "Accept-Encoding"
    assert gzip.decompress(coded.body) == BIG
    plain = curl("-H", "Host: www.example", _url(server, "/big.txt"))
    assert plain.header("Content-Encoding") is None
    assert plain.body == BIG
