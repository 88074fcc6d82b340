"""FTP commands, sans-IO: Telnet controls removed from a command line, the line split into
verb and argument (RFC 959 §4.1, §5.3), and the table of known commands with their syntax,
whether they need a logged-in user and whether they take an argument.

Nothing here does I/O; the control channel (:mod:`medusa.ftp.session`) feeds complete lines
and dispatches on the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

__all__ = ["COMMANDS", "Command", "CommandError", "CommandSpec", "parse_command", "strip_telnet"]

_IAC = 0xFF
_IAC_BYTE = b"\xff"
_WILL_WONT_DO_DONT = range(0xFB, 0xFF)
_TELNET_COMMANDS = range(0xF0, 0xFB)


class CommandError(ValueError):
    """A command line that cannot be understood.

    Attributes:
        code: the reply code to send (500 for an empty or garbled line, 501 for a bad
            argument).
        text: the reply text.
    """

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text


def strip_telnet(line: bytes) -> bytes:
    """Remove Telnet control sequences from a command line (RFC 959 §4.1.3, RFC 854).

    Clients send ``IAC IP IAC DM`` (the Telnet "Synch") before ``ABOR``; the ``DM`` byte
    travels as TCP urgent data and may be missing from the stream, leaving a lone ``IAC``.
    ``IAC IAC`` stands for one 0xFF byte. Option negotiation (``IAC WILL/WONT/DO/DONT x``)
    is dropped with its option byte.

    Args:
        line: the raw line, without its end of line.

    Returns:
        The line without Telnet controls.
    """
    if _IAC not in line:
        return line
    out = bytearray()
    i = 0
    n = len(line)
    while i < n:
        byte = line[i]
        if byte != _IAC:
            out.append(byte)
            i += 1
            continue
        following = line[i + 1] if i + 1 < n else None
        if following == _IAC:
            out.append(_IAC)
            i += 2
        elif following is not None and following in _WILL_WONT_DO_DONT:
            i += 3
        elif following is not None and following in _TELNET_COMMANDS:
            i += 2
        else:
            i += 1  # a lone IAC (its DM went as urgent data)
    return bytes(out)


class Command(NamedTuple):
    """One parsed command line (an immutable pair: cheaper to make than a dataclass, and
    a line makes one).

    Attributes:
        verb: the command name in upper case (``"RETR"``).
        arg: the argument, decoded as UTF-8 (RFC 2640) with undecodable bytes kept as
            surrogates; ``""`` when none was given.
    """

    verb: str
    arg: str


def parse_command(line: bytes) -> Command:
    """Split a command line (end of line removed) into verb and argument (RFC 959 §5.3).

    The verb is the text before the first space, upper-cased; the argument is everything
    after that space, kept as sent (path names may begin or end with spaces), except that a
    trailing CR is dropped. Telnet controls are removed first (:func:`strip_telnet`).

    Args:
        line: the raw bytes of the line, without LF.

    Returns:
        The :class:`Command`.

    Raises:
        CommandError: 500 for an empty line or a verb that is not 3-4 ASCII letters.
    """
    line = line.removesuffix(b"\r")
    if _IAC_BYTE in line:
        line = strip_telnet(line)
    raw_verb, _, raw_arg = line.partition(b" ")
    if not (raw_verb.isalpha() and raw_verb.isascii() and 3 <= len(raw_verb) <= 4):
        raise CommandError(500, "Syntax error, command unrecognized.")
    return Command(raw_verb.decode("ascii").upper(), raw_arg.decode("utf-8", "surrogateescape"))


ArgRule = Literal["none", "required", "optional"]


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """What the control channel checks before running a command.

    Attributes:
        verb: the command name.
        syntax: the help text (``HELP CMD``).
        login: True when only a logged-in user may run it (530 otherwise).
        arg: ``"none"``, ``"required"`` or ``"optional"`` (501 when broken).
    """

    verb: str
    syntax: str
    login: bool
    arg: ArgRule


def _spec(verb: str, syntax: str, login: bool, arg: ArgRule) -> tuple[str, CommandSpec]:
    return verb, CommandSpec(verb, syntax, login, arg)


COMMANDS: dict[str, CommandSpec] = dict(
    [
        _spec("ABOR", "ABOR (abort transfer)", True, "none"),
        _spec("ACCT", "ACCT <SP> account-information (not implemented)", False, "required"),
        _spec("ALLO", "ALLO <SP> bytes (no-op)", True, "required"),
        _spec("APPE", "APPE <SP> file-name (append to file)", True, "required"),
        _spec("AUTH", "AUTH <SP> TLS (secure the control connection)", False, "required"),
        _spec("CCC", "CCC (clear the control connection: refused)", False, "none"),
        _spec("CDUP", "CDUP (go to the parent directory)", True, "none"),
        _spec("CWD", "CWD <SP> dir-name (change directory)", True, "optional"),
        _spec("DELE", "DELE <SP> file-name (delete file)", True, "required"),
        _spec("EPRT", "EPRT <SP> |proto|addr|port| (extended active mode)", True, "required"),
        _spec("EPSV", "EPSV [<SP> proto|ALL] (extended passive mode)", True, "optional"),
        _spec("FEAT", "FEAT (list extensions)", False, "none"),
        _spec("HELP", "HELP [<SP> command]", False, "optional"),
        _spec("LIST", "LIST [<SP> path] (ls -l listing)", True, "optional"),
        _spec("MDTM", "MDTM <SP> file-name (modification time)", True, "required"),
        _spec("MKD", "MKD <SP> dir-name (make directory)", True, "required"),
        _spec("MLSD", "MLSD [<SP> dir-name] (machine listing)", True, "optional"),
        _spec("MLST", "MLST [<SP> path] (machine facts of one entry)", True, "optional"),
        _spec("MODE", "MODE <SP> S (transfer mode)", False, "required"),
        _spec("NLST", "NLST [<SP> path] (name list)", True, "optional"),
        _spec("NOOP", "NOOP", False, "none"),
        _spec("OPTS", "OPTS <SP> command [<SP> options]", False, "required"),
        _spec("PASS", "PASS <SP> password", False, "optional"),
        _spec("PASV", "PASV (passive mode)", True, "none"),
        _spec("PBSZ", "PBSZ <SP> 0 (protection buffer size)", False, "required"),
        _spec("PORT", "PORT <SP> h1,h2,h3,h4,p1,p2 (active mode)", True, "required"),
        _spec("PROT", "PROT <SP> C|P (data channel protection)", False, "required"),
        _spec("PWD", "PWD (print working directory)", True, "none"),
        _spec("QUIT", "QUIT (end the session)", False, "none"),
        _spec("REIN", "REIN (reinitialize the session)", False, "none"),
        _spec("REST", "REST <SP> offset (restart marker)", True, "required"),
        _spec("RETR", "RETR <SP> file-name (download)", True, "required"),
        _spec("RMD", "RMD <SP> dir-name (remove directory)", True, "required"),
        _spec("RNFR", "RNFR <SP> file-name (rename from)", True, "required"),
        _spec("RNTO", "RNTO <SP> file-name (rename to)", True, "required"),
        _spec("SITE", "SITE <SP> CHMOD|HELP|DIRSTYLE ...", True, "required"),
        _spec("SIZE", "SIZE <SP> file-name (size in bytes)", True, "required"),
        _spec("STAT", "STAT [<SP> path] (status)", False, "optional"),
        _spec("STOR", "STOR <SP> file-name (upload)", True, "required"),
        _spec("STOU", "STOU [<SP> name] (upload under a unique name)", True, "optional"),
        _spec("STRU", "STRU <SP> F (file structure)", False, "required"),
        _spec("SYST", "SYST (system type)", False, "none"),
        _spec("TYPE", "TYPE <SP> A|I (transfer type)", False, "required"),
        _spec("USER", "USER <SP> user-name", False, "required"),
        _spec("XCUP", "XCUP (as CDUP, RFC 775)", True, "none"),
        _spec("XCWD", "XCWD <SP> dir-name (as CWD, RFC 775)", True, "required"),
        _spec("XMKD", "XMKD <SP> dir-name (as MKD, RFC 775)", True, "required"),
        _spec("XPWD", "XPWD (as PWD, RFC 775)", True, "none"),
        _spec("XRMD", "XRMD <SP> dir-name (as RMD, RFC 775)", True, "required"),
    ]
)
"""Every command this server knows, by verb (RFC 959 §4.1, RFC 2389, 2428, 3659, 4217)."""

NOT_IMPLEMENTED = frozenset({"SMNT", "LPRT", "LPSV", "ADAT", "MIC", "CONF", "ENC", "LANG"})
"""Commands recognized as FTP but not implemented here (502 rather than 500)."""
