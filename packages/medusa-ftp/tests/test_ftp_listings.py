"""LIST's directory lines: the descriptor-relative listing of an OSFilesystem gives exactly
what core's list_directory gives (links inside, outside and dangling included), and its
errors name virtual paths only."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import pytest

from medusa.core.filesys import OSFilesystem
from medusa.core.listing import SIX_MONTHS, list_directory
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


def test_links_leading_outside_are_refused_whatever_their_target(
    fs: OSFilesystem, tmp_path: Path
) -> None:
    root = Path(fs.root)
    os.symlink(tmp_path / "outside" / "missing", root / "out-missing")
    for name in ("link-out-dir", "link-out", "out-missing"):  # a directory, a file, nothing
        with pytest.raises(PathEscapeError):
            directory_lines(fs, name, "unix")
    assert directory_lines(fs, "/link-dir", "unix") == directory_lines(fs, "/sub", "unix")


_MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _expected_date(mtime: float, now: float) -> str:
    """The ``ls -l`` date column, computed here independently of core's cached one."""
    t = time.gmtime(math.floor(mtime))
    if now - SIX_MONTHS < mtime <= now:
        return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}"
    return f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d}  {t.tm_year:4d}"


def test_cached_date_columns_are_exact(tmp_path: Path) -> None:
    """Many modification times sharing minutes, across minute, day, year and six-month
    boundaries, before 1970 and in the future: every line's date is the right one."""
    root = tmp_path / "dates"
    root.mkdir()
    now = time.time()
    minute = math.floor(now / 60) * 60
    times = [
        minute,
        minute + 59.999,
        minute - 0.001,
        minute + 60,
        now - SIX_MONTHS + 30,
        now - SIX_MONTHS - 30,
        now + 120,
        -0.5,
        -60.25,
        951_782_399.5,  # the last second of 2000-02-28
        951_782_400.0,
        1_704_067_199.999,  # the last moment of 2023
    ]
    for number, mtime in enumerate(times):
        path = root / f"f{number:02d}"
        path.write_bytes(b"")
        os.utime(path, (mtime, mtime))
    fs = OSFilesystem(root)
    for _ in range(2):  # formatted the first time, from the caches the second
        lines = directory_lines(fs, "/", "unix")
        assert len(lines) == len(times)
        listed_now = time.time()
        for number, line in enumerate(lines):
            st = os.lstat(root / f"f{number:02d}")
            date = line.split(None, 5)[5].rsplit(" ", 1)[0]
            # ``now`` moved on a little between the listing and here: recompute with both.
            assert date in (
                _expected_date(st.st_mtime, now),
                _expected_date(st.st_mtime, listed_now),
            ), (number, line)
            assert line.endswith(f" f{number:02d}")
