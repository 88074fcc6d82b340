"""Path escapes against ``medusa serve``: nothing outside the served root is ever sent.

Dot segments (plain and percent-encoded, with encoded slashes and backslashes), NUL bytes,
absolute paths, absolute-form request targets, and symlinks inside the tree that point to
``/etc``, to ``/etc/passwd`` or outside the root through ``..``: each gets 400, 403 or 404
and never the outside file's content. Symlinks to files and directories inside the root
work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.conftest import Medusa, Runner, curl

pytestmark = pytest.mark.e2e

SECRET = b"top secret, outside the served root\n"
PASSWD = Path("/etc/passwd")


@dataclass
class Escapes:
    server: Medusa
    root: Path
    forbidden: list[bytes]


@pytest.fixture(scope="module")
def escapes(
    backend: str, module_runner: Runner, tmp_path_factory: pytest.TempPathFactory
) -> Escapes:
    base = tmp_path_factory.mktemp("escapes")
    (base / "secret.txt").write_bytes(SECRET)
    (base / "outside").mkdir()
    (base / "outside" / "other.txt").write_bytes(SECRET)
    root = base / "root"
    root.mkdir()
    (root / "hello.txt").write_bytes(b"hello\n")
    (root / "sub").mkdir()
    (root / "sub" / "inner.txt").write_bytes(b"inner\n")
    (root / "sub" / "index.html").write_bytes(b"<p>sub</p>\n")
    os.symlink("/etc", root / "etc_link")
    os.symlink("/etc/passwd", root / "passwd_link")
    os.symlink("../secret.txt", root / "secret_link")
    os.symlink("../../secret.txt", root / "sub" / "deep_secret_link")
    os.symlink(str(base / "outside"), root / "outside_dir_link")
    os.symlink("hello.txt", root / "good_link")
    os.symlink("sub", root / "good_dir_link")
    os.symlink(str(root / "sub" / "inner.txt"), root / "good_abs_link")
    os.symlink("/nonexistent/nowhere", root / "dangling_link")
    forbidden = [SECRET]
    if PASSWD.exists():
        forbidden.append(PASSWD.read_bytes()[:64])
    server = module_runner.start(
        "serve", str(root), "--http", "127.0.0.1:0", "--backend", backend, "--grace", "5"
    )
    return Escapes(server, root, forbidden)


TARGETS = [
    "/../../etc/passwd",
    "/../secret.txt",
    "/sub/../../secret.txt",
    "/%2e%2e/%2e%2e/etc/passwd",
    "/%2E%2E/secret.txt",
    "/.%2e/secret.txt",
    "/..%2f..%2fetc/passwd",
    "/..%2fsecret.txt",
    "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
    "/sub/%2e%2e%2f%2e%2e%2fsecret.txt",
    "/..\\..\\etc\\passwd",
    "/..%5c..%5cetc%5cpasswd",
    "/sub\\..\\..\\secret.txt",
    "/%5c..%5csecret.txt",
    "/etc/passwd%00",
    "/hello.txt%00../../etc/passwd",
    "/%00",
    "//etc/passwd",
    "/%2fetc%2fpasswd",
    "/etc_link/passwd",
    "/etc_link/",
    "/etc_link",
    "/sub/../etc_link/passwd",
    "/passwd_link",
    "/secret_link",
    "/sub/deep_secret_link",
    "/outside_dir_link/other.txt",
    "/dangling_link",
    "http://127.0.0.1/../../etc/passwd",
    "http://127.0.0.1/%2e%2e/secret.txt",
    "/./../secret.txt",
    "/sub/./../.././secret.txt",
    "/%252e%252e/secret.txt",
]


ROOT_TARGETS = ["/..", "/%2e%2e", "/sub/..%2f..", "/../../"]
"""Dot segments above the root name the root itself (RFC 3986 §5.2.4 stops at the root):
a redirect to the slash form or a refusal (the root has no index.html) is fine."""


def _fetch(escapes: Escapes, target: str) -> tuple[int, bytes]:
    endpoint = escapes.server.endpoint
    with endpoint.client() as client:
        client.send(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = client.wait_closed()
    for secret in escapes.forbidden:
        assert secret not in data, f"{target} leaked a file outside the root"
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    return int(data[9:12]), data


@pytest.mark.parametrize("target", TARGETS)
def test_escape_refused(escapes: Escapes, target: str) -> None:
    status, data = _fetch(escapes, target)
    assert status in (400, 403, 404), f"{target}: {data[:200]!r}"


@pytest.mark.parametrize("target", ROOT_TARGETS)
def test_dots_above_root_stay_in_root(escapes: Escapes, target: str) -> None:
    status, data = _fetch(escapes, target)
    assert status in (301, 400, 403, 404), f"{target}: {data[:200]!r}"


@pytest.mark.parametrize("target", ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd"])
def test_escape_with_curl_path_as_is(escapes: Escapes, target: str) -> None:
    result = curl("--path-as-is", escapes.server.endpoint.url + target)
    assert result.status in (400, 403, 404)
    for secret in escapes.forbidden:
        assert secret not in result.body


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("/good_link", b"hello\n"),
        ("/good_dir_link/inner.txt", b"inner\n"),
        ("/good_dir_link/", b"<p>sub</p>\n"),
        ("/good_abs_link", b"inner\n"),
        ("/sub/../hello.txt", b"hello\n"),
        ("/sub/%2e%2e/hello.txt", b"hello\n"),
    ],
)
def test_inside_links_work(escapes: Escapes, path: str, content: bytes) -> None:
    endpoint = escapes.server.endpoint
    with endpoint.client() as client:
        client.send(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        response = client.read_response()
    assert response.status == 200, path
    assert response.body == content


def test_head_of_escape_refused(escapes: Escapes) -> None:
    result = curl("-I", escapes.server.endpoint.url + "/passwd_link")
    assert result.status in (403, 404)


def test_server_still_serves(escapes: Escapes) -> None:
    assert curl(escapes.server.endpoint.url + "/hello.txt").body == b"hello\n"


def test_site_files_unchanged(escapes: Escapes) -> None:
    """The refused requests created or removed nothing."""
    assert (escapes.root / "hello.txt").read_bytes() == b"hello\n"
    assert sorted(p.name for p in escapes.root.iterdir()) == sorted(
        [
            "hello.txt",
            "sub",
            "etc_link",
            "passwd_link",
            "secret_link",
            "outside_dir_link",
            "good_link",
            "good_dir_link",
            "good_abs_link",
            "dangling_link",
        ]
    )
