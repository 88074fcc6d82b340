"""HTTP servers from medusa.toml: the [[server.handler]] chain and its errors."""

from __future__ import annotations

import http.client
from pathlib import Path

import pytest

from medusa.core.config import build_config
from medusa.core.options import ConfigError
from medusa.core.testing import ServerThread
from medusa.http import FileHandler, HTTPServer

TYPES = {"http": HTTPServer}


def config(tmp_path: Path, server: dict[str, object]) -> list[HTTPServer]:
    built = build_config(
        {"server": [{"type": "http", "listen": "127.0.0.1:0", "access_log": False, **server}]},
        source="medusa.toml",
        base_dir=str(tmp_path),
        server_types=TYPES,
    )
    return [s for s in built.servers if isinstance(s, HTTPServer)]


def test_handler_tables_form_the_chain_in_order(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.txt").write_bytes(b"from a")
    (tmp_path / "b" / "x.txt").write_bytes(b"from b")
    (tmp_path / "b" / "y.txt").write_bytes(b"only b")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "z.txt").write_bytes(b"root c")
    [server] = config(
        tmp_path,
        {
            "root": "c",
            "handler": [
                {"type": "files", "root": "a", "index": ["x.txt"]},
                {"type": "files", "root": "b"},
            ],
        },
    )
    assert [type(h) for h in server.handlers] == [FileHandler] * 3
    with ServerThread([server]):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        # The first handler takes every request it matches (a file handler matches all).
        for path, body in (("/x.txt", b"from a"), ("/", b"from a")):
            conn.request("GET", path)
            response = conn.getresponse()
            assert response.read() == body
        conn.request("GET", "/y.txt")
        response = conn.getresponse()
        response.read()
        assert response.status == 404
        conn.close()


@pytest.mark.parametrize(
    ("handler", "key", "reason"),
    [
        ({"root": "."}, "server[0].handler[0].type", "missing"),
        (
            {"type": "nope"},
            "server[0].handler[0].type",
            "unknown handler 'nope' (known: app, auth, files",
        ),
        ({"type": "files"}, "server[0].handler[0].root", "missing"),
        ({"type": "files", "root": 3}, "server[0].handler[0].root", "expected a string"),
        ({"type": "files", "root": ".", "colour": 1}, "server[0].handler[0].colour", "unknown"),
        ({"type": "files", "root": "missing"}, "server[0].handler[0]", "not a directory"),
    ],
)
def test_bad_handler_tables(
    tmp_path: Path, handler: dict[str, object], key: str, reason: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, {"handler": [handler]})
    assert caught.value.source == "medusa.toml"
    assert caught.value.key == key
    assert reason in caught.value.reason


def test_handler_must_be_an_array_of_tables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, {"handler": "files"})
    assert caught.value.key == "server[0].handler"


def test_redirect_handler_from_config(tmp_path: Path) -> None:
    [server] = config(
        tmp_path,
        {
            "root": ".",
            "handler": [
                {
                    "type": "redirect",
                    "rules": [["/old/(.*)", "/new/\\1"], ["/gone", "/elsewhere", 308]],
                    "status": 302,
                }
            ],
        },
    )
    with ServerThread([server]):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for path, status, location in (
            ("/old/a/b?q=1", 302, "/new/a/b?q=1"),
            ("/gone", 308, "/elsewhere"),
        ):
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            assert (response.status, response.getheader("Location")) == (status, location)
        conn.close()


@pytest.mark.parametrize(
    ("rules", "reason"),
    [
        (["/a"], "rules[0]: expected [PATTERN, LOCATION]"),
        ([["(", "/x"]], "rule"),
        ([["/a", "/b", 200]], "not a redirection status"),
    ],
)
def test_bad_redirect_rules(tmp_path: Path, rules: list[object], reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, {"handler": [{"type": "redirect", "rules": rules}]})
    assert caught.value.key == "server[0].handler[0]"
    assert reason in caught.value.reason


def test_listing_handler_from_config(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a b.txt").write_bytes(b"x")
    [server] = config(tmp_path, {"root": ".", "handler": [{"type": "listing", "root": "."}]})
    with ServerThread([server]):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/docs/")
        response = conn.getresponse()
        page = response.read().decode()
        assert response.status == 200
        assert "Index of /docs/" in page
        assert 'href="a%20b.txt"' in page
        conn.request("GET", "/docs/a%20b.txt/")
        response = conn.getresponse()
        response.read()
        assert response.status == 404
        conn.close()


def test_status_handler_from_config(tmp_path: Path) -> None:
    [server] = config(tmp_path, {"handler": [{"type": "status", "path": "/server-status"}]})
    with ServerThread([server]):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/server-status?format=json")
        response = conn.getresponse()
        assert response.status == 200
        assert b'"servers"' in response.read()
        conn.close()


def test_auth_handler_from_config(tmp_path: Path) -> None:
    from medusa.core.passwords import set_password

    (tmp_path / "private").mkdir()
    (tmp_path / "private" / "p.txt").write_bytes(b"secret page")
    set_password(str(tmp_path / "users.passwd"), "alice", "wonderland")
    [server] = config(
        tmp_path,
        {
            "handler": [
                {
                    "type": "auth",
                    "passwords": "users.passwd",
                    "realm": "Private",
                    "handler": {"type": "files", "root": "private"},
                }
            ]
        },
    )
    with ServerThread([server]):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/p.txt")
        response = conn.getresponse()
        response.read()
        assert response.status == 401
        assert response.getheader("WWW-Authenticate") == 'Basic realm="Private", charset="UTF-8"'
        conn.request("GET", "/p.txt", headers={"Authorization": "Basic YWxpY2U6d29uZGVybGFuZA=="})
        response = conn.getresponse()
        assert response.status == 200
        assert response.read() == b"secret page"
        conn.close()


@pytest.mark.parametrize(
    ("handler", "key", "reason"),
    [
        ({"type": "auth", "passwords": "nope"}, "server[0].handler[0].handler", "missing"),
        (
            {"type": "auth", "passwords": "nope", "handler": {"type": "files", "root": "."}},
            "server[0].handler[0]",
            "no such file",
        ),
        (
            {"type": "auth", "passwords": "x", "handler": {"type": "files", "root": 1}},
            "server[0].handler[0].handler.root",
            "expected a string",
        ),
    ],
)
def test_bad_auth_tables(tmp_path: Path, handler: dict[str, object], key: str, reason: str) -> None:
    (tmp_path / "x").write_text("")
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, {"handler": [handler]})
    assert caught.value.key == key
    assert reason in caught.value.reason


@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
def test_virtual_hosts_from_config(tmp_path: Path, backend: str) -> None:
    for name in ("a", "b", "other"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.html").write_text(f"site {name}")
    [server] = config(
        tmp_path,
        {
            "handler": [
                {
                    "type": "vhost",
                    "hosts": {
                        "a.example": [{"type": "files", "root": "a"}],
                        "B.Example": [{"type": "status"}, {"type": "files", "root": "b"}],
                    },
                    "default": [{"type": "files", "root": "other"}],
                }
            ]
        },
    )
    with ServerThread([server], backend=backend):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        for host, path, body in (
            ("a.example", "/", b"site a"),
            ("a.example:8080", "/", b"site a"),
            ("b.example.", "/", b"site b"),
            ("unknown.example", "/", b"site other"),
        ):
            conn.request("GET", path, headers={"Host": host})
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, body), host
        conn.request("GET", "/status?format=json", headers={"Host": "b.example"})
        response = conn.getresponse()
        assert b'"servers"' in response.read()
        conn.request("GET", "/status", headers={"Host": "a.example"})
        response = conn.getresponse()
        response.read()
        assert response.status == 404  # a's chain has no status page (and no such file)
        conn.close()


def test_bad_vhost_tables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        config(
            tmp_path,
            {"handler": [{"type": "vhost", "hosts": {"a.example": [{"type": "nope"}]}}]},
        )
    assert caught.value.key == "server[0].handler[0].hosts.a.example[0].type"
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, {"handler": [{"type": "vhost", "hosts": {"bad host": []}}]})
    assert "invalid host name" in caught.value.reason
