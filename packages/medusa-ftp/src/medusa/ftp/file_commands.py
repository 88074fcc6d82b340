"""File and directory commands: ``CWD``, ``CDUP``, ``PWD``, ``MKD``, ``RMD``, ``DELE``,
``RNFR``, ``RNTO`` (RFC 959 §4.1), their RFC 775 ``X`` forms, and ``SIZE``, ``MDTM``,
``MLST`` (RFC 3659 §3, §4, §7).

Every path goes through the session's filesystem, which keeps it inside the user's root;
an error is 550 with the reason and the virtual path only. The temporary file of an upload
in progress is answered as a missing file (550), and its name may not be given to a new
directory or a renamed file (553).

Each handler takes the session's :class:`~medusa.ftp.state.SessionState` and the command's
argument and returns its reply (:mod:`medusa.ftp.results`).
"""

from __future__ import annotations

import stat

from medusa.ftp.facts import format_time
from medusa.ftp.listings import mlst_line
from medusa.ftp.replies import quote_path
from medusa.ftp.results import Reply, Result, failure
from medusa.ftp.state import SessionState

__all__ = ["HANDLERS"]


def cmd_cwd(s: SessionState, arg: str) -> Result:
    """``CWD path`` (RFC 959 §4.1.1): 250, or 550."""
    fs = s.checked_fs("e", arg or "/")
    if isinstance(fs, Reply):
        return fs
    try:
        fs.chdir(arg or "/")
    except OSError as exc:
        return failure(exc)
    return Reply(250, f"Directory changed to {fs.cwd()}.")


def cmd_cdup(s: SessionState, arg: str) -> Result:
    """``CDUP`` (RFC 959 §4.1.1): to the parent (at ``/``, stays there)."""
    return cmd_cwd(s, "..")


def cmd_pwd(s: SessionState, arg: str) -> Result:
    """``PWD`` (RFC 959 §4.1.3, Appendix II): 257 with the quoted directory."""
    assert s.fs is not None
    return Reply(257, f"{quote_path(s.fs.cwd())} is the current directory.")


def cmd_mkd(s: SessionState, arg: str) -> Result:
    """``MKD path`` (RFC 959 Appendix II): 257 with the quoted new directory."""
    fs = s.checked_fs("m", arg, creates=True)
    if isinstance(fs, Reply):
        return fs
    try:
        path = fs.normalize(arg)
        fs.mkdir(path)
    except OSError as exc:
        return failure(exc)
    return Reply(257, f"{quote_path(path)} directory created.", f"MKD {path}")


def cmd_rmd(s: SessionState, arg: str) -> Result:
    """``RMD path``: remove an empty directory (250); never the root."""
    fs = s.checked_fs("d", arg)
    if isinstance(fs, Reply):
        return fs
    try:
        path = fs.normalize(arg)
        if path == "/":
            return Reply(550, "Cannot remove the root directory.")
        fs.rmdir(path)
    except OSError as exc:
        return failure(exc)
    return Reply(250, "Directory removed.", f"RMD {path}")


def cmd_dele(s: SessionState, arg: str) -> Result:
    """``DELE path``: remove a file (250); a directory is 550."""
    fs = s.checked_fs("d", arg)
    if isinstance(fs, Reply):
        return fs
    try:
        path = fs.normalize(arg)
        if stat.S_ISDIR(fs.lstat(path).st_mode):
            return Reply(550, "Is a directory (use RMD).")
        fs.remove(path)
    except OSError as exc:
        return failure(exc)
    return Reply(250, "File deleted.", f"DELE {path}")


def cmd_rnfr(s: SessionState, arg: str) -> Result:
    """``RNFR path`` (RFC 959 §4.1.3): 350 when it exists; ``RNTO`` must follow."""
    fs = s.checked_fs("f", arg)
    if isinstance(fs, Reply):
        return fs
    try:
        path = fs.normalize(arg)
        if path == "/":
            return Reply(550, "Cannot rename the root directory.")
        fs.lstat(path)
    except OSError as exc:
        return failure(exc)
    s.rename_from = path
    return Reply(350, "Ready for destination name.")


def cmd_rnto(s: SessionState, arg: str) -> Result:
    """``RNTO path``: 250 after the rename; 503 without a ``RNFR`` just before."""
    fs = s.fs
    assert fs is not None
    source, s.rename_from = s.rename_from, None
    if source is None:
        return Reply(503, "Bad sequence of commands: use RNFR first.")
    refused = s.refusal("f") or s.reserved(arg)
    if refused is not None:
        return refused
    try:
        target = fs.normalize(arg)
        fs.rename(source, target)
    except OSError as exc:
        return failure(exc)
    return Reply(250, "Rename successful.", f"RNFR {source} RNTO {target}")


def _regular_file_stat(s: SessionState, arg: str) -> tuple[int, float] | Reply:
    """``(size, mtime)`` of the regular file ``arg``, or the refusal to send."""
    fs = s.checked_fs("l", arg)
    if isinstance(fs, Reply):
        return fs
    try:
        st = fs.stat(arg)
    except OSError as exc:
        return failure(exc)
    if not stat.S_ISREG(st.st_mode):
        return Reply(550, "Not a regular file.")
    return st.st_size, st.st_mtime


def cmd_size(s: SessionState, arg: str) -> Result:
    """``SIZE path`` (RFC 3659 §4): 213 with the size in bytes (``TYPE I`` only: in
    ``TYPE A`` the transfer size is not the file's, 550)."""
    if not s.binary:
        return Reply(550, "SIZE not allowed in ASCII mode (use TYPE I).")
    found = _regular_file_stat(s, arg)
    if isinstance(found, Reply):
        return found
    return Reply(213, str(found[0]))


def cmd_mdtm(s: SessionState, arg: str) -> Result:
    """``MDTM path`` (RFC 3659 §3): 213 with the modification time, UTC."""
    found = _regular_file_stat(s, arg)
    if isinstance(found, Reply):
        return found
    return Reply(213, format_time(found[1]))


def cmd_mlst(s: SessionState, arg: str) -> Result:
    """``MLST [path]`` (RFC 3659 §7): the facts of one entry on the control connection."""
    fs, account = s.fs, s.account
    assert fs is not None
    refused = s.refusal("l")
    if refused is not None:
        return refused
    assert account is not None
    try:
        line = mlst_line(fs, arg or ".", s.facts, account.perms)
    except OSError as exc:
        return failure(exc)
    return Reply(250, [f"Listing {arg or fs.cwd()}", line, "End."])


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
