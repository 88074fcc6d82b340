"""Data-connection and transfer commands: ``PORT``, ``PASV`` (RFC 959 §4.1.2), ``EPRT``,
``EPSV`` (RFC 2428), ``REST`` (RFC 3659 §5), ``RETR``, ``STOR``, ``STOU``, ``APPE``,
``ABOR``, ``LIST``, ``NLST`` (RFC 959 §4.1.3) and ``MLSD`` (RFC 3659 §7).

Active connections go only to the client's own address and to ports from 1024 up (RFC 2577
§3: no bounce attacks); passive connections are accepted only from the client's address
(RFC 2577 §5: no port theft).

Each handler takes the session's :class:`~medusa.ftp.state.SessionState` and the command's
argument and returns its reply or the action to carry out (:mod:`medusa.ftp.results`):
opening a data port, starting a transfer.
"""

from __future__ import annotations

import os
import posixpath
import stat

from medusa.core.producers import FileProducer
from medusa.ftp.arguments import MAX_OFFSET, parse_decimal
from medusa.ftp.hostport import AddressSyntaxError, parse_eprt, parse_port
from medusa.ftp.listings import (
    Listing,
    ListingProducer,
    list_listing,
    mlsd_lines,
    nlst_lines,
)
from medusa.ftp.results import (
    Abort,
    OpenPassive,
    Reply,
    Result,
    SetActive,
    StartTransfer,
    failure,
)
from medusa.ftp.state import SessionState
from medusa.ftp.transfers import AsciiProducer, Transfer, UploadFile

__all__ = ["HANDLERS"]


# -- data ports ------------------------------------------------------------------------------


def _active(s: SessionState, verb: str, host: str, port: int) -> Result:
    if s.epsv_all:
        return Reply(501, f"{verb} not allowed after EPSV ALL.")
    if host != s.peer_host and not s.server.permit_foreign_addresses:
        return Reply(
            501,
            "Rejected data connection to a foreign address.",
            f"{verb} to foreign address {host} refused",
        )
    if port < 1024 and not s.server.permit_privileged_ports:
        return Reply(504, "Rejected data connection to a privileged port.")
    return SetActive(host, port, Reply(200, f"{verb} command successful."))


def cmd_port(s: SessionState, arg: str) -> Result:
    """``PORT h1,h2,h3,h4,p1,p2``: the next transfer connects there (bounce-checked)."""
    try:
        host, port = parse_port(arg)
    except AddressSyntaxError as exc:
        return Reply(exc.code, str(exc))
    return _active(s, "PORT", host, port)


def cmd_eprt(s: SessionState, arg: str) -> Result:
    """``EPRT |proto|address|port|`` (RFC 2428 §2): as ``PORT``, IPv4 or IPv6."""
    try:
        host, port = parse_eprt(arg)
    except AddressSyntaxError as exc:
        return Reply(exc.code, str(exc))
    return _active(s, "EPRT", host, port)


def cmd_pasv(s: SessionState, arg: str) -> Result:
    """``PASV``: 227 with the address to connect to: the masquerade address when set, else
    the one the client connected to (behind a trusted proxy, the destination of its PROXY
    header)."""
    if s.epsv_all:
        return Reply(501, "PASV not allowed after EPSV ALL.")
    host = s.server.masquerade_address or s.public_host
    if ":" in host:
        return Reply(425, "PASV is IPv4 only; use EPSV.")
    return OpenPassive(False, host)


def cmd_epsv(s: SessionState, arg: str) -> Result:
    """``EPSV [1|2|ALL]`` (RFC 2428 §3): 229 with the port."""
    value = arg.strip().upper()
    if value == "ALL":
        s.epsv_all = True
        return Reply(200, "EPSV ALL ok.")
    family = "2" if ":" in s.public_host else "1"
    if value and value != family:
        return Reply(522, f"Network protocol not supported, use ({family})")
    return OpenPassive(True, s.public_host)


# -- transfers -------------------------------------------------------------------------------


def cmd_rest(s: SessionState, arg: str) -> Result:
    """``REST offset`` (RFC 3659 §5, STREAM mode): where the next ``RETR``/``STOR`` starts;
    501 unless the offset is ASCII digits for at most ``2**63 - 1`` bytes."""
    offset = parse_decimal(arg.strip(), MAX_OFFSET)
    if offset is None:
        return Reply(501, "Invalid REST parameter: a byte offset is required.")
    s.restart = offset
    return Reply(350, f"Restarting at {offset}. Send STOR or RETR to start the transfer.")


_NO_PORT = Reply(425, "Use PORT, PASV, EPRT or EPSV first.")
_CLEAR_DATA = Reply(521, "Data connections must be encrypted (PROT P).")


def _data_refusal(s: SessionState) -> Reply | None:
    """Why a transfer cannot start on this session's data connection, or None."""
    data = s.data
    if data is None or not data.has_port:
        return _NO_PORT
    if s.server.tls_data_required and not s.protect_data:
        return _CLEAR_DATA
    return None


def cmd_retr(s: SessionState, arg: str) -> Result:
    """``RETR path``: send a file (zero-copy ``sendfile`` in ``TYPE I`` on a plain data
    connection), from the ``REST`` offset."""
    offset, s.restart = s.restart, 0
    fs = s.checked_fs("r", arg)
    if isinstance(fs, Reply):
        return fs
    if s.server.tls_data_required and not s.protect_data:
        return _CLEAR_DATA
    try:
        opened = fs.open_read(arg)
    except OSError as exc:
        return failure(exc)
    if not stat.S_ISREG(opened.stat.st_mode):
        os.close(opened.fd)  # (a directory cannot even be wrapped in a file object)
        return Reply(550, "Not a regular file.")
    file = os.fdopen(opened.fd, "rb")
    if offset > opened.stat.st_size:
        file.close()
        return Reply(554, f"Invalid REST parameter: the file has {opened.stat.st_size} bytes.")
    if not s.has_port:
        file.close()
        return _NO_PORT
    producer = FileProducer(file, offset, opened.stat.st_size - offset)
    path = fs.normalize(arg)
    transfer = Transfer("RETR", path, producer=producer, ascii=not s.binary)
    if not s.binary:
        transfer.producer = AsciiProducer(producer)
    transfer.size = opened.stat.st_size
    return StartTransfer(transfer)


def _upload(
    s: SessionState,
    verb: str,
    path: str,
    *,
    offset: int = 0,
    append: bool = False,
    exclusive: bool = False,
    preliminary: str | None = None,
) -> Result:
    fs = s.fs
    assert fs is not None
    refused = s.reserved(path) or (None if s.has_port else _NO_PORT)
    if refused is not None:
        return refused
    try:
        if offset:
            size = fs.stat(path).st_size
            if offset > size:
                return Reply(554, f"Invalid REST parameter: the file has {size} bytes.")
        upload = UploadFile(
            fs, path, offset=offset, append=append, ascii=not s.binary, exclusive=exclusive
        )
    except OSError as exc:
        return failure(exc)
    transfer = Transfer(verb, upload.path, upload=upload, ascii=not s.binary)
    return StartTransfer(transfer, preliminary, f"{verb} {upload.path} started")


def _upload_refusal(s: SessionState, letter: str) -> Reply | None:
    refused = s.refusal(letter)
    if refused is None and s.server.tls_data_required and not s.protect_data:
        return _CLEAR_DATA
    return refused


def cmd_stor(s: SessionState, arg: str) -> Result:
    """``STOR path``: receive a file into a temporary file, renamed over ``path`` when the
    upload completes; after ``REST n``, continue the existing file from byte ``n``."""
    offset, s.restart = s.restart, 0
    return _upload_refusal(s, "w") or _upload(s, "STOR", arg, offset=offset)


def cmd_appe(s: SessionState, arg: str) -> Result:
    """``APPE path``: receive data appended to ``path`` (created when missing)."""
    s.restart = 0
    return _upload_refusal(s, "a") or _upload(s, "APPE", arg, append=True)


def cmd_stou(s: SessionState, arg: str) -> Result:
    """``STOU [name]`` (RFC 959 §4.1.3, RFC 1123 §4.1.2.9): store under a name not yet
    used (``name``, ``name.1``, ... or ``upload``...), announced as ``150 FILE: name``."""
    fs = s.fs
    assert fs is not None
    s.restart = 0
    refused = _upload_refusal(s, "w")
    if refused is not None:
        return refused
    try:
        base = fs.normalize(arg.strip() or "upload")
    except OSError as exc:
        return failure(exc)
    candidate = base
    for number in range(1, 1000):
        if not fs.exists(candidate):
            break
        candidate = f"{base}.{number}"
    else:
        return Reply(450, "No unique name available.")
    name = posixpath.basename(candidate)
    return _upload(s, "STOU", candidate, exclusive=True, preliminary=f"FILE: {name}")


_ABORT = Abort()


def cmd_abor(s: SessionState, arg: str) -> Result:
    """``ABOR`` (RFC 959 §4.1.3): 426 for an aborted transfer, then 226; 225 when none."""
    return _ABORT


# -- listings --------------------------------------------------------------------------------


def cmd_list(s: SessionState, arg: str) -> Result:
    """``LIST [path]``: ``ls -l`` lines (or MS-DOS lines) on the data connection. Every
    entry is examined before the reply (an error gets its 450/550 instead of 150); the
    lines are formatted after it, when the data connection takes them."""
    fs = s.fs
    assert fs is not None
    refused = s.refusal("l") or _data_refusal(s)
    if refused is not None:
        return refused
    try:
        listing = list_listing(fs, arg, s.listing_style)
    except OSError as exc:
        return failure(exc, 450 if isinstance(exc, PermissionError) else 550)
    return StartTransfer(Transfer("LIST", arg, producer=ListingProducer(listing)))


def _send_listing(verb: str, path: str, lines: list[str]) -> Result:
    producer = ListingProducer(Listing(None, made=lines))
    return StartTransfer(Transfer(verb, path, producer=producer))


def cmd_nlst(s: SessionState, arg: str) -> Result:
    """``NLST [path]``: names only, one a line."""
    fs = s.fs
    assert fs is not None
    refused = s.refusal("l") or _data_refusal(s)
    if refused is not None:
        return refused
    try:
        names = nlst_lines(fs, arg)
    except OSError as exc:
        return failure(exc)
    return _send_listing("NLST", arg, names)


def cmd_mlsd(s: SessionState, arg: str) -> Result:
    """``MLSD [dir]`` (RFC 3659 §7): facts of each entry; 501 for a file."""
    fs, account = s.fs, s.account
    assert fs is not None
    assert account is not None
    refused = s.refusal("l") or _data_refusal(s)
    if refused is not None:
        return refused
    try:
        lines = mlsd_lines(fs, arg or ".", s.facts, account.perms)
    except NotADirectoryError:
        return Reply(501, "Not a directory.")
    except OSError as exc:
        return failure(exc)
    return _send_listing("MLSD", arg, lines)


HANDLERS = {
    "PORT": cmd_port,
    "EPRT": cmd_eprt,
    "PASV": cmd_pasv,
    "EPSV": cmd_epsv,
    "REST": cmd_rest,
    "RETR": cmd_retr,
    "STOR": cmd_stor,
    "APPE": cmd_appe,
    "STOU": cmd_stou,
    "ABOR": cmd_abor,
    "LIST": cmd_list,
    "NLST": cmd_nlst,
    "MLSD": cmd_mlsd,
}
"""The handlers of this module by verb."""
