"""File and directory commands: ``CWD``, ``CDUP``, ``PWD``, ``MKD``, ``RMD``, ``DELE``,
``RNFR``, ``RNTO`` (RFC 959 §4.1), their RFC 775 ``X`` forms, and ``SIZE``, ``MDTM``,
``MLST`` (RFC 3659 §3, §4, §7).

Every path goes through the session's filesystem, which keeps it inside the user's root;
an error is 550 with the reason and the virtual path only. The temporary file of an upload
in progress is answered as a missing file (550), and its name may not be given to a new
directory or a renamed file (553).
"""

from __future__ import annotations

import stat
from typing import TYPE_CHECKING

from medusa.ftp.facts import format_time
from medusa.ftp.listings import mlst_line
from medusa.ftp.replies import quote_path

if TYPE_CHECKING:
    from medusa.ftp.session import FTPChannel

__all__ = ["HANDLERS"]


def cmd_cwd(ch: FTPChannel, arg: str) -> None:
    """``CWD path`` (RFC 959 §4.1.1): 250, or 550."""
    assert ch.fs is not None
    if not ch.allowed("e") or ch.hidden(arg or "/"):
        return
    try:
        ch.fs.chdir(arg or "/")
    except OSError as exc:
        ch.fail(exc)
        return
    ch.reply(250, f"Directory changed to {ch.fs.cwd()}.")


def cmd_cdup(ch: FTPChannel, arg: str) -> None:
    """``CDUP`` (RFC 959 §4.1.1): to the parent (at ``/``, stays there)."""
    cmd_cwd(ch, "..")


def cmd_pwd(ch: FTPChannel, arg: str) -> None:
    """``PWD`` (RFC 959 §4.1.3, Appendix II): 257 with the quoted directory."""
    assert ch.fs is not None
    ch.reply(257, f"{quote_path(ch.fs.cwd())} is the current directory.")


def cmd_mkd(ch: FTPChannel, arg: str) -> None:
    """``MKD path`` (RFC 959 Appendix II): 257 with the quoted new directory."""
    assert ch.fs is not None
    if not ch.allowed("m") or ch.reserved(arg):
        return
    try:
        path = ch.fs.normalize(arg)
        ch.fs.mkdir(path)
    except OSError as exc:
        ch.fail(exc)
        return
    ch.log_session(f"MKD {path}")
    ch.reply(257, f"{quote_path(path)} directory created.")


def cmd_rmd(ch: FTPChannel, arg: str) -> None:
    """``RMD path``: remove an empty directory (250); never the root."""
    assert ch.fs is not None
    if not ch.allowed("d") or ch.hidden(arg):
        return
    try:
        path = ch.fs.normalize(arg)
        if path == "/":
            ch.reply(550, "Cannot remove the root directory.")
            return
        ch.fs.rmdir(path)
    except OSError as exc:
        ch.fail(exc)
        return
    ch.log_session(f"RMD {path}")
    ch.reply(250, "Directory removed.")


def cmd_dele(ch: FTPChannel, arg: str) -> None:
    """``DELE path``: remove a file (250); a directory is 550."""
    assert ch.fs is not None
    if not ch.allowed("d") or ch.hidden(arg):
        return
    try:
        path = ch.fs.normalize(arg)
        if stat.S_ISDIR(ch.fs.lstat(path).st_mode):
            ch.reply(550, "Is a directory (use RMD).")
            return
        ch.fs.remove(path)
    except OSError as exc:
        ch.fail(exc)
        return
    ch.log_session(f"DELE {path}")
    ch.reply(250, "File deleted.")


def cmd_rnfr(ch: FTPChannel, arg: str) -> None:
    """``RNFR path`` (RFC 959 §4.1.3): 350 when it exists; ``RNTO`` must follow."""
    assert ch.fs is not None
    if not ch.allowed("f") or ch.hidden(arg):
        return
    try:
        path = ch.fs.normalize(arg)
        if path == "/":
            ch.reply(550, "Cannot rename the root directory.")
            return
        ch.fs.lstat(path)
    except OSError as exc:
        ch.fail(exc)
        return
    ch.rename_from = path
    ch.reply(350, "Ready for destination name.")


def cmd_rnto(ch: FTPChannel, arg: str) -> None:
    """``RNTO path``: 250 after the rename; 503 without a ``RNFR`` just before."""
    assert ch.fs is not None
    source, ch.rename_from = ch.rename_from, None
    if source is None:
        ch.reply(503, "Bad sequence of commands: use RNFR first.")
        return
    if not ch.allowed("f") or ch.reserved(arg):
        return
    try:
        target = ch.fs.normalize(arg)
        ch.fs.rename(source, target)
    except OSError as exc:
        ch.fail(exc)
        return
    ch.log_session(f"RNFR {source} RNTO {target}")
    ch.reply(250, "Rename successful.")


def _regular_file_stat(ch: FTPChannel, arg: str) -> tuple[int, float] | None:
    assert ch.fs is not None
    if not ch.allowed("l") or ch.hidden(arg):
        return None
    try:
        st = ch.fs.stat(arg)
    except OSError as exc:
        ch.fail(exc)
        return None
    if not stat.S_ISREG(st.st_mode):
        ch.reply(550, "Not a regular file.")
        return None
    return st.st_size, st.st_mtime


def cmd_size(ch: FTPChannel, arg: str) -> None:
    """``SIZE path`` (RFC 3659 §4): 213 with the size in bytes (``TYPE I`` only: in
    ``TYPE A`` the transfer size is not the file's, 550)."""
    if not ch.binary:
        ch.reply(550, "SIZE not allowed in ASCII mode (use TYPE I).")
        return
    found = _regular_file_stat(ch, arg)
    if found is not None:
        ch.reply(213, str(found[0]))


def cmd_mdtm(ch: FTPChannel, arg: str) -> None:
    """``MDTM path`` (RFC 3659 §3): 213 with the modification time, UTC."""
    found = _regular_file_stat(ch, arg)
    if found is not None:
        ch.reply(213, format_time(found[1]))


def cmd_mlst(ch: FTPChannel, arg: str) -> None:
    """``MLST [path]`` (RFC 3659 §7): the facts of one entry on the control connection."""
    assert ch.fs is not None
    if not ch.allowed("l"):
        return
    assert ch.account is not None
    try:
        line = mlst_line(ch.fs, arg or ".", ch.facts, ch.account.perms)
    except OSError as exc:
        ch.fail(exc)
        return
    ch.reply(250, [f"Listing {arg or ch.fs.cwd()}", line, "End."])


HANDLERS = {
    "CWD": cmd_cwd,
    "XCWD": cmd_cwd,
    "CDUP": cmd_cdup,
    "XCUP": cmd_cdup,
    "PWD": cmd_pwd,
    "XPWD": cmd_pwd,
    "MKD": cmd_mkd,
    "XMKD": cmd_mkd,
    "RMD": cmd_rmd,
    "XRMD": cmd_rmd,
    "DELE": cmd_dele,
    "RNFR": cmd_rnfr,
    "RNTO": cmd_rnto,
    "SIZE": cmd_size,
    "MDTM": cmd_mdtm,
    "MLST": cmd_mlst,
}
"""The handlers of this module by verb."""
