"""Directory listings through real sockets on both event loops: entries and links that work,
hostile names escaped, index files preferred, off by default, confinement kept."""

from __future__ import annotations

import http.client
import os
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin

import pytest

from medusa.core.filesys import OSFilesystem
from medusa.core.testing import ServerThread
from medusa.http import FileHandler, HTTPServer
from medusa.http.handler import Handler
from medusa.http.listing import DirectoryListingHandler

BACKENDS = ["asyncio", "uvloop"]
MTIME = 1_700_000_000  # 2023-11-14 22:13:20 UTC
# "/" cannot be in a file name: the script tag is split over a directory and a file in it.
HOSTILE = [
    "<script>alert(1)<",
    "<img src=x onerror=alert(1)>",
    'a"b',
    "a'b",
    "x y",
    "a&b",
    "q?#:%.txt",
]


class Links(HTMLParser):
    """Collects the ``href`` of every ``<a>`` and the text of ``<title>``."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []
        self.texts: list[str] = []
        self.title = ""
        self._in_title = False
        self._in_a = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs.append(dict(attrs)["href"] or "")
            self._in_a = True
        elif tag == "title":
            self._in_title = True

    def handle_endtag(self, tag: str) -> None:
        self._in_a = self._in_a and tag != "a"
        self._in_title = self._in_title and tag != "title"

    def handle_data(self, data: str) -> None:
        if self._in_a:
            self.texts.append(data)
        if self._in_title:
            self.title += data


def parse(body: bytes) -> Links:
    links = Links()
    links.feed(body.decode("utf-8"))
    links.close()
    return links


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``<tmp>/root`` with files, subdirectories and hostile names; a secret beside it."""
    (tmp_path / "secret.txt").write_bytes(b"outside the root")
    root = tmp_path / "root"
    root.mkdir()
    (root / "b.txt").write_bytes(b"bee")
    (root / "a.txt").write_bytes(b"a" * 1234)
    os.utime(root / "a.txt", (MTIME, MTIME))
    (root / "zdir").mkdir()
    (root / "adir").mkdir()
    (root / "adir" / "inner.txt").write_bytes(b"inner")
    (root / "withindex").mkdir()
    (root / "withindex" / "index.html").write_bytes(b"<p>the index</p>")
    (root / "withindex" / "other.txt").write_bytes(b"other")
    hostile = root / "hostile"
    hostile.mkdir()
    for name in HOSTILE:
        (hostile / name).write_bytes(name.encode())
    (hostile / "<b>dir<").mkdir()
    (hostile / "<b>dir<" / "script>").write_bytes(b"closing")
    return root


def serve(handlers: list[Handler], backend: str) -> tuple[HTTPServer, ServerThread]:
    server = HTTPServer(("127.0.0.1", 0), handlers=handlers, access_log=None)
    return server, ServerThread([server], backend=backend)


@pytest.fixture(params=BACKENDS)
def listing(request: pytest.FixtureRequest, tree: Path) -> Iterator[http.client.HTTPConnection]:
    """A connection to a server with listings on: [DirectoryListingHandler, FileHandler]."""
    server, thread = serve([DirectoryListingHandler(tree), FileHandler(tree)], request.param)
    with thread:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        yield conn
        conn.close()


def get(conn: http.client.HTTPConnection, path: str, method: str = "GET") -> tuple[int, bytes]:
    conn.request(method, path)
    response = conn.getresponse()
    return response.status, response.read()


def test_listing_shows_entries_with_working_links(listing: http.client.HTTPConnection) -> None:
    listing.request("GET", "/")
    response = listing.getresponse()
    body = response.read()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"
    assert int(response.getheader("Content-Length") or -1) == len(body)
    page = parse(body)
    assert page.title == "Index of /"
    assert "../" not in page.hrefs  # no parent at the root
    # Directories first, each with a trailing "/", then files; both sorted.
    assert page.texts == [
        "adir/",
        "hostile/",
        "withindex/",
        "zdir/",
        "a.txt",
        "b.txt",
    ]
    assert page.hrefs == page.texts
    text = body.decode()
    assert re.search(r">a\.txt</a></td><td>2023-11-14 22:13</td><td>1234</td>", text)
    assert re.search(r">adir/</a></td><td>\d{4}-\d\d-\d\d \d\d:\d\d</td><td>-</td>", text)
    for href in page.hrefs:
        status, _ = get(listing, urljoin("/", href))
        assert status == 200, href
    assert get(listing, "/a.txt")[1] == b"a" * 1234


def test_subdirectory_has_parent_link(listing: http.client.HTTPConnection) -> None:
    status, body = get(listing, "/adir/")
    assert status == 200
    page = parse(body)
    assert page.title == "Index of /adir/"
    assert page.hrefs == ["../", "inner.txt"]
    for href in page.hrefs:
        status, _ = get(listing, urljoin("/adir/", href))
        assert status == 200, href
    assert get(listing, "/adir/inner.txt") == (200, b"inner")
    status, body = get(listing, "/zdir/")
    assert status == 200
    assert parse(body).hrefs == ["../"]


def test_hostile_names_are_escaped_and_linked(listing: http.client.HTTPConnection) -> None:
    status, body = get(listing, "/hostile/")
    assert status == 200
    text = body.decode()
    assert "<script>" not in text
    assert "<img" not in text
    assert "<b>" not in text
    assert "&lt;script&gt;alert(1)&lt;" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert "&lt;b&gt;dir&lt;/" in text
    assert "a&quot;b" in text
    assert "a&#x27;b" in text
    assert "a&amp;b" in text
    assert 'href="a"b"' not in text
    assert 'href="a%22b"' in text
    assert 'href="a%27b"' in text
    assert 'href="x%20y"' in text
    assert 'href="%3Cscript%3Ealert%281%29%3C"' in text
    assert 'href="q%3F%23%3A%25.txt"' in text
    page = parse(body)
    # The parser unescapes: what the user sees is the names exactly.
    assert page.texts == ["Parent Directory", "<b>dir</", *sorted(HOSTILE)]
    for href, shown in zip(page.hrefs[2:], page.texts[2:], strict=True):
        status, content = get(listing, urljoin("/hostile/", href))
        assert (status, content) == (200, shown.encode())
    status, body = get(listing, urljoin("/hostile/", page.hrefs[1]))
    assert status == 200
    text = body.decode()
    assert parse(body).texts == ["Parent Directory", "script>"]
    assert "<title>Index of /hostile/&lt;b&gt;dir&lt;/</title>" in text  # escaped path
    assert "<b>" not in text
    assert 'href="script%3E">script&gt;</a>' in text
    status, body = get(listing, urljoin("/hostile/%3Cb%3Edir%3C/", "script%3E"))
    assert (status, body) == (200, b"closing")


def test_undecodable_name(listing: http.client.HTTPConnection, tree: Path) -> None:
    fd = os.open(os.fsencode(tree / "zdir") + b"/caf\xe9", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"latin-1 name")
    os.close(fd)
    status, body = get(listing, "/zdir/")
    assert status == 200
    page = parse(body)
    assert page.hrefs == ["../", "caf%E9"]
    assert page.texts[1] == "caf\ufffd"
    assert get(listing, "/zdir/caf%E9") == (200, b"latin-1 name")


def test_directory_with_index_serves_the_index(listing: http.client.HTTPConnection) -> None:
    listing.request("GET", "/withindex/")
    response = listing.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"
    assert response.read() == b"<p>the index</p>"


def test_head_gets_headers_only(listing: http.client.HTTPConnection) -> None:
    status, body = get(listing, "/adir/")
    assert status == 200
    listing.request("HEAD", "/adir/")
    response = listing.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"
    assert int(response.getheader("Content-Length") or -1) == len(body)
    assert response.read() == b""
    assert get(listing, "/")[0] == 200  # the connection is still in step


def test_left_to_file_handler(listing: http.client.HTTPConnection) -> None:
    # Without the trailing slash: the file handler's redirect.
    listing.request("GET", "/adir")
    response = listing.getresponse()
    response.read()
    assert response.status == 301
    assert (response.getheader("Location") or "").endswith("/adir/")
    # Other methods: the file handler's 405; missing directories: 404.
    assert get(listing, "/adir/", "POST")[0] == 405
    assert get(listing, "/missing/")[0] == 404
    assert get(listing, "/a.txt/")[0] == 404  # a file is not a directory: neither listed nor served


@pytest.mark.parametrize("backend", BACKENDS)
def test_off_by_default(tree: Path, backend: str) -> None:
    server = HTTPServer(("127.0.0.1", 0), root=tree, access_log=None)
    with ServerThread([server], backend=backend):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        status, body = get(conn, "/adir/")
        assert status == 403
        assert b"inner.txt" not in body
        assert get(conn, "/")[0] == 403
        assert get(conn, "/withindex/") == (200, b"<p>the index</p>")
        conn.close()


def test_symlink_outside_root_not_listed(listing: http.client.HTTPConnection, tree: Path) -> None:
    (tree / "zdir" / "etc").symlink_to("/etc")
    (tree / "zdir" / "passwd").symlink_to("/etc/passwd")
    (tree / "zdir" / "secret").symlink_to(tree.parent / "secret.txt")
    (tree / "zdir" / "dangling").symlink_to(tree / "nowhere")
    (tree / "zdir" / "inside").symlink_to(tree / "adir")
    status, body = get(listing, "/zdir/")
    assert status == 200
    page = parse(body)
    assert page.hrefs == ["../", "inside/"]
    for name in ("etc", "passwd", "secret", "dangling"):
        assert f'href="{name}' not in body.decode()
    # Not followable either, with or without the listing handler in front.
    assert get(listing, "/zdir/etc/")[0] == 404
    assert get(listing, "/zdir/etc/passwd")[0] == 404
    assert get(listing, "/zdir/passwd")[0] == 404
    assert get(listing, "/zdir/secret")[0] == 404
    status, body = get(listing, "/zdir/inside/")
    assert status == 200
    assert parse(body).hrefs == ["../", "inner.txt"]


@pytest.mark.parametrize(
    "path", ["/../", "/../../", "/adir/../../", "/%2e%2e/", "/adir/%2E%2E/%2e%2e/", "//../"]
)
def test_dot_dot_stays_in_root(listing: http.client.HTTPConnection, path: str) -> None:
    status, body = get(listing, path)
    assert status == 200
    page = parse(body)
    assert page.title == "Index of /"
    assert "../" not in page.hrefs
    assert "secret.txt" not in body.decode()
    assert "root/" not in page.hrefs
    assert "adir/" in page.hrefs
    assert get(listing, "/../secret.txt")[0] == 404
    assert get(listing, "/%2e%2e/secret.txt")[0] == 404


def test_filesystem_argument_and_repr(tree: Path) -> None:
    fs = OSFilesystem(tree)
    handler = DirectoryListingHandler(fs, index=("default.htm",))
    assert handler.filesystem is fs
    assert handler.index == ("default.htm",)
    assert "DirectoryListingHandler" in repr(handler)
    html = handler.render("/withindex", fs.listdir("/withindex"))
    assert 'href="index.html"' in html
    assert "Index of /withindex/" in html
