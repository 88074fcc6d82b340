"""Directory listings in the two formats FTP clients parse: Unix ``ls -l`` and MS-DOS (IIS).

Every date is shown in UTC, whatever the server's time zone and locale: month names are always
English, so clients can parse them, and a listing does not change when the server's TZ does.

Names are returned as they are; a caller that sends lines over a protocol where a name could
break the framing (a name containing CR or LF on an FTP data connection) must deal with that.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from typing import Literal

from medusa.core.filesys import Filesystem

__all__ = ["SIX_MONTHS", "list_directory", "msdos_line", "unix_line"]

#: What ``ls`` calls six months: half a mean Gregorian year, in seconds.
SIX_MONTHS: float = 365.2425 / 2 * 24 * 60 * 60

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _gmtime(t: float) -> time.struct_time:
    """``time.gmtime(t)``, or the epoch for a time the platform cannot represent."""
    try:
        return time.gmtime(t)
    except (OverflowError, OSError, ValueError):
        return time.gmtime(0)


# Parts of ``ls -l`` lines, cached: the files of a directory share few distinct minutes,
# modes, link counts and owners, and listings ask for the same ones again and again. Each
# cache is emptied when full. (Dict operations are atomic; a race only recomputes.)
_CACHE_MAX = 4096
# The date column by (minute since the epoch, within the past six months).
_DATES: dict[tuple[float, bool], str] = {}
# "mode nlink owner group " by (st_mode, st_nlink, owner, group).
_HEADS: dict[tuple[int, int, int | str, int | str], str] = {}


def _unix_date(mtime: float, key: tuple[float, bool]) -> str:
    """The date column for ``mtime``: ``Mon DD HH:MM`` when recent (``key[1]``), else
    ``Mon DD  YYYY``; cached under ``key``."""
    t = _gmtime(mtime)
    if key[1]:
        when = f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d} {t.tm_hour:02d}:{t.tm_min:02d}"
    else:
        when = f"{_MONTHS[t.tm_mon - 1]} {t.tm_mday:2d}  {t.tm_year:4d}"
    if len(_DATES) >= _CACHE_MAX:
        _DATES.clear()
    _DATES[key] = when
    return when


def _unix_head(key: tuple[int, int, int | str, int | str]) -> str:
    """The columns before the size, for ``(st_mode, st_nlink, owner, group)``; cached."""
    mode, nlink, user, grp = key
    head = f"{stat.filemode(mode)} {nlink:3d} {user!s:<8} {grp!s:<8} "
    if len(_HEADS) >= _CACHE_MAX:
        _HEADS.clear()
    _HEADS[key] = head
    return head


def unix_line(
    name: str,
    st: os.stat_result,
    *,
    now: float | None = None,
    owner: str | None = None,
    group: str | None = None,
) -> str:
    """Return one ``ls -l`` style line (without a line ending) for a directory entry.

    The fields are the mode string (:func:`stat.filemode`), the link count, owner, group, size,
    date and name, for example::

        -rw-r--r--   1 ftp      ftp          1234 Mar  5 14:07 notes.txt
        drwxr-xr-x   2 1000     1000         4096 Mar  5  2019 old

    As ``ls`` does, the date is ``Mon DD HH:MM`` when the time is within the past six months
    and ``Mon DD  YYYY`` otherwise (older, or in the future); the day is padded with a space.
    Dates are UTC. (The date column is cached per minute, the columns before the size per
    mode, link count, owner and group: a listing formats each distinct one once.)

    Args:
        name: the name to show, including any `` -> target`` suffix the caller wants.
        st: the entry's status (from ``lstat`` for a link to show as a link).
        now: the current time, seconds since the epoch; :func:`time.time` by default.
        owner: the owner's name; the numeric ``st_uid`` when None.
        group: the group's name; the numeric ``st_gid`` when None.

    Returns:
        The line, without a line ending.
    """
    if now is None:
        now = time.time()
    mtime = st.st_mtime
    # The minute (as float floor division, which gmtime's flooring to seconds agrees with).
    key = (mtime // 60, now - SIX_MONTHS < mtime <= now)
    when = _DATES.get(key)
    if when is None:
        when = _unix_date(mtime, key)
    head_key = (
        st.st_mode,
        st.st_nlink,
        st.st_uid if owner is None else owner,
        st.st_gid if group is None else group,
    )
    head = _HEADS.get(head_key)
    if head is None:
        head = _unix_head(head_key)
    return f"{head}{str(st.st_size).rjust(8)} {when} {name}"


def msdos_line(name: str, st: os.stat_result) -> str:
    """Return one MS-DOS (IIS FTP) style line (without a line ending) for a directory entry.

    ``MM-DD-YY  HH:MMAM``, then ``<DIR>`` for a directory or the size right-aligned, then the
    name; the name always starts in column 40::

        03-05-24  02:07PM       <DIR>          pub
        03-05-24  02:07PM                 1234 notes.txt

    Dates are UTC, on a 12-hour clock.

    Args:
        name: the name to show.
        st: the entry's status; a directory shows as ``<DIR>``, anything else by its size.

    Returns:
        The line, without a line ending.
    """
    t = _gmtime(st.st_mtime)
    hour = t.tm_hour % 12 or 12
    half = "AM" if t.tm_hour < 12 else "PM"
    when = f"{t.tm_mon:02d}-{t.tm_mday:02d}-{t.tm_year % 100:02d}  {hour:02d}:{t.tm_min:02d}{half}"
    if stat.S_ISDIR(st.st_mode):
        return f"{when}       <DIR>          {name}"
    return f"{when}{st.st_size:21d} {name}"


def list_directory(
    fs: Filesystem, path: str, style: Literal["unix", "msdos"] = "unix"
) -> list[str]:
    """Return the lines of a listing of directory ``path`` of ``fs``, sorted by name.

    Entries are looked at with ``lstat``.  In the Unix style a symbolic link shows as a link
    (mode ``l...``), followed by `` -> target`` (the virtual path it leads to) when that target
    is inside the root, and by nothing when it is outside, so the listing reveals nothing about
    the rest of the machine.  The MS-DOS style has no links: a link whose target is inside the
    root is shown as its target (so a link to a directory shows ``<DIR>``), any other as itself.
    Owners and groups are numeric ids (no user database lookups, which could block, and no local
    account names shown to clients).  An entry removed while the listing is made is left out.

    Args:
        fs: the filesystem.
        path: a virtual path of a directory.
        style: ``"unix"`` (``ls -l``, see :func:`unix_line`) or ``"msdos"`` (see
            :func:`msdos_line`).

    Returns:
        One line per entry, without line endings; no ``total`` line, no ``.`` or ``..``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        NotADirectoryError: ``path`` is not a directory.
        PathEscapeError: ``path`` is malformed or outside the root.
        ValueError: ``style`` is neither ``"unix"`` nor ``"msdos"``.
    """
    if style not in ("unix", "msdos"):
        raise ValueError(f"unknown listing style {style!r}")
    base = fs.normalize(path)
    prefix = base.rstrip("/") + "/"
    now = time.time()
    lines: list[str] = []
    for name in fs.listdir(base):
        entry = prefix + name
        try:
            st = fs.lstat(entry)
        except FileNotFoundError:
            continue
        shown = name
        if stat.S_ISLNK(st.st_mode):
            if style == "unix":
                # Outside the root (PathEscapeError) or gone: show the bare name.
                with contextlib.suppress(OSError):
                    shown = f"{name} -> {fs.readlink(entry)}"
            else:
                # Inside the root: show what it leads to; otherwise show the link itself.
                with contextlib.suppress(OSError):
                    st = fs.stat(entry)
        if style == "unix":
            lines.append(unix_line(shown, st, now=now))
        else:
            lines.append(msdos_line(shown, st))
    return lines
