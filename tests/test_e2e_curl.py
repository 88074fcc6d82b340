"""curl against ``medusa serve``: the file handler's statuses and headers, on both loops.

GET and HEAD, byte ranges (206, 416), conditional requests (304 for If-Modified-Since and
If-None-Match), the 301 of a directory without its slash (Location keeps the port),
index.html, 404, and 405 with Allow for other methods.
"""

from __future__ import annotations

import email.utils
import os
from pathlib import Path

import pytest
from tests.conftest import Medusa, curl, site_files

pytestmark = pytest.mark.e2e

FILES = site_files()
CHECKED = ["hello.txt", "empty.txt", "data.bin", "medium.bin", "big.bin", "docs/deep/blob.bin"]


def _url(server: Medusa, path: str) -> str:
    return server.endpoint.url + path


@pytest.mark.parametrize("name", CHECKED)
def test_get_file(file_server: Medusa, name: str) -> None:
    result = curl(_url(file_server, "/" + name))
    assert result.status == 200
    assert result.body == FILES[name]
    assert result.header("Content-Length") == str(len(FILES[name]))
    assert result.header("Last-Modified")
    assert result.header("ETag")
    assert result.header("Accept-Ranges") == "bytes"


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("hello.txt", "text/plain"),
        ("index.html", "text/html"),
        ("style.css", "text/css"),
        ("docs/logo.png", "image/png"),
        ("docs/deep/data.json", "application/json"),
        ("data.bin", "application/octet-stream"),
    ],
)
def test_content_type(file_server: Medusa, name: str, content_type: str) -> None:
    result = curl(_url(file_server, "/" + name))
    assert result.status == 200
    assert (result.header("Content-Type") or "").split(";")[0] == content_type


def test_percent_encoded_name(file_server: Medusa) -> None:
    result = curl(_url(file_server, "/with%20space.txt"))
    assert result.status == 200
    assert result.body == FILES["with space.txt"]


@pytest.mark.parametrize("name", ["hello.txt", "big.bin", "empty.txt"])
def test_head(file_server: Medusa, name: str) -> None:
    get = curl(_url(file_server, "/" + name))
    head = curl("-I", _url(file_server, "/" + name))
    assert head.status == 200
    assert head.body == b""
    assert head.header("Content-Length") == str(len(FILES[name]))
    assert head.header("Content-Type") == get.header("Content-Type")
    assert head.header("ETag") == get.header("ETag")
    assert head.header("Last-Modified") == get.header("Last-Modified")


@pytest.mark.parametrize(
    ("name", "spec", "first", "last"),
    [
        ("data.bin", "0-99", 0, 99),
        ("data.bin", "9000-", 9000, 9999),
        ("data.bin", "-50", 9950, 9999),
        ("data.bin", "9990-20000", 9990, 9999),
        ("hello.txt", "0-0", 0, 0),
        ("big.bin", "1000000-2999999", 1000000, 2999999),
        ("big.bin", "-100000", len(FILES["big.bin"]) - 100000, len(FILES["big.bin"]) - 1),
    ],
)
def test_range(file_server: Medusa, name: str, spec: str, first: int, last: int) -> None:
    content = FILES[name]
    result = curl("-r", spec, _url(file_server, "/" + name))
    assert result.status == 206
    assert result.header("Content-Range") == f"bytes {first}-{last}/{len(content)}"
    assert result.header("Content-Length") == str(last - first + 1)
    assert result.body == content[first : last + 1]


@pytest.mark.parametrize(("name", "spec"), [("data.bin", "10000-"), ("hello.txt", "100-200")])
def test_range_unsatisfiable(file_server: Medusa, name: str, spec: str) -> None:
    result = curl("-r", spec, _url(file_server, "/" + name))
    assert result.status == 416
    assert result.header("Content-Range") == f"bytes */{len(FILES[name])}"


def test_head_ignores_range(file_server: Medusa) -> None:
    result = curl("-I", "-r", "0-9", _url(file_server, "/data.bin"))
    assert result.status in (200, 206)
    assert result.body == b""


def test_if_modified_since(file_server: Medusa, site: Path) -> None:
    url = _url(file_server, "/data.bin")
    first = curl(url)
    last_modified = first.header("Last-Modified")
    assert last_modified is not None
    mtime = email.utils.parsedate_to_datetime(last_modified).timestamp()
    assert int(mtime) == int(os.stat(site / "data.bin").st_mtime)
    again = curl("-H", f"If-Modified-Since: {last_modified}", url)
    assert again.status == 304
    assert again.body == b""
    assert again.header("ETag") == first.header("ETag")
    older = email.utils.formatdate(mtime - 3600, usegmt=True)
    changed = curl("-H", f"If-Modified-Since: {older}", url)
    assert changed.status == 200
    assert changed.body == FILES["data.bin"]


def test_if_modified_since_with_curl_z(file_server: Medusa, site: Path) -> None:
    """curl -z FILE sends If-Modified-Since from the file's time."""
    result = curl("-z", str(site / "hello.txt"), _url(file_server, "/hello.txt"))
    assert result.status == 304
    assert result.body == b""


def test_if_none_match(file_server: Medusa) -> None:
    url = _url(file_server, "/hello.txt")
    etag = curl(url).header("ETag")
    assert etag is not None
    assert etag.endswith('"')
    assert curl("-H", f"If-None-Match: {etag}", url).status == 304
    assert curl("-H", f'If-None-Match: "nope", {etag}', url).status == 304
    assert curl("-H", "If-None-Match: *", url).status == 304
    other = curl("-H", 'If-None-Match: "something-else"', url)
    assert other.status == 200
    assert other.body == FILES["hello.txt"]


def test_directory_without_slash_redirects(file_server: Medusa) -> None:
    endpoint = file_server.endpoint
    result = curl(_url(file_server, "/docs"))
    assert result.status == 301
    assert result.header("Location") == f"http://127.0.0.1:{endpoint.port}/docs/"
    deep = curl(_url(file_server, "/docs/deep?x=1"))
    assert deep.status == 301
    assert deep.header("Location") == f"http://127.0.0.1:{endpoint.port}/docs/deep/?x=1"
    followed = curl("-L", _url(file_server, "/docs"))
    assert followed.status == 200
    assert followed.body == FILES["docs/index.html"]


@pytest.mark.parametrize("path", ["/", "/docs/", "/docs/deep/", "/assets/"])
def test_index_html(file_server: Medusa, path: str) -> None:
    result = curl(_url(file_server, path))
    assert result.status == 200
    assert result.body == FILES[path.lstrip("/") + "index.html"]
    assert (result.header("Content-Type") or "").startswith("text/html")


@pytest.mark.parametrize("path", ["/missing.txt", "/docs/missing/", "/hello.txt/more", "/nope/x"])
def test_not_found(file_server: Medusa, path: str) -> None:
    result = curl(_url(file_server, path))
    assert result.status == 404
    assert b"404" in result.body


@pytest.mark.parametrize("method", ["POST", "DELETE", "PUT", "PATCH"])
def test_method_not_allowed(file_server: Medusa, method: str) -> None:
    args = ["-X", method, _url(file_server, "/hello.txt")]
    if method in ("POST", "PUT", "PATCH"):
        args = ["--data-binary", "payload", *args]
    result = curl(*args)
    assert result.status == 405
    allow = {m.strip() for m in (result.header("Allow") or "").split(",")}
    assert {"GET", "HEAD"} <= allow
    assert method not in allow


def test_server_and_date_headers(file_server: Medusa) -> None:
    result = curl(_url(file_server, "/hello.txt"))
    assert result.header("Server")
    date = result.header("Date")
    assert date is not None
    assert email.utils.parsedate_to_datetime(date).tzname() == "UTC"
