"""Access control and security commands: ``USER``, ``PASS``, ``ACCT``, ``REIN``, ``QUIT``
(RFC 959 §4.1.1) and ``AUTH``, ``PBSZ``, ``PROT``, ``CCC`` (RFC 4217, RFC 2228).

Each handler takes the session's :class:`~medusa.ftp.state.SessionState` and the command's
argument and returns its reply or the action to carry out (:mod:`medusa.ftp.results`).
"""

from __future__ import annotations

from medusa.ftp.arguments import MAX_PBSZ, parse_decimal
from medusa.ftp.authorizers import ANONYMOUS_NAMES
from medusa.ftp.results import Close, Login, Logout, Reply, Result, SecureControl
from medusa.ftp.state import SessionState

__all__ = ["HANDLERS"]

_QUIT = Close(Reply(221, "Goodbye."), "quit")
_ANONYMOUS_OK = Reply(331, "Anonymous login ok, send your e-mail address as password.")


def cmd_user(s: SessionState, arg: str) -> Result:
    """``USER name`` (RFC 959 §4.1.1): 331, whether or not the user exists."""
    if s.account is not None:
        return Reply(503, "Already logged in; use REIN to log in again.")
    anonymous = arg.lower() in ANONYMOUS_NAMES
    if s.server.tls_control_required and not s.tls and not anonymous:
        return Reply(534, "Policy requires TLS: use AUTH TLS first.")
    s.pending_user = arg
    if anonymous:
        return _ANONYMOUS_OK
    return Reply(331, f"Password required for {arg}.")


def cmd_pass(s: SessionState, arg: str) -> Result:
    """``PASS password`` (RFC 959 §4.1.1): the password is checked (:class:`Login`): 230
    or, after a growing delay, 530."""
    if s.account is not None:
        return Reply(503, "Already logged in.")
    if s.pending_user is None:
        return Reply(503, "Login with USER first.")
    return Login(s.pending_user, arg)


def cmd_acct(s: SessionState, arg: str) -> Result:
    """``ACCT`` (RFC 959 §4.1.1): accounts are not used here."""
    return Reply(502, "ACCT not implemented.")


def cmd_rein(s: SessionState, arg: str) -> Result:
    """``REIN`` (RFC 959 §4.1.1): log out, keep the connection (and its TLS)."""
    return Logout(Reply(220, "Ready for new user."))


def cmd_quit(s: SessionState, arg: str) -> Result:
    """``QUIT`` (RFC 959 §4.1.1): 221 and close."""
    return _QUIT


def cmd_auth(s: SessionState, arg: str) -> Result:
    """``AUTH TLS`` (RFC 4217 §4): 234, then the TLS handshake on the control connection."""
    mechanism = arg.strip().upper()
    context = s.server.tls_context
    if mechanism not in ("TLS", "TLS-C", "SSL", "TLS-P"):
        return Reply(504, f"AUTH {mechanism} not supported (use AUTH TLS).")
    if context is None:
        return Reply(502, "AUTH TLS not available: the server has no certificate.")
    if s.tls:
        return Reply(503, "The control connection is already secured.")
    return SecureControl(Reply(234, f"AUTH {mechanism} successful."), context)


def cmd_pbsz(s: SessionState, arg: str) -> Result:
    """``PBSZ 0`` (RFC 4217 §8): only after ``AUTH``; always 0 for TLS."""
    if not s.tls:
        return Reply(503, "PBSZ not allowed on an unsecured control connection.")
    if parse_decimal(arg.strip(), MAX_PBSZ) is None:
        return Reply(501, "PBSZ takes a number (0 to 4294967295).")
    s.pbsz = True
    return Reply(200, "PBSZ=0")


def cmd_prot(s: SessionState, arg: str) -> Result:
    """``PROT C|P`` (RFC 4217 §9): clear or private data connections."""
    level = arg.strip().upper()
    if not s.tls:
        return Reply(503, "PROT not allowed on an unsecured control connection.")
    if not s.pbsz:
        return Reply(503, "You must issue the PBSZ command prior to PROT.")
    if level == "C":
        if s.server.tls_data_required:
            return Reply(534, "Policy requires private data connections (PROT P).")
        s.protect_data = False
        return Reply(200, "Protection level set to Clear.")
    if level == "P":
        s.protect_data = True
        return Reply(200, "Protection level set to Private.")
    if level in ("S", "E"):
        return Reply(536, "Requested PROT level not supported by mechanism.")
    return Reply(504, f"Unknown protection level {level!r}.")


def cmd_ccc(s: SessionState, arg: str) -> Result:
    """``CCC`` (RFC 4217 §6): refused, the control connection stays encrypted."""
    if not s.tls:
        return Reply(533, "The control connection is not secured.")
    return Reply(534, "CCC refused: the control connection stays encrypted.")


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
