"""The charset of textual files (issue 13, item 15), through http.client on both event loops:
``text/plain; charset=utf-8`` (and HTML, CSS, JavaScript, JSON, SVG...) on the cached,
large-file, gzip, range and HEAD paths; binary types without; another charset or none when
configured (handler option, server option, medusa.toml); the listing, status and error pages
already name theirs."""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest

from medusa.core.options import ConfigError
from medusa.core.testing import ServerThread
from medusa.http import FileHandler, HTTPServer
from medusa.http.charset import check_charset, is_textual, with_charset
from medusa.http.listing import DirectoryListingHandler
from medusa.http.status_page import StatusHandler

BACKENDS = ["asyncio", "uvloop"]
TEXT = "héllo wörld ☃\n".encode()
LARGE = TEXT * 10000  # over the small-file size: not cached, sent as it is read


def head(port: int, target: str, method: str = "GET", **headers: str) -> tuple[int, str]:
    """Return the status and Content-Type of ``method target``."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, target, headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Content-Type") or ""
    finally:
        conn.close()


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    names = ("a.txt", "a.html", "a.css", "a.js", "a.json", "a.svg", "a.xml", "a.csv", "a.md")
    for name in names:
        (tmp_path / name).write_bytes(TEXT)
    (tmp_path / "large.txt").write_bytes(LARGE)
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "a.tar.gz").write_bytes(b"\x1f\x8b")
    (tmp_path / "empty").mkdir()
    return tmp_path, str(request.param)


def serve(root: Path, backend: str, **options: object) -> ServerThread:
    server = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[
            StatusHandler("/status"),
            DirectoryListingHandler(root),
            FileHandler(root, **options),  # type: ignore[arg-type]
        ],
        access_log=False,
    )
    return ServerThread([server], backend=backend)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.txt", "text/plain; charset=utf-8"),
        ("a.html", "text/html; charset=utf-8"),
        ("a.css", "text/css; charset=utf-8"),
        ("a.js", "text/javascript; charset=utf-8"),
        ("a.json", "application/json; charset=utf-8"),
        ("a.svg", "image/svg+xml; charset=utf-8"),
        ("a.xml", "application/xml; charset=utf-8"),
        ("a.csv", "text/csv; charset=utf-8"),
        ("a.png", "image/png"),
        ("a.tar.gz", "application/gzip"),
    ],
)
def test_content_types(site: tuple[Path, str], name: str, expected: str) -> None:
    root, backend = site
    with serve(root, backend) as thread:
        port = thread.servers[0].port
        assert head(port, "/" + name) == (200, expected)
        assert head(port, "/" + name) == (200, expected)  # again, from the cache
        assert head(port, "/" + name, "HEAD") == (200, expected)


def test_every_path_names_the_charset(site: tuple[Path, str]) -> None:
    root, backend = site
    plain = "text/plain; charset=utf-8"
    html = "text/html; charset=utf-8"
    with serve(root, backend, gzip=True, gzip_min_size=1) as thread:
        port = thread.servers[0].port
        assert head(port, "/large.txt") == (200, plain)
        assert head(port, "/large.txt", **{"Accept-Encoding": "gzip"}) == (200, plain)
        assert head(port, "/a.txt", **{"Accept-Encoding": "gzip"}) == (200, plain)
        assert head(port, "/a.txt", Range="bytes=0-1") == (206, plain)
        assert head(port, "/large.txt", Range="bytes=0-1") == (206, plain)
        assert head(port, "/empty/") == (200, html)  # the listing
        assert head(port, "/status") == (200, html)
        assert head(port, "/missing") == (404, html)  # the error page


def test_another_charset_or_none(site: tuple[Path, str]) -> None:
    root, backend = site
    with serve(root, backend, charset="iso-8859-1") as thread:
        assert head(thread.servers[0].port, "/a.txt") == (200, "text/plain; charset=iso-8859-1")
    for off in (None, ""):
        with serve(root, backend, charset=off) as thread:
            assert head(thread.servers[0].port, "/a.txt") == (200, "text/plain")


def test_server_option(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(TEXT)
    for charset, expected in (
        (True, "text/plain; charset=utf-8"),
        ("utf-8", "text/plain; charset=utf-8"),
        (False, "text/plain"),
        ("", "text/plain"),
    ):
        server = HTTPServer(("127.0.0.1", 0), root=tmp_path, charset=charset, access_log=False)
        with ServerThread([server]):
            assert head(server.port, "/a.txt") == (200, expected)


def test_toml_options(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(TEXT)
    server = HTTPServer.from_config(
        {"listen": "127.0.0.1:0", "handler": [{"type": "files", "root": ".", "charset": False}]},
        source="medusa.toml",
        prefix="server[0]",
        base_dir=str(tmp_path),
    )
    assert isinstance(server, HTTPServer)
    with ServerThread([server]):
        assert head(server.port, "/a.txt") == (200, "text/plain")
    with pytest.raises(ConfigError, match="charset"):
        HTTPServer.from_config(
            {
                "listen": "127.0.0.1:0",
                "handler": [{"type": "files", "root": ".", "charset": "a b"}],
            },
            source="medusa.toml",
            prefix="server[0]",
            base_dir=str(tmp_path),
        )


def test_sans_io() -> None:
    assert is_textual("text/anything")
    assert is_textual("application/ld+json")
    assert is_textual("application/vnd.example+xml")
    assert not is_textual("application/octet-stream")
    assert not is_textual("image/png")
    assert with_charset("text/html; charset=iso-8859-1", "utf-8") == "text/html; charset=iso-8859-1"
    assert with_charset("text/html", None) == "text/html"
    assert check_charset("") is None
    for bad in ("utf 8", "utf-8\r\nSet-Cookie: a=b", "é"):
        with pytest.raises(ValueError, match="charset"):
            check_charset(bad)
