"""Informational and parameter commands: ``SYST``, ``NOOP``, ``HELP``, ``STAT`` (RFC 959
§4.1.3), ``TYPE``, ``STRU``, ``MODE`` (§4.1.2), ``ALLO``, ``SITE`` (``CHMOD``, ``HELP``,
``DIRSTYLE``), ``FEAT`` and ``OPTS`` (RFC 2389).

Each handler takes the session's :class:`~medusa.ftp.state.SessionState` and the command's
argument and returns its reply (:mod:`medusa.ftp.results`).
"""

from __future__ import annotations

import os

from medusa.ftp.arguments import parse_allo
from medusa.ftp.commands import COMMANDS
from medusa.ftp.facts import feat_line, parse_fact_names
from medusa.ftp.listings import list_lines
from medusa.ftp.results import Reply, Result, failure
from medusa.ftp.state import SessionState

__all__ = ["HANDLERS"]


def cmd_syst(s: SessionState, arg: str) -> Result:
    """``SYST``: 215 ``UNIX Type: L8`` (RFC 959 §4.1.3, listings are Unix-like)."""
    return Reply(215, "UNIX Type: L8")


def cmd_noop(s: SessionState, arg: str) -> Result:
    """``NOOP``: 200."""
    return Reply(200, "NOOP ok.")


def cmd_help(s: SessionState, arg: str) -> Result:
    """``HELP [command]``: the known commands, or one command's syntax (214)."""
    verb = arg.strip().upper()
    if not verb:
        names = sorted(COMMANDS)
        rows = [" ".join(f"{n:<5}" for n in names[i : i + 8]) for i in range(0, len(names), 8)]
        return Reply(214, ["The following commands are recognized:", *rows, "Help OK."])
    elif verb in COMMANDS:
        return Reply(214, f"Syntax: {COMMANDS[verb].syntax}")
    else:
        return Reply(501, f"Unknown command {verb}.")


def cmd_feat(s: SessionState, arg: str) -> Result:
    """``FEAT`` (RFC 2389 §3): the extensions supported, one per line."""
    features = [
        "EPRT",
        "EPSV",
        "MDTM",
        feat_line(s.facts),
        "REST STREAM",
        "SIZE",
        "TVFS",
        "UTF8",
    ]
    if s.server.tls_context is not None:
        features = ["AUTH TLS", *features, "PBSZ", "PROT"]
    return Reply(211, ["Features:", *sorted(features), "End"])


def cmd_opts(s: SessionState, arg: str) -> Result:
    """``OPTS UTF8 ON`` (RFC 2640 §3.2) and ``OPTS MLST facts`` (RFC 3659 §7.9)."""
    name, _, value = arg.strip().partition(" ")
    name = name.upper()
    if name == "UTF8":
        if value.strip().upper() in ("ON", ""):
            return Reply(200, "Always in UTF8 mode.")
        else:
            return Reply(504, "UTF8 cannot be turned off.")
    elif name == "MLST":
        s.facts = parse_fact_names(value)
        return Reply(200, "MLST OPTS " + "".join(f"{f};" for f in sorted(s.facts)))
    else:
        return Reply(501, f"Option {name} not understood.")


def cmd_stat(s: SessionState, arg: str) -> Result:
    """``STAT`` (RFC 959 §4.1.3): the session's status (211), or with a path, its listing
    on the control connection (213)."""
    if not arg.strip():
        account = s.account
        lines = [
            "FTP server status:",
            f"Connected to {s.peer_host}",
            f"Logged in as {account.name}" if account is not None else "Not logged in",
            f"TYPE: {'BINARY' if s.binary else 'ASCII'}, STRUcture: File, MODE: Stream",
            f"Control connection {'secured with TLS' if s.tls else 'in clear text'}",
        ]
        transfer = s.data.transfer if s.data is not None else None
        if transfer is not None:
            lines.append(f"Transfer in progress: {transfer.verb} {transfer.path}")
        else:
            lines.append("No data connection")
        return Reply(211, [*lines, "End of status"])
    if s.account is None or s.fs is None:
        return Reply(530, "Please log in with USER and PASS first.")
    refused = s.refusal("l")
    if refused is not None:
        return refused
    try:
        with s.as_user():
            lines = list_lines(s.fs, arg, s.listing_style)
    except OSError as exc:
        return failure(exc)
    return Reply(213, [f"Status of {arg.strip()}:", *lines, "End of status"])


def cmd_type(s: SessionState, arg: str) -> Result:
    """``TYPE A|I`` (RFC 959 §3.1.1): ``A`` and ``A N`` are ASCII, ``I`` and ``L 8``
    binary; others 504."""
    words = arg.strip().upper().split()
    if words in (["A"], ["A", "N"]):
        s.binary = False
        return Reply(200, "Type set to A.")
    elif words in (["I"], ["L", "8"]):
        s.binary = True
        return Reply(200, "Type set to I.")
    elif words and words[0] in ("A", "E", "I", "L"):
        return Reply(504, f"Type {arg.strip()} not implemented.")
    else:
        return Reply(501, f"Unknown type {arg.strip()!r}.")


def cmd_stru(s: SessionState, arg: str) -> Result:
    """``STRU F`` (RFC 959 §3.1.2); record and page structures are 504."""
    value = arg.strip().upper()
    if value == "F":
        return Reply(200, "Structure set to F.")
    elif value in ("R", "P"):
        return Reply(504, f"Structure {value} not implemented.")
    else:
        return Reply(501, f"Unknown structure {value!r}.")


def cmd_mode(s: SessionState, arg: str) -> Result:
    """``MODE S`` (RFC 959 §3.4); block and compressed modes are 504."""
    value = arg.strip().upper()
    if value == "S":
        return Reply(200, "Mode set to S.")
    elif value in ("B", "C"):
        return Reply(504, f"Mode {value} not implemented.")
    else:
        return Reply(501, f"Unknown mode {value!r}.")


def cmd_allo(s: SessionState, arg: str) -> Result:
    """``ALLO bytes [R size]`` (RFC 959 §4.1.3): nothing to allocate (202); 501 for an
    argument that is not that."""
    if parse_allo(arg.strip()) is None:
        return Reply(501, "Syntax: ALLO <bytes> [R <record size>].")
    return Reply(202, "No storage allocation necessary.")


_SITE_HELP = ["SITE commands:", "CHMOD <mode> <path>", "DIRSTYLE", "HELP", "End"]


def cmd_site(s: SessionState, arg: str) -> Result:
    """``SITE CHMOD mode path``, ``SITE HELP``, ``SITE DIRSTYLE`` (toggles MS-DOS
    listings, as IIS does)."""
    name, _, rest = arg.strip().partition(" ")
    name = name.upper()
    if name == "HELP":
        return Reply(214, _SITE_HELP)
    elif name == "DIRSTYLE":
        s.listing_style = "msdos" if s.listing_style == "unix" else "unix"
        return Reply(200, f"Listing style is now {s.listing_style}.")
    elif name == "CHMOD":
        return _chmod(s, rest)
    else:
        return Reply(501, f"SITE {name} not understood (try SITE HELP).")


def _chmod(s: SessionState, rest: str) -> Result:
    mode_text, _, path = rest.strip().partition(" ")
    if not path or not mode_text or any(c not in "01234567" for c in mode_text):
        return Reply(501, "Syntax: SITE CHMOD <octal mode> <path>.")
    if len(mode_text) > 5 or int(mode_text, 8) > 0o7777:
        return Reply(501, "Invalid mode.")
    mode = int(mode_text, 8)
    fs = s.fs
    assert fs is not None
    refused = s.refusal("M") or s.hidden(path)
    if refused is not None:
        return refused
    try:
        with s.as_user():
            os.chmod(fs.translate(path), mode & 0o777)
    except OSError as exc:
        return failure(exc)
    return Reply(200, "SITE CHMOD command successful.")


HANDLERS = {
    "SYST": cmd_syst,
    "NOOP": cmd_noop,
    "HELP": cmd_help,
    "FEAT": cmd_feat,
    "OPTS": cmd_opts,
    "STAT": cmd_stat,
    "TYPE": cmd_type,
    "STRU": cmd_stru,
    "MODE": cmd_mode,
    "ALLO": cmd_allo,
    "SITE": cmd_site,
}
"""The handlers of this module by verb."""
