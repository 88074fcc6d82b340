"""The small-file cache follows changes on disk (medusa.http.filecache, filewatch): every
kind of change made before a request is seen by that request, with inotify reporting
them (no ``stat`` per request) and with the ``stat`` check where no watch is kept."""

from __future__ import annotations

import http.client
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from medusa.core.testing import ServerThread, loop_backends
from medusa.http import FileHandler, HTTPServer

Get = Callable[[str], tuple[int, bytes]]


@pytest.fixture(params=loop_backends())
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def serve(root: Path, backend: str, handler: FileHandler | None = None) -> Iterator[Get]:
    handlers = [handler] if handler is not None else []
    server = HTTPServer(("127.0.0.1", 0), root=None if handler else root,
                        handlers=handlers, access_log=None)  # fmt: skip
    with ServerThread([server], backend=backend):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)

        def get(path: str) -> tuple[int, bytes]:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, response.read()

        try:
            yield get
        finally:
            connection.close()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "page.txt").write_bytes(b"version 1")
    (root / "top.txt").write_bytes(b"top 1")
    return root


def cached(get: Get, path: str, body: bytes) -> None:
    """Request ``path`` twice (read, then from the cache), expecting ``body``."""
    for _ in range(2):
        assert get(path) == (200, body)


def test_a_file_rewritten_in_place_with_the_same_size(site: Path, backend: str) -> None:
    for get in serve(site, backend):
        cached(get, "/a/b/page.txt", b"version 1")
        with open(site / "a" / "b" / "page.txt", "r+b") as f:
            f.write(b"VERSION 2")
        assert get("/a/b/page.txt") == (200, b"VERSION 2")


def test_a_file_replaced_by_rename_then_deleted(site: Path, backend: str) -> None:
    for get in serve(site, backend):
        cached(get, "/top.txt", b"top 1")
        (site / "new.txt").write_bytes(b"top 2, longer")
        (site / "new.txt").replace(site / "top.txt")
        assert get("/top.txt") == (200, b"top 2, longer")
        (site / "top.txt").unlink()
        assert get("/top.txt")[0] == 404


def test_a_directory_on_the_way_renamed(site: Path, backend: str) -> None:
    """The file's own directory is unchanged; a directory above it moves away, and
    another takes its name."""
    for get in serve(site, backend):
        cached(get, "/a/b/page.txt", b"version 1")
        (site / "a").rename(site / "old")
        assert get("/a/b/page.txt")[0] == 404
        (site / "a" / "b").mkdir(parents=True)
        (site / "a" / "b" / "page.txt").write_bytes(b"another")
        assert get("/a/b/page.txt") == (200, b"another")


def test_the_stat_check_without_a_watch(site: Path, backend: str) -> None:
    """Without a watch (a filesystem other than OSFilesystem, or no inotify), each use
    checks stat."""
    handler = FileHandler(site)
    assert handler.cache is not None
    handler.cache.watch = None
    for get in serve(site, backend, handler):
        cached(get, "/top.txt", b"top 1")
        os.truncate(site / "top.txt", 0)
        (site / "top.txt").write_bytes(b"top 3")
        assert get("/top.txt") == (200, b"top 3")
