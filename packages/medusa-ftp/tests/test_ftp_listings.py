"""LIST's directory lines: the descriptor-relative listing of an OSFilesystem gives exactly
what core's list_directory gives (links inside, outside and dangling included), and its
errors name virtual paths only."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from medusa.core.filesys import OSFilesystem
from medusa.core.listing import list_directory
from medusa.core.vfs import PathEscapeError
from medusa.ftp.listings import directory_lines, list_lines


@pytest.fixture
def fs(tmp_path: Path) -> OSFilesystem:
    root = tmp_path / "root"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"a" * 1234)
    (root / "sub" / "x.bin").write_bytes(b"x")
    (root / "name with space").write_bytes(b"")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret").write_bytes(b"s")
    os.symlink("a.txt", root / "link-in")
    os.symlink("sub", root / "link-dir")
    os.symlink(tmp_path / "outside" / "secret", root / "link-out")
    os.symlink(tmp_path / "outside", root / "link-out-dir")
    os.symlink("missing", root / "dangling")
    return OSFilesystem(root)


@pytest.mark.parametrize("style", ["unix", "msdos"])
@pytest.mark.parametrize("path", ["/", ".", "sub", "/sub/", "link-dir", "sub/deeper"])
def test_same_lines_as_core(fs: OSFilesystem, path: str, style: str) -> None:
    assert style in ("unix", "msdos")
    ours = directory_lines(fs, path, style)  # type: ignore[arg-type]
    assert ours == list_directory(fs, path, style)  # type: ignore[arg-type]
    if path in ("/", "."):
        assert len(ours) == 8
    if path in ("/", ".") and style == "unix":
        assert any(line.endswith(" link-in -> /a.txt") for line in ours)
        assert any(line.endswith(" link-out") for line in ours)  # the bare name


def test_errors_name_virtual_paths(fs: OSFilesystem, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as missing:
        directory_lines(fs, "/nope", "unix")
    assert missing.value.filename == "/nope"
    with pytest.raises(NotADirectoryError) as not_dir:
        directory_lines(fs, "a.txt", "unix")
    assert not_dir.value.filename == "/a.txt"
    with pytest.raises(PathEscapeError) as escape:
        directory_lines(fs, "link-out-dir", "unix")
    assert str(tmp_path) not in str(escape.value)
    assert list_lines(fs, "-la sub") == directory_lines(fs, "sub", "unix")
