"""Tests of medusa.core.listing: exact Unix and MS-DOS lines, and listings of real directories."""

from __future__ import annotations

import calendar
import os
import stat
import time
from pathlib import Path

import pytest

from medusa.core.filesys import OSFilesystem, PathEscapeError
from medusa.core.listing import SIX_MONTHS, list_directory, msdos_line, unix_line

# 2024-03-05 14:07:09 UTC
MTIME = calendar.timegm((2024, 3, 5, 14, 7, 9, 0, 0, 0))
# 2001-09-09 01:46:40 UTC
OLD = 1_000_000_000


def make_stat(
    mode: int,
    *,
    size: int = 1234,
    mtime: float = MTIME,
    nlink: int = 1,
    uid: int = 1000,
    gid: int = 100,
) -> os.stat_result:
    return os.stat_result((mode, 0, 0, nlink, uid, gid, size, mtime, mtime, mtime))


FILE = stat.S_IFREG | 0o644
DIR = stat.S_IFDIR | 0o755
LINK = stat.S_IFLNK | 0o777


# -- unix_line -----------------------------------------------------------------------------------


def test_unix_recent_file() -> None:
    line = unix_line("notes.txt", make_stat(FILE), now=MTIME + 86400)
    assert line == "-rw-r--r--   1 1000     100          1234 Mar  5 14:07 notes.txt"


def test_unix_old_file_shows_year() -> None:
    line = unix_line("notes.txt", make_stat(FILE), now=MTIME + 365 * 86400)
    assert line == "-rw-r--r--   1 1000     100          1234 Mar  5  2024 notes.txt"


def test_unix_six_month_boundary() -> None:
    st = make_stat(FILE)
    assert unix_line("f", st, now=MTIME + SIX_MONTHS - 1).endswith("Mar  5 14:07 f")
    assert unix_line("f", st, now=MTIME + SIX_MONTHS).endswith("Mar  5  2024 f")
    assert unix_line("f", st, now=MTIME).endswith("Mar  5 14:07 f")


def test_unix_future_file_shows_year() -> None:
    assert unix_line("f", make_stat(FILE), now=MTIME - 60).endswith("Mar  5  2024 f")


def test_unix_default_now_is_current_time() -> None:
    recent = make_stat(FILE, mtime=time.time() - 60)
    assert ":" in unix_line("f", recent).split()[-2]
    assert unix_line("f", make_stat(FILE, mtime=OLD)).endswith("Sep  9  2001 f")


def test_unix_two_digit_day_and_midnight() -> None:
    t = calendar.timegm((2023, 12, 25, 0, 5, 0, 0, 0, 0))
    assert unix_line("x", make_stat(FILE, mtime=t), now=t + 1).endswith("Dec 25 00:05 x")


def test_unix_names_for_owner_and_group() -> None:
    line = unix_line("notes.txt", make_stat(FILE), now=MTIME, owner="ftp", group="nogroup")
    assert line == "-rw-r--r--   1 ftp      nogroup      1234 Mar  5 14:07 notes.txt"
    line = unix_line("n", make_stat(FILE, uid=0, gid=0), now=MTIME, owner="averylongname")
    assert line == "-rw-r--r--   1 averylongname 0            1234 Mar  5 14:07 n"


def test_unix_directory_and_link_modes() -> None:
    line = unix_line("pub", make_stat(DIR, size=4096, nlink=12), now=MTIME)
    assert line == "drwxr-xr-x  12 1000     100          4096 Mar  5 14:07 pub"
    line = unix_line("l -> /pub", make_stat(LINK, size=3), now=MTIME)
    assert line == "lrwxrwxrwx   1 1000     100             3 Mar  5 14:07 l -> /pub"
    line = unix_line("s", make_stat(stat.S_IFREG | 0o4755, size=10**10), now=MTIME)
    assert line == "-rwsr-xr-x   1 1000     100      10000000000 Mar  5 14:07 s"


def test_unix_dates_are_utc_and_english(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kathmandu")
    if hasattr(time, "tzset"):
        time.tzset()
    try:
        assert unix_line("f", make_stat(FILE), now=MTIME).endswith("Mar  5 14:07 f")
        assert msdos_line("f", make_stat(FILE)).startswith("03-05-24  02:07PM")
    finally:
        monkeypatch.delenv("TZ")
        if hasattr(time, "tzset"):
            time.tzset()


def test_unrepresentable_time_does_not_break_a_listing() -> None:
    st = make_stat(FILE, mtime=1e20)
    assert unix_line("f", st, now=MTIME).endswith(" f")
    assert msdos_line("f", st).endswith(" f")


# -- msdos_line ----------------------------------------------------------------------------------


def test_msdos_file() -> None:
    line = msdos_line("notes.txt", make_stat(FILE))
    assert line == "03-05-24  02:07PM                 1234 notes.txt"


def test_msdos_directory() -> None:
    line = msdos_line("pub", make_stat(DIR, size=4096))
    assert line == "03-05-24  02:07PM       <DIR>          pub"


def test_msdos_name_column_is_fixed() -> None:
    for st in (make_stat(DIR), make_stat(FILE, size=0), make_stat(FILE, size=123456789012)):
        assert msdos_line("NAME", st).index("NAME") == 39


@pytest.mark.parametrize(
    ("hour", "minute", "shown"),
    [
        (0, 0, "12:00AM"),
        (0, 59, "12:59AM"),
        (1, 5, "01:05AM"),
        (11, 59, "11:59AM"),
        (12, 0, "12:00PM"),
        (13, 30, "01:30PM"),
        (23, 59, "11:59PM"),
    ],
)
def test_msdos_twelve_hour_clock(hour: int, minute: int, shown: str) -> None:
    t = calendar.timegm((2009, 1, 2, hour, minute, 0, 0, 0, 0))
    assert msdos_line("f", make_stat(FILE, size=1, mtime=t)) == (
        f"01-02-09  {shown}                    1 f"
    )


# -- list_directory ------------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/ with a.txt, sub/, links inside and outside; fixed modes and times."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    root = tmp_path / "root"
    root.mkdir()
    (root / "a.txt").write_bytes(b"hello")
    (root / "a.txt").chmod(0o644)
    (root / "sub").mkdir()
    (root / "sub").chmod(0o755)
    (root / "sub" / "inner.bin").write_bytes(b"x" * 300)
    os.symlink("a.txt", root / "inlink")
    os.symlink("sub", root / "dirlink")
    os.symlink(str(outside / "secret"), root / "outlink")
    os.symlink("../outside", root / "outdir")
    for name in ("a.txt", "sub", "sub/inner.bin", "inlink", "dirlink", "outlink", "outdir"):
        os.utime(root / name, (OLD, OLD), follow_symlinks=False)
    return root


def _owner(path: Path) -> tuple[int, str, str]:
    st = os.lstat(path)
    return st.st_nlink, str(st.st_uid), str(st.st_gid)


def test_list_directory_unix(tree: Path) -> None:
    fs = OSFilesystem(tree)
    lines = list_directory(fs, "/")

    def line(mode: str, name: str, size: int, shown: str) -> str:
        nlink, uid, gid = _owner(tree / name)
        return f"{mode} {nlink:3d} {uid:<8} {gid:<8} {size:8d} Sep  9  2001 {shown}"

    sub_size = os.lstat(tree / "sub").st_size
    outlink_size = len(os.readlink(tree / "outlink"))
    assert lines == [
        line("-rw-r--r--", "a.txt", 5, "a.txt"),
        line("lrwxrwxrwx", "dirlink", 3, "dirlink -> /sub"),
        line("lrwxrwxrwx", "inlink", 5, "inlink -> /a.txt"),
        line("lrwxrwxrwx", "outdir", 10, "outdir"),
        line("lrwxrwxrwx", "outlink", outlink_size, "outlink"),
        line("drwxr-xr-x", "sub", sub_size, "sub"),
    ]
    real_root = os.path.realpath(tree)
    assert not any("outside" in x or real_root in x for x in lines)


def test_list_directory_msdos(tree: Path) -> None:
    fs = OSFilesystem(tree)
    outlink_size = len(os.readlink(tree / "outlink"))
    assert list_directory(fs, "/", "msdos") == [
        "09-09-01  01:46AM                    5 a.txt",
        "09-09-01  01:46AM       <DIR>          dirlink",  # link inside: shown as its target
        "09-09-01  01:46AM                    5 inlink",
        "09-09-01  01:46AM                   10 outdir",  # link outside: shown as the link
        f"09-09-01  01:46AM {outlink_size:20d} outlink",
        "09-09-01  01:46AM       <DIR>          sub",
    ]


def test_list_directory_relative_and_subdir(tree: Path) -> None:
    fs = OSFilesystem(tree)
    nlink, uid, gid = _owner(tree / "sub" / "inner.bin")
    expected = [f"-rw-r--r-- {nlink:3d} {uid:<8} {gid:<8} {300:8d} Sep  9  2001 inner.bin"]
    (tree / "sub" / "inner.bin").chmod(0o644)
    assert list_directory(fs, "/sub") == expected
    assert list_directory(fs, "dirlink/") == expected
    fs.chdir("sub")
    assert list_directory(fs, ".") == expected
    assert list_directory(fs, "", "msdos") == ["09-09-01  01:46AM                  300 inner.bin"]


def test_list_directory_recent_file(tree: Path) -> None:
    fs = OSFilesystem(tree)
    t = int(time.time()) - 3600
    os.utime(tree / "sub" / "inner.bin", (t, t))
    (tree / "sub" / "inner.bin").chmod(0o600)
    g = time.gmtime(t)
    month = "JanFebMarAprMayJunJulAugSepOctNovDec"[(g.tm_mon - 1) * 3 : g.tm_mon * 3]
    when = f"{month} {g.tm_mday:2d} {g.tm_hour:02d}:{g.tm_min:02d}"
    [line] = list_directory(fs, "sub")
    assert line.startswith("-rw------- ")
    assert line.endswith(f" 300 {when} inner.bin")


def test_list_directory_empty(tree: Path) -> None:
    (tree / "empty").mkdir()
    assert list_directory(OSFilesystem(tree), "empty") == []


def test_list_directory_errors(tree: Path) -> None:
    fs = OSFilesystem(tree)
    with pytest.raises(FileNotFoundError):
        list_directory(fs, "missing")
    with pytest.raises(NotADirectoryError):
        list_directory(fs, "a.txt")
    with pytest.raises(PathEscapeError):
        list_directory(fs, "outdir")
    with pytest.raises(PathEscapeError):
        list_directory(fs, "a\x00")
    with pytest.raises(ValueError, match="style"):
        list_directory(fs, "/", "vms")  # type: ignore[arg-type]


class _VanishingFilesystem(OSFilesystem):
    """A real filesystem whose listdir also reports an entry that has just been removed."""

    def listdir(self, path: str = ".") -> list[str]:
        return sorted([*super().listdir(path), "gone-meanwhile"])


def test_entry_removed_during_listing_is_left_out(tree: Path) -> None:
    fs = _VanishingFilesystem(tree)
    assert "gone-meanwhile" in fs.listdir("/")
    lines = list_directory(fs, "/")
    assert len(lines) == 6
    assert not any("gone-meanwhile" in x for x in lines)
