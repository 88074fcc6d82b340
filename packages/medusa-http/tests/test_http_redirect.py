"""The redirecting handler through real sockets on both event loops: each redirection
status, group substitution, query strings, fall-through to the next handler, header
injection attempts, and the checks made at construction."""

from __future__ import annotations

import http.client
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from medusa.core.testing import ServerThread
from medusa.http import FileHandler, HTTPServer
from medusa.http.redirect import RedirectHandler, RedirectRule

BACKENDS = ["asyncio", "uvloop"]


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HTTPServer]:
    (tmp_path / "file.txt").write_bytes(b"file body")
    permanent = RedirectHandler(
        [
            RedirectRule("/s301", "/to/301", 301),
            RedirectRule("/s302", "/to/302", 302),
            RedirectRule("/s307", "/to/307", 307),
            RedirectRule("/s308", "/to/308", 308),
            RedirectRule("/old/(.*)", r"/new/\1"),
            RedirectRule(r"/user/(?P<name>\w+)/(?P<page>\d+)", r"/u/\g<page>/\g<name>"),
            RedirectRule("/fixed-query/(.*)", r"/q?from=\1"),
            RedirectRule("/external/(.*)", r"https://example.com/\1"),
            RedirectRule("/inject", "/safe\r\nSet-Cookie: evil=1"),
            RedirectRule("(?s)/echo-path/(.*)", r"/landing/\1"),  # "." matches the decoded CR/LF
            RedirectRule("/unicode", "/café au lait"),
        ],
    )
    temporary = RedirectHandler([("/temp/(.*)", r"/t/\1")], status=307)
    srv = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[permanent, temporary, FileHandler(tmp_path)],
        access_log=None,
    )
    with ServerThread([srv], backend=request.param):
        yield srv


def fetch(
    server: HTTPServer, target: str, method: str = "GET"
) -> tuple[http.client.HTTPResponse, bytes]:
    """Send one request with http.client (which does not follow redirects)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.request(method, target)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    return response, body


def raw_head(server: HTTPServer, target: str) -> bytes:
    """Return the raw status line and header block of a GET for ``target``."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return data.partition(b"\r\n\r\n")[0]


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_each_status(server: HTTPServer, status: int) -> None:
    response, body = fetch(server, f"/s{status}")
    assert response.status == status
    assert response.getheader("Location") == f"/to/{status}"
    assert response.getheader("Content-Type") == "text/html; charset=utf-8"
    assert b"/to/%d" % status in body
    assert str(status).encode() in body


def test_default_status_is_301(server: HTTPServer) -> None:
    response, _ = fetch(server, "/old/page.html")
    assert response.status == 301


def test_handler_default_status(server: HTTPServer) -> None:
    response, _ = fetch(server, "/temp/x", method="POST")
    assert response.status == 307
    assert response.getheader("Location") == "/t/x"


def test_numbered_group_substitution(server: HTTPServer) -> None:
    response, _ = fetch(server, "/old/a/b/c.html")
    assert response.getheader("Location") == "/new/a/b/c.html"


def test_named_group_substitution(server: HTTPServer) -> None:
    response, _ = fetch(server, "/user/alice/42")
    assert response.status == 301
    assert response.getheader("Location") == "/u/42/alice"


def test_absolute_location(server: HTTPServer) -> None:
    response, _ = fetch(server, "/external/docs/index.html")
    assert response.getheader("Location") == "https://example.com/docs/index.html"


def test_query_preserved(server: HTTPServer) -> None:
    response, _ = fetch(server, "/old/search?q=medusa&page=2")
    assert response.getheader("Location") == "/new/search?q=medusa&page=2"


def test_template_query_wins(server: HTTPServer) -> None:
    response, _ = fetch(server, "/fixed-query/home?dropped=1")
    assert response.getheader("Location") == "/q?from=home"


def test_head_has_location_and_no_body(server: HTTPServer) -> None:
    response, body = fetch(server, "/old/x", method="HEAD")
    assert response.status == 301
    assert response.getheader("Location") == "/new/x"
    assert body == b""


def test_no_match_falls_through(server: HTTPServer) -> None:
    response, body = fetch(server, "/file.txt")
    assert response.status == 200
    assert response.getheader("Location") is None
    assert body == b"file body"
    response, _ = fetch(server, "/old")  # the pattern must match the whole path
    assert response.status == 404
    assert response.getheader("Location") is None


def test_non_ascii_and_spaces_are_percent_encoded(server: HTTPServer) -> None:
    response, _ = fetch(server, "/unicode")
    assert response.getheader("Location") == "/caf%C3%A9%20au%20lait"
    response, _ = fetch(server, "/old/a%20b/%C3%A9")
    assert response.getheader("Location") == "/new/a%20b/%C3%A9"


def test_template_cannot_inject_header(server: HTTPServer) -> None:
    response, _ = fetch(server, "/inject")
    assert response.status == 301
    assert response.getheader("Set-Cookie") is None
    assert response.getheader("Location") == "/safe%0D%0ASet-Cookie:%20evil=1"
    head = raw_head(server, "/inject")
    assert b"\r\nSet-Cookie" not in head
    assert head.count(b"\r\n") == head.count(b"\n")  # no bare LF either


def test_path_cannot_inject_header(server: HTTPServer) -> None:
    head = raw_head(server, "/echo-path/x%0D%0ASet-Cookie:%20evil=1%0A%7F")
    assert head.startswith(b"HTTP/1.1 301 ")
    assert b"\r\nSet-Cookie" not in head
    assert b"Location: /landing/x%0D%0ASet-Cookie:%20evil=1%0A%7F\r\n" in head + b"\r\n"
    assert not any((b < 0x20 and b not in (0x0D, 0x0A)) or b == 0x7F for b in head)


def test_keep_alive_after_redirect(server: HTTPServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        for target, status in (("/s302", 302), ("/file.txt", 200), ("/s308", 308)):
            conn.request("GET", target)
            response = conn.getresponse()
            response.read()
            assert response.status == status
    finally:
        conn.close()


# -- construction ------------------------------------------------------------------------


def test_bad_regex_raises() -> None:
    with pytest.raises(ValueError, match=r"invalid regular expression '/\(unclosed'"):
        RedirectHandler([("/(unclosed", "/x")])


@pytest.mark.parametrize("status", [200, 300, 303, 304, 404, 0, True])
def test_bad_default_status_raises(status: int) -> None:
    with pytest.raises(ValueError, match="not a redirection status"):
        RedirectHandler([("/a", "/b")], status=status)


@pytest.mark.parametrize("status", [200, 303, 500])
def test_bad_rule_status_raises(status: int) -> None:
    with pytest.raises(ValueError, match=r"redirect rule 1 .*not a redirection status"):
        RedirectHandler([RedirectRule("/a", "/b"), RedirectRule("/c", "/d", status)])


@pytest.mark.parametrize("template", [r"/\2", r"/\g<missing>", r"/\g<1"])
def test_bad_group_reference_raises(template: str) -> None:
    with pytest.raises(ValueError, match="invalid Location template"):
        RedirectHandler([("/(?P<one>.*)", template)])


def test_malformed_rule_raises() -> None:
    with pytest.raises(ValueError, match="expected a"):
        RedirectHandler([("/a", "/b", 302)])  # type: ignore[arg-type]


def test_valid_rules_are_kept() -> None:
    pairs = RedirectHandler([("/a(.*)", r"/b\1")], status=302)
    assert pairs.rules == (RedirectRule("/a(.*)", r"/b\1", 302),)
    rules = RedirectHandler([RedirectRule("/c", "/d", 308), RedirectRule("/e", "/f")])
    assert rules.rules == (RedirectRule("/c", "/d", 308), RedirectRule("/e", "/f", 301))
