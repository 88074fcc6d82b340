"""Machine-readable listings, sans-IO: the facts of ``MLST`` and ``MLSD`` (RFC 3659 §7) and
``MDTM`` time values (RFC 3659 §2.3).
"""

from __future__ import annotations

import os
import stat
import time

__all__ = [
    "ALL_FACTS",
    "DEFAULT_FACTS",
    "feat_line",
    "format_time",
    "mlsx_line",
    "parse_fact_names",
    "perm_fact",
]

ALL_FACTS: tuple[str, ...] = (
    "type",
    "size",
    "modify",
    "perm",
    "unique",
    "unix.mode",
    "unix.uid",
    "unix.gid",
)
"""The facts this server can show, in the order they are shown (RFC 3659 §7.5)."""

DEFAULT_FACTS: frozenset[str] = frozenset(("type", "size", "modify", "perm", "unique"))
"""The facts shown until ``OPTS MLST`` chooses others (marked ``*`` in ``FEAT``)."""


def format_time(mtime: float) -> str:
    """Return a time as ``YYYYMMDDHHMMSS`` in UTC (RFC 3659 §2.3), the epoch when the
    platform cannot represent it."""
    try:
        return time.strftime("%Y%m%d%H%M%S", time.gmtime(mtime))
    except (OverflowError, OSError, ValueError):
        return "19700101000000"


def feat_line(selected: frozenset[str]) -> str:
    """Return the ``MLST`` line of the ``FEAT`` reply (RFC 3659 §7.8): every fact
    supported, the selected ones marked with ``*``."""
    return "MLST " + "".join(f"{f}{'*' if f in selected else ''};" for f in ALL_FACTS)


def parse_fact_names(arg: str) -> frozenset[str]:
    """Parse the argument of ``OPTS MLST`` (``fact;fact;...``, RFC 3659 §7.9): the known
    facts named (case-insensitive); unknown names are ignored."""
    wanted = {name.strip().lower() for name in arg.split(";")}
    return frozenset(f for f in ALL_FACTS if f in wanted)


def perm_fact(st: os.stat_result, perms: frozenset[str]) -> str:
    """Return the ``perm`` fact (RFC 3659 §7.5.5) of an entry for a user with ``perms``
    (pyftpdlib's letters: ``e`` enter, ``l`` list, ``r`` retrieve, ``a`` append, ``d``
    delete, ``f`` rename, ``m`` make directory, ``w`` store)."""
    out = []
    if stat.S_ISDIR(st.st_mode):
        if "w" in perms:
            out.append("c")
        if "d" in perms:
            out.append("d")
        if "e" in perms:
            out.append("e")
        if "f" in perms:
            out.append("f")
        if "l" in perms:
            out.append("l")
        if "m" in perms:
            out.append("m")
        if "d" in perms:
            out.append("p")
    else:
        if "a" in perms:
            out.append("a")
        if "d" in perms:
            out.append("d")
        if "f" in perms:
            out.append("f")
        if "r" in perms:
            out.append("r")
        if "w" in perms:
            out.append("w")
    return "".join(out)


def _type(st: os.stat_result, kind: str | None) -> str:
    if kind is not None:
        return kind
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if stat.S_ISREG(st.st_mode):
        return "file"
    if stat.S_ISLNK(st.st_mode):
        return "OS.unix=slink"
    return "OS.unix=special"


def mlsx_line(
    name: str,
    st: os.stat_result,
    facts: frozenset[str],
    perms: frozenset[str],
    *,
    kind: str | None = None,
) -> str:
    """Return one ``MLSx`` entry (RFC 3659 §7.2): ``fact=value;...; name``.

    Args:
        name: the name shown (a base name for ``MLSD``, a path for ``MLST``).
        st: the entry's status.
        facts: the facts to show (see :data:`ALL_FACTS`).
        perms: the user's permission letters, for the ``perm`` fact.
        kind: a ``type`` value to show instead of the one derived from ``st`` (``cdir``).

    Returns:
        The line, without an end of line and without the leading space ``MLST`` adds.
    """
    parts = []
    for fact in ALL_FACTS:
        if fact not in facts:
            continue
        if fact == "type":
            parts.append(f"type={_type(st, kind)};")
        elif fact == "size":
            if not stat.S_ISDIR(st.st_mode):
                parts.append(f"size={st.st_size};")
        elif fact == "modify":
            parts.append(f"modify={format_time(st.st_mtime)};")
        elif fact == "perm":
            parts.append(f"perm={perm_fact(st, perms)};")
        elif fact == "unique":
            parts.append(f"unique={st.st_dev:x}g{st.st_ino:x};")
        elif fact == "unix.mode":
            parts.append(f"unix.mode=0{stat.S_IMODE(st.st_mode):o};")
        elif fact == "unix.uid":
            parts.append(f"unix.uid={st.st_uid};")
        elif fact == "unix.gid":
            parts.append(f"unix.gid={st.st_gid};")
    return "".join(parts) + " " + name
