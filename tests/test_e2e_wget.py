"""``wget --mirror`` of a served tree: the mirror equals the tree byte for byte.

The tree (see :func:`tests.conftest.site_files`) has several directories, each with an
``index.html`` linking its files, binary and empty files, a file with a space in its name
and files larger than one write (the file-producer path). A second mirror run revalidates
the start page with If-Modified-Since (304) and must not change anything.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from tests.conftest import WGET, Medusa, read_tree, site_files

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(WGET is None, reason="wget is not installed (apt-get install wget)"),
]


def _mirror(url: str, out: Path) -> subprocess.CompletedProcess[str]:
    assert WGET is not None
    return subprocess.run(
        [
            WGET,
            "--mirror",
            "--no-parent",
            "--no-host-directories",
            "--server-response",
            "--no-proxy",
            "-e",
            "robots=off",
            "--tries=1",
            "--timeout=20",
            "--directory-prefix",
            str(out),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_wget_mirror_equals_tree(file_server: Medusa, site: Path, tmp_path: Path) -> None:
    out = tmp_path / "mirror"
    first = _mirror(file_server.endpoint.url + "/", out)
    assert first.returncode == 0, first.stderr[-4000:]
    served = read_tree(site)
    assert served == site_files()
    mirrored = read_tree(out)
    assert sorted(mirrored) == sorted(served), first.stderr[-4000:]
    for name, content in served.items():
        assert mirrored[name] == content, f"{name} differs"
    # wget followed no broken link and fetched each file once
    assert " 404 " not in first.stderr
    assert first.stderr.count("HTTP/1.1 200 OK") == len(served)

    second = _mirror(file_server.endpoint.url + "/", out)
    assert second.returncode == 0, second.stderr[-4000:]
    # the start page is revalidated with If-Modified-Since (wget stops there on a 304)
    assert "HTTP/1.1 304 Not Modified" in second.stderr, second.stderr[-4000:]
    assert "200 OK" not in second.stderr
    assert read_tree(out) == served
