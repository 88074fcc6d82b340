"""Data-connection and transfer commands: ``PORT``, ``PASV`` (RFC 959 §4.1.2), ``EPRT``,
``EPSV`` (RFC 2428), ``REST`` (RFC 3659 §5), ``RETR``, ``STOR``, ``STOU``, ``APPE``,
``ABOR``, ``LIST``, ``NLST`` (RFC 959 §4.1.3) and ``MLSD`` (RFC 3659 §7).

Active connections go only to the client's own address and to ports from 1024 up (RFC 2577
§3: no bounce attacks); passive connections are accepted only from the client's address
(RFC 2577 §5: no port theft).
"""

from __future__ import annotations

import os
import posixpath
import stat
from typing import TYPE_CHECKING

from medusa.core.producers import FileProducer
from medusa.ftp.arguments import MAX_OFFSET, parse_decimal
from medusa.ftp.hostport import AddressSyntaxError, epsv_reply, parse_eprt, parse_port, pasv_reply
from medusa.ftp.listings import (
    Listing,
    ListingProducer,
    list_listing,
    mlsd_lines,
    nlst_lines,
)
from medusa.ftp.passive import PassiveListener
from medusa.ftp.transfers import AsciiProducer, Transfer, UploadFile

if TYPE_CHECKING:
    from medusa.ftp.session import FTPChannel

__all__ = ["HANDLERS"]


# -- data ports ------------------------------------------------------------------------------


def _active(ch: FTPChannel, verb: str, host: str, port: int) -> None:
    if ch.epsv_all:
        ch.reply(501, f"{verb} not allowed after EPSV ALL.")
    elif host != ch.peer_host and not ch.ftp.permit_foreign_addresses:
        ch.log_session(f"{verb} to foreign address {host} refused")
        ch.reply(501, "Rejected data connection to a foreign address.")
    elif port < 1024 and not ch.ftp.permit_privileged_ports:
        ch.reply(504, "Rejected data connection to a privileged port.")
    else:
        ch.dtp.set_active(host, port)
        ch.reply(200, f"{verb} command successful.")


def cmd_port(ch: FTPChannel, arg: str) -> None:
    """``PORT h1,h2,h3,h4,p1,p2``: the next transfer connects there (bounce-checked)."""
    try:
        host, port = parse_port(arg)
    except AddressSyntaxError as exc:
        ch.reply(exc.code, str(exc))
        return
    _active(ch, "PORT", host, port)


def cmd_eprt(ch: FTPChannel, arg: str) -> None:
    """``EPRT |proto|address|port|`` (RFC 2428 §2): as ``PORT``, IPv4 or IPv6."""
    try:
        host, port = parse_eprt(arg)
    except AddressSyntaxError as exc:
        ch.reply(exc.code, str(exc))
        return
    _active(ch, "EPRT", host, port)


def _listen(ch: FTPChannel) -> PassiveListener | None:
    """A listening socket for the next data connection, or None after a 425."""
    try:
        return ch.dtp.open_passive()
    except OSError as exc:
        ch.log_session(f"passive listen failed: {exc}")
        ch.reply(425, "Cannot open a passive data connection.")
        return None


def cmd_pasv(ch: FTPChannel, arg: str) -> None:
    """``PASV``: 227 with the address to connect to: the masquerade address when set, else
    the one the client connected to (behind a trusted proxy, the destination of its PROXY
    header)."""
    if ch.epsv_all:
        ch.reply(501, "PASV not allowed after EPSV ALL.")
        return
    host = ch.ftp.masquerade_address or ch.public_host
    if ":" in host:
        ch.reply(425, "PASV is IPv4 only; use EPSV.")
        return
    listener = _listen(ch)
    if listener is not None:
        ch.reply(227, pasv_reply(host, listener.port))
        listener.start()  # after the reply: the client connects meanwhile


def cmd_epsv(ch: FTPChannel, arg: str) -> None:
    """``EPSV [1|2|ALL]`` (RFC 2428 §3): 229 with the port."""
    value = arg.strip().upper()
    if value == "ALL":
        ch.epsv_all = True
        ch.reply(200, "EPSV ALL ok.")
        return
    family = "2" if ":" in ch.public_host else "1"
    if value and value != family:
        ch.reply(522, f"Network protocol not supported, use ({family})")
        return
    listener = _listen(ch)
    if listener is not None:
        ch.reply(229, epsv_reply(listener.port))
        listener.start()


# -- transfers -------------------------------------------------------------------------------


def cmd_rest(ch: FTPChannel, arg: str) -> None:
    """``REST offset`` (RFC 3659 §5, STREAM mode): where the next ``RETR``/``STOR`` starts;
    501 unless the offset is ASCII digits for at most ``2**63 - 1`` bytes."""
    offset = parse_decimal(arg.strip(), MAX_OFFSET)
    if offset is None:
        ch.reply(501, "Invalid REST parameter: a byte offset is required.")
        return
    ch.restart = offset
    ch.reply(350, f"Restarting at {ch.restart}. Send STOR or RETR to start the transfer.")


def _data_policy_ok(ch: FTPChannel) -> bool:
    if ch.ftp.tls_data_required and not ch.protect_data:
        ch.reply(521, "Data connections must be encrypted (PROT P).")
        return False
    return True


def cmd_retr(ch: FTPChannel, arg: str) -> None:
    """``RETR path``: send a file (zero-copy ``sendfile`` in ``TYPE I`` on a plain data
    connection), from the ``REST`` offset."""
    assert ch.fs is not None
    offset, ch.restart = ch.restart, 0
    if not ch.allowed("r") or ch.hidden(arg) or not _data_policy_ok(ch):
        return
    try:
        opened = ch.fs.open_read(arg)
    except OSError as exc:
        ch.fail(exc)
        return
    file = os.fdopen(opened.fd, "rb")
    if not stat.S_ISREG(opened.stat.st_mode):
        file.close()
        ch.reply(550, "Not a regular file.")
        return
    if offset > opened.stat.st_size:
        file.close()
        ch.reply(554, f"Invalid REST parameter: the file has {opened.stat.st_size} bytes.")
        return
    if not _has_data_port(ch):
        file.close()
        return
    producer = FileProducer(file, offset, opened.stat.st_size - offset)
    path = ch.fs.normalize(arg)
    transfer = Transfer("RETR", path, producer=producer, ascii=not ch.binary)
    if not ch.binary:
        transfer.producer = AsciiProducer(producer)
    transfer.size = opened.stat.st_size
    ch.dtp.start_transfer(transfer)


def _has_data_port(ch: FTPChannel) -> bool:
    if not ch.dtp.has_port:
        ch.reply(425, "Use PORT, PASV, EPRT or EPSV first.")
        return False
    return True


def _upload(
    ch: FTPChannel,
    verb: str,
    path: str,
    *,
    offset: int = 0,
    append: bool = False,
    exclusive: bool = False,
    preliminary: str | None = None,
) -> None:
    assert ch.fs is not None
    if ch.reserved(path) or not _has_data_port(ch):
        return
    try:
        if offset:
            size = ch.fs.stat(path).st_size
            if offset > size:
                ch.reply(554, f"Invalid REST parameter: the file has {size} bytes.")
                return
        upload = UploadFile(
            ch.fs, path, offset=offset, append=append, ascii=not ch.binary, exclusive=exclusive
        )
    except OSError as exc:
        ch.fail(exc)
        return
    ch.log_session(f"{verb} {upload.path} started")
    transfer = Transfer(verb, upload.path, upload=upload, ascii=not ch.binary)
    ch.dtp.start_transfer(transfer, preliminary)


def cmd_stor(ch: FTPChannel, arg: str) -> None:
    """``STOR path``: receive a file into a temporary file, renamed over ``path`` when the
    upload completes; after ``REST n``, continue the existing file from byte ``n``."""
    offset, ch.restart = ch.restart, 0
    if ch.allowed("w") and _data_policy_ok(ch):
        _upload(ch, "STOR", arg, offset=offset)


def cmd_appe(ch: FTPChannel, arg: str) -> None:
    """``APPE path``: receive data appended to ``path`` (created when missing)."""
    ch.restart = 0
    if ch.allowed("a") and _data_policy_ok(ch):
        _upload(ch, "APPE", arg, append=True)


def cmd_stou(ch: FTPChannel, arg: str) -> None:
    """``STOU [name]`` (RFC 959 §4.1.3, RFC 1123 §4.1.2.9): store under a name not yet
    used (``name``, ``name.1``, ... or ``upload``...), announced as ``150 FILE: name``."""
    assert ch.fs is not None
    ch.restart = 0
    if not ch.allowed("w") or not _data_policy_ok(ch):
        return
    try:
        base = ch.fs.normalize(arg.strip() or "upload")
    except OSError as exc:
        ch.fail(exc)
        return
    candidate = base
    for number in range(1, 1000):
        if not ch.fs.exists(candidate):
            break
        candidate = f"{base}.{number}"
    else:
        ch.reply(450, "No unique name available.")
        return
    name = posixpath.basename(candidate)
    _upload(ch, "STOU", candidate, exclusive=True, preliminary=f"FILE: {name}")


def cmd_abor(ch: FTPChannel, arg: str) -> None:
    """``ABOR`` (RFC 959 §4.1.3): 426 for an aborted transfer, then 226; 225 when none."""
    if ch.dtp.abort_transfer(resume=False):
        ch.reply(226, "ABOR command successful.")
        ch.release()
        return
    ch.dtp.close_data()
    ch.reply(225, "No transfer to abort.")


# -- listings --------------------------------------------------------------------------------


def _send_listing(ch: FTPChannel, verb: str, path: str, lines: list[str]) -> None:
    producer = ListingProducer(Listing(None, made=lines))
    ch.dtp.start_transfer(Transfer(verb, path, producer=producer))


def cmd_list(ch: FTPChannel, arg: str) -> None:
    """``LIST [path]``: ``ls -l`` lines (or MS-DOS lines) on the data connection. Every
    entry is examined before the reply (an error gets its 450/550 instead of 150); the
    lines are formatted after it, when the data connection takes them."""
    assert ch.fs is not None
    if not ch.allowed("l") or not _has_data_port(ch) or not _data_policy_ok(ch):
        return
    try:
        listing = list_listing(ch.fs, arg, ch.listing_style)
    except OSError as exc:
        ch.fail(exc, 450 if isinstance(exc, PermissionError) else 550)
        return
    ch.dtp.start_transfer(Transfer("LIST", arg, producer=ListingProducer(listing)))


def cmd_nlst(ch: FTPChannel, arg: str) -> None:
    """``NLST [path]``: names only, one a line."""
    assert ch.fs is not None
    if not ch.allowed("l") or not _has_data_port(ch) or not _data_policy_ok(ch):
        return
    try:
        names = nlst_lines(ch.fs, arg)
    except OSError as exc:
        ch.fail(exc)
        return
    _send_listing(ch, "NLST", arg, names)


def cmd_mlsd(ch: FTPChannel, arg: str) -> None:
    """``MLSD [dir]`` (RFC 3659 §7): facts of each entry; 501 for a file."""
    assert ch.fs is not None
    assert ch.account is not None
    if not ch.allowed("l") or not _has_data_port(ch) or not _data_policy_ok(ch):
        return
    try:
        lines = mlsd_lines(ch.fs, arg or ".", ch.facts, ch.account.perms)
    except NotADirectoryError:
        ch.reply(501, "Not a directory.")
        return
    except OSError as exc:
        ch.fail(exc)
        return
    _send_listing(ch, "MLSD", arg, lines)


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
