"""Informational and parameter commands: ``SYST``, ``NOOP``, ``HELP``, ``STAT`` (RFC 959
§4.1.3), ``TYPE``, ``STRU``, ``MODE`` (§4.1.2), ``ALLO``, ``SITE`` (``CHMOD``, ``HELP``,
``DIRSTYLE``), ``FEAT`` and ``OPTS`` (RFC 2389).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from medusa.ftp.arguments import parse_allo
from medusa.ftp.commands import COMMANDS
from medusa.ftp.facts import feat_line, parse_fact_names
from medusa.ftp.listings import list_lines

if TYPE_CHECKING:
    from medusa.ftp.session import FTPChannel

__all__ = ["HANDLERS"]


def cmd_syst(ch: FTPChannel, arg: str) -> None:
    """``SYST``: 215 ``UNIX Type: L8`` (RFC 959 §4.1.3, listings are Unix-like)."""
    ch.reply(215, "UNIX Type: L8")


def cmd_noop(ch: FTPChannel, arg: str) -> None:
    """``NOOP``: 200."""
    ch.reply(200, "NOOP ok.")


def cmd_help(ch: FTPChannel, arg: str) -> None:
    """``HELP [command]``: the known commands, or one command's syntax (214)."""
    verb = arg.strip().upper()
    if not verb:
        names = sorted(COMMANDS)
        rows = [" ".join(f"{n:<5}" for n in names[i : i + 8]) for i in range(0, len(names), 8)]
        ch.reply(214, ["The following commands are recognized:", *rows, "Help OK."])
    elif verb in COMMANDS:
        ch.reply(214, f"Syntax: {COMMANDS[verb].syntax}")
    else:
        ch.reply(501, f"Unknown command {verb}.")


def cmd_feat(ch: FTPChannel, arg: str) -> None:
    """``FEAT`` (RFC 2389 §3): the extensions supported, one per line."""
    features = [
        "EPRT",
        "EPSV",
        "MDTM",
        feat_line(ch.facts),
        "REST STREAM",
        "SIZE",
        "TVFS",
        "UTF8",
    ]
    if ch.ftp.tls_context is not None:
        features = ["AUTH TLS", *features, "PBSZ", "PROT"]
    ch.reply(211, ["Features:", *sorted(features), "End"])


def cmd_opts(ch: FTPChannel, arg: str) -> None:
    """``OPTS UTF8 ON`` (RFC 2640 §3.2) and ``OPTS MLST facts`` (RFC 3659 §7.9)."""
    name, _, value = arg.strip().partition(" ")
    name = name.upper()
    if name == "UTF8":
        if value.strip().upper() in ("ON", ""):
            ch.reply(200, "Always in UTF8 mode.")
        else:
            ch.reply(504, "UTF8 cannot be turned off.")
    elif name == "MLST":
        ch.facts = parse_fact_names(value)
        ch.reply(200, "MLST OPTS " + "".join(f"{f};" for f in sorted(ch.facts)))
    else:
        ch.reply(501, f"Option {name} not understood.")


def cmd_stat(ch: FTPChannel, arg: str) -> None:
    """``STAT`` (RFC 959 §4.1.3): the session's status (211), or with a path, its listing
    on the control connection (213)."""
    if not arg.strip():
        account = ch.account
        lines = [
            "FTP server status:",
            f"Connected to {ch.peer_host}",
            f"Logged in as {account.name}" if account is not None else "Not logged in",
            f"TYPE: {'BINARY' if ch.binary else 'ASCII'}, STRUcture: File, MODE: Stream",
            f"Control connection {'secured with TLS' if ch.tls else 'in clear text'}",
        ]
        transfer = ch.dtp.transfer
        if transfer is not None:
            lines.append(f"Transfer in progress: {transfer.verb} {transfer.path}")
        else:
            lines.append("No data connection")
        ch.reply(211, [*lines, "End of status"])
        return
    if ch.account is None or ch.fs is None:
        ch.reply(530, "Please log in with USER and PASS first.")
        return
    if not ch.allowed("l"):
        return
    try:
        with ch.as_user():
            lines = list_lines(ch.fs, arg, ch.listing_style)
    except OSError as exc:
        ch.fail(exc)
        return
    ch.reply(213, [f"Status of {arg.strip()}:", *lines, "End of status"])


def cmd_type(ch: FTPChannel, arg: str) -> None:
    """``TYPE A|I`` (RFC 959 §3.1.1): ``A`` and ``A N`` are ASCII, ``I`` and ``L 8``
    binary; others 504."""
    words = arg.strip().upper().split()
    if words in (["A"], ["A", "N"]):
        ch.binary = False
        ch.reply(200, "Type set to A.")
    elif words in (["I"], ["L", "8"]):
        ch.binary = True
        ch.reply(200, "Type set to I.")
    elif words and words[0] in ("A", "E", "I", "L"):
        ch.reply(504, f"Type {arg.strip()} not implemented.")
    else:
        ch.reply(501, f"Unknown type {arg.strip()!r}.")


def cmd_stru(ch: FTPChannel, arg: str) -> None:
    """``STRU F`` (RFC 959 §3.1.2); record and page structures are 504."""
    value = arg.strip().upper()
    if value == "F":
        ch.reply(200, "Structure set to F.")
    elif value in ("R", "P"):
        ch.reply(504, f"Structure {value} not implemented.")
    else:
        ch.reply(501, f"Unknown structure {value!r}.")


def cmd_mode(ch: FTPChannel, arg: str) -> None:
    """``MODE S`` (RFC 959 §3.4); block and compressed modes are 504."""
    value = arg.strip().upper()
    if value == "S":
        ch.reply(200, "Mode set to S.")
    elif value in ("B", "C"):
        ch.reply(504, f"Mode {value} not implemented.")
    else:
        ch.reply(501, f"Unknown mode {value!r}.")


def cmd_allo(ch: FTPChannel, arg: str) -> None:
    """``ALLO bytes [R size]`` (RFC 959 §4.1.3): nothing to allocate (202); 501 for an
    argument that is not that."""
    if parse_allo(arg.strip()) is None:
        ch.reply(501, "Syntax: ALLO <bytes> [R <record size>].")
        return
    ch.reply(202, "No storage allocation necessary.")


_SITE_HELP = ["SITE commands:", "CHMOD <mode> <path>", "DIRSTYLE", "HELP", "End"]


def cmd_site(ch: FTPChannel, arg: str) -> None:
    """``SITE CHMOD mode path``, ``SITE HELP``, ``SITE DIRSTYLE`` (toggles MS-DOS
    listings, as IIS does)."""
    name, _, rest = arg.strip().partition(" ")
    name = name.upper()
    if name == "HELP":
        ch.reply(214, _SITE_HELP)
    elif name == "DIRSTYLE":
        ch.listing_style = "msdos" if ch.listing_style == "unix" else "unix"
        ch.reply(200, f"Listing style is now {ch.listing_style}.")
    elif name == "CHMOD":
        _chmod(ch, rest)
    else:
        ch.reply(501, f"SITE {name} not understood (try SITE HELP).")


def _chmod(ch: FTPChannel, rest: str) -> None:
    mode_text, _, path = rest.strip().partition(" ")
    if not path or not mode_text or any(c not in "01234567" for c in mode_text):
        ch.reply(501, "Syntax: SITE CHMOD <octal mode> <path>.")
        return
    if len(mode_text) > 5 or int(mode_text, 8) > 0o7777:
        ch.reply(501, "Invalid mode.")
        return
    mode = int(mode_text, 8)
    if not ch.allowed("M") or ch.fs is None or ch.hidden(path):
        return
    try:
        with ch.as_user():
            os.chmod(ch.fs.translate(path), mode & 0o777)
    except OSError as exc:
        ch.fail(exc)
        return
    ch.reply(200, "SITE CHMOD command successful.")


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
