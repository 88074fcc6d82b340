"""Access control and security commands: ``USER``, ``PASS``, ``ACCT``, ``REIN``, ``QUIT``
(RFC 959 §4.1.1) and ``AUTH``, ``PBSZ``, ``PROT``, ``CCC`` (RFC 4217, RFC 2228).

Each handler takes the session and the command's argument and sends the replies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from medusa.ftp.arguments import MAX_PBSZ, parse_decimal
from medusa.ftp.authorizers import ANONYMOUS_NAMES

if TYPE_CHECKING:
    from medusa.ftp.session import FTPChannel

__all__ = ["HANDLERS"]


def cmd_user(ch: FTPChannel, arg: str) -> None:
    """``USER name`` (RFC 959 §4.1.1): 331, whether or not the user exists."""
    if ch.account is not None:
        ch.reply(503, "Already logged in; use REIN to log in again.")
        return
    anonymous = arg.lower() in ANONYMOUS_NAMES
    if ch.ftp.tls_control_required and not ch.tls and not anonymous:
        ch.reply(534, "Policy requires TLS: use AUTH TLS first.")
        return
    ch.pending_user = arg
    if anonymous:
        ch.reply(331, "Anonymous login ok, send your e-mail address as password.")
    else:
        ch.reply(331, f"Password required for {arg}.")


def cmd_pass(ch: FTPChannel, arg: str) -> None:
    """``PASS password`` (RFC 959 §4.1.1): 230 or, after a growing delay, 530."""
    if ch.account is not None:
        ch.reply(503, "Already logged in.")
        return
    if ch.pending_user is None:
        ch.reply(503, "Login with USER first.")
        return
    ch.start_login(ch.pending_user, arg)


def cmd_acct(ch: FTPChannel, arg: str) -> None:
    """``ACCT`` (RFC 959 §4.1.1): accounts are not used here."""
    ch.reply(502, "ACCT not implemented.")


def cmd_rein(ch: FTPChannel, arg: str) -> None:
    """``REIN`` (RFC 959 §4.1.1): log out, keep the connection (and its TLS)."""
    ch.logout()
    ch.reply(220, "Ready for new user.")


def cmd_quit(ch: FTPChannel, arg: str) -> None:
    """``QUIT`` (RFC 959 §4.1.1): 221 and close."""
    ch.reply(221, "Goodbye.")
    ch.log_session("quit")
    ch.close_when_done()


def cmd_auth(ch: FTPChannel, arg: str) -> None:
    """``AUTH TLS`` (RFC 4217 §4): 234, then the TLS handshake on the control connection."""
    mechanism = arg.strip().upper()
    context = ch.ftp.tls_context
    if mechanism not in ("TLS", "TLS-C", "SSL", "TLS-P"):
        ch.reply(504, f"AUTH {mechanism} not supported (use AUTH TLS).")
    elif context is None:
        ch.reply(502, "AUTH TLS not available: the server has no certificate.")
    elif ch.tls:
        ch.reply(503, "The control connection is already secured.")
    else:
        ch.reply(234, f"AUTH {mechanism} successful.")
        ch.start_tls(context)


def cmd_pbsz(ch: FTPChannel, arg: str) -> None:
    """``PBSZ 0`` (RFC 4217 §8): only after ``AUTH``; always 0 for TLS."""
    if not ch.tls:
        ch.reply(503, "PBSZ not allowed on an unsecured control connection.")
        return
    if parse_decimal(arg.strip(), MAX_PBSZ) is None:
        ch.reply(501, "PBSZ takes a number (0 to 4294967295).")
        return
    ch.pbsz = True
    ch.reply(200, "PBSZ=0")


def cmd_prot(ch: FTPChannel, arg: str) -> None:
    """``PROT C|P`` (RFC 4217 §9): clear or private data connections."""
    level = arg.strip().upper()
    if not ch.tls:
        ch.reply(503, "PROT not allowed on an unsecured control connection.")
    elif not ch.pbsz:
        ch.reply(503, "You must issue the PBSZ command prior to PROT.")
    elif level == "C":
        if ch.ftp.tls_data_required:
            ch.reply(534, "Policy requires private data connections (PROT P).")
            return
        ch.protect_data = False
        ch.reply(200, "Protection level set to Clear.")
    elif level == "P":
        ch.protect_data = True
        ch.reply(200, "Protection level set to Private.")
    elif level in ("S", "E"):
        ch.reply(536, "Requested PROT level not supported by mechanism.")
    else:
        ch.reply(504, f"Unknown protection level {level!r}.")


def cmd_ccc(ch: FTPChannel, arg: str) -> None:
    """``CCC`` (RFC 4217 §6): refused, the control connection stays encrypted."""
    if not ch.tls:
        ch.reply(533, "The control connection is not secured.")
    else:
        ch.reply(534, "CCC refused: the control connection stays encrypted.")


HANDLERS = {
    "USER": cmd_user,
    "PASS": cmd_pass,
    "ACCT": cmd_acct,
    "REIN": cmd_rein,
    "QUIT": cmd_quit,
    "AUTH": cmd_auth,
    "PBSZ": cmd_pbsz,
    "PROT": cmd_prot,
    "CCC": cmd_ccc,
}
"""The handlers of this module by verb."""
