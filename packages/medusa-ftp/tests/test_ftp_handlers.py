"""Command handlers without sockets: a :class:`SessionState` (with a real filesystem in a
temporary directory and an FTP server's settings, never started) and an argument in, a
reply or an action out (RFC 959 §4, RFC 2428, RFC 3659, RFC 4217). The socket tests
(test_ftp_protocol.py, the e2e clients) stay as the end-to-end proof."""

from __future__ import annotations

from pathlib import Path

import pytest
import trustme

from medusa.core.filesys import OSFilesystem
from medusa.ftp import FTPServer
from medusa.ftp.accounts import READ_ONLY, Account, parse_permissions
from medusa.ftp.dispatch import HANDLERS
from medusa.ftp.results import (
    Abort,
    Close,
    Login,
    Logout,
    OpenPassive,
    Reply,
    Result,
    SecureControl,
    SetActive,
    StartTransfer,
)
from medusa.ftp.state import SessionState
from medusa.ftp.transfers import Transfer

ALL_RESULTS = (
    Reply,
    Close,
    Login,
    Logout,
    SecureControl,
    SetActive,
    OpenPassive,
    StartTransfer,
    Abort,
)


class Prepared:
    """A data side with a data port prepared (as after ``PASV``) and no transfer."""

    has_port = True
    transfer: Transfer | None = None


def state_for(tmp_path: Path, perms: str | None = None, **settings: object) -> SessionState:
    """A session logged in on ``tmp_path/root`` (anonymous, read-only, unless ``perms``)."""
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    server = FTPServer(("127.0.0.1", 0), anonymous_root=root, **settings)  # type: ignore[arg-type]
    state = SessionState(server, peer_host="127.0.0.1", public_host="127.0.0.1")
    if perms is None:
        state.account = Account("anonymous", str(root), READ_ONLY, anonymous=True)
    else:
        state.account = Account("alice", str(root), parse_permissions(perms))
    state.fs = OSFilesystem(root)
    return state


def run(state: SessionState, line: str) -> Result:
    verb, _, arg = line.partition(" ")
    return HANDLERS[verb](state, arg)


def code(result: Result) -> int:
    """The code of a reply (the result must be one)."""
    assert isinstance(result, Reply), result
    return result.code


def test_transfer_parameters_change_the_state(tmp_path: Path) -> None:
    s = state_for(tmp_path)
    assert run(s, "TYPE I") == Reply(200, "Type set to I.")
    assert s.binary
    assert run(s, "TYPE A N") == Reply(200, "Type set to A.")
    assert not s.binary
    assert code(run(s, "TYPE E")) == 504
    assert code(run(s, "MODE B")) == 504
    assert run(s, "STRU F") == Reply(200, "Structure set to F.")
    assert code(run(s, "REST 100")) == 350
    assert s.restart == 100
    assert code(run(s, "REST -1")) == 501
    assert run(s, "SITE DIRSTYLE") == Reply(200, "Listing style is now msdos.")
    assert s.listing_style == "msdos"


def test_login_commands_return_actions(tmp_path: Path) -> None:
    s = state_for(tmp_path)
    s.account = None
    assert run(s, "PASS x") == Reply(503, "Login with USER first.")
    assert run(s, "USER alice") == Reply(331, "Password required for alice.")
    assert s.pending_user == "alice"
    assert run(s, "PASS secret") == Login("alice", "secret")
    assert run(s, "QUIT") == Close(Reply(221, "Goodbye."), "quit")
    assert run(s, "REIN") == Logout(Reply(220, "Ready for new user."))
    assert code(run(s, "AUTH TLS")) == 502  # no certificate
    assert code(run(s, "AUTH KERBEROS")) == 504


def test_tls_data_protection_follows_rfc_4217(tmp_path: Path) -> None:
    s = state_for(tmp_path)
    assert code(run(s, "PBSZ 0")) == 503  # before AUTH
    s.tls = True
    assert run(s, "PROT P") == Reply(503, "You must issue the PBSZ command prior to PROT.")
    assert run(s, "PBSZ 0") == Reply(200, "PBSZ=0")
    assert run(s, "PROT P") == Reply(200, "Protection level set to Private.")
    assert s.protect_data
    assert code(run(s, "PROT S")) == 536
    assert code(run(s, "CCC")) == 534


def test_permissions_and_file_commands(tmp_path: Path) -> None:
    anonymous = state_for(tmp_path)
    assert run(anonymous, "MKD new") == Reply(550, "Permission denied.")
    assert not (tmp_path / "root" / "new").exists()
    s = state_for(tmp_path, "elradfmw")
    assert run(s, "MKD new") == Reply(257, '"/new" directory created.', "MKD /new")
    assert (tmp_path / "root" / "new").is_dir()
    assert run(s, "CWD new") == Reply(250, "Directory changed to /new.")
    assert run(s, "PWD") == Reply(257, '"/new" is the current directory.')
    assert run(s, "CWD /missing") == Reply(550, "No such file or directory.")
    assert run(s, "CDUP") == Reply(250, "Directory changed to /.")
    assert run(s, "RNTO x") == Reply(503, "Bad sequence of commands: use RNFR first.")
    assert run(s, "RNFR new") == Reply(350, "Ready for destination name.")
    assert s.rename_from == "/new"
    assert run(s, "RNTO old") == Reply(250, "Rename successful.", "RNFR /new RNTO /old")
    assert s.rename_from is None
    assert (tmp_path / "root" / "old").is_dir()
    assert run(s, "RMD /") == Reply(550, "Cannot remove the root directory.")
    assert run(s, "DELE old") == Reply(550, "Is a directory (use RMD).")
    assert run(s, "RMD old") == Reply(250, "Directory removed.", "RMD /old")


def test_size_in_ascii_mode_and_of_a_file(tmp_path: Path) -> None:
    s = state_for(tmp_path)
    (tmp_path / "root" / "f.bin").write_bytes(b"x" * 10)
    assert run(s, "SIZE f.bin") == Reply(550, "SIZE not allowed in ASCII mode (use TYPE I).")
    s.binary = True
    assert run(s, "SIZE f.bin") == Reply(213, "10")
    assert run(s, "SIZE /") == Reply(550, "Not a regular file.")


def test_an_upload_in_progress_is_hidden_and_its_name_reserved(tmp_path: Path) -> None:
    s = state_for(tmp_path, "elradfmw")
    s.data = Prepared()
    temporary = ".f.abcdef12.part"
    (tmp_path / "root" / temporary).write_bytes(b"")
    assert run(s, f"RETR {temporary}") == Reply(550, "No such file or directory.")
    assert code(run(s, f"STOR {temporary}")) == 553


def test_data_ports(tmp_path: Path) -> None:
    s = state_for(tmp_path)
    assert run(s, "PASV") == OpenPassive(False, "127.0.0.1")
    assert run(s, "EPSV") == OpenPassive(True, "127.0.0.1")
    assert run(s, "EPSV 2") == Reply(522, "Network protocol not supported, use (1)")
    assert run(s, "PORT 127,0,0,1,200,10") == SetActive(
        "127.0.0.1", 51210, Reply(200, "PORT command successful.")
    )
    foreign = run(s, "PORT 192,0,2,1,200,10")
    assert foreign == Reply(
        501,
        "Rejected data connection to a foreign address.",
        "PORT to foreign address 192.0.2.1 refused",
    )
    assert code(run(s, "PORT 127,0,0,1,0,21")) == 504
    assert run(s, "EPSV ALL") == Reply(200, "EPSV ALL ok.")
    assert run(s, "PASV") == Reply(501, "PASV not allowed after EPSV ALL.")
    six = state_for(tmp_path)
    six.public_host = "::1"
    assert run(six, "PASV") == Reply(425, "PASV is IPv4 only; use EPSV.")
    masqueraded = state_for(tmp_path, masquerade_address="192.0.2.9")
    assert run(masqueraded, "PASV") == OpenPassive(False, "192.0.2.9")


def test_listings_and_downloads_start_transfers(tmp_path: Path) -> None:
    s = state_for(tmp_path)
    (tmp_path / "root" / "f.txt").write_bytes(b"hello\n")
    assert run(s, "LIST") == Reply(425, "Use PORT, PASV, EPRT or EPSV first.")
    s.data = Prepared()
    listing = run(s, "LIST")
    assert isinstance(listing, StartTransfer)
    assert listing.transfer.verb == "LIST"
    assert run(s, "LIST /missing") == Reply(550, "No such file or directory.")
    s.restart = 3
    download = run(s, "RETR f.txt")
    assert isinstance(download, StartTransfer)
    assert (download.transfer.verb, download.transfer.path, download.transfer.size) == (
        "RETR",
        "/f.txt",
        6,
    )
    assert s.restart == 0
    download.transfer.release()
    assert run(s, "RETR /") == Reply(550, "Not a regular file.")  # not 451 and a traceback
    assert run(s, "ABOR") == Abort()


def test_every_handler_returns_a_result(tmp_path: Path) -> None:
    """Each verb, with no argument and with a garbled one, answers with a reply or an
    action and never raises."""
    for verb in sorted(HANDLERS):
        for arg in ("", "x|y \x00 ../.."):
            s = state_for(tmp_path, "elradfmwM")
            s.data = Prepared()
            result = run(s, f"{verb} {arg}".rstrip())
            assert isinstance(result, ALL_RESULTS), (verb, arg, result)
            if isinstance(result, StartTransfer):
                result.transfer.release()


def test_status_without_a_path(tmp_path: Path) -> None:
    s = state_for(tmp_path)
    s.account = None
    reply = run(s, "STAT")
    assert isinstance(reply, Reply)
    assert reply.code == 211
    assert "Not logged in" in reply.text
    assert "No data connection" in reply.text


@pytest.mark.parametrize("verb", ["SYST", "NOOP", "FEAT", "HELP"])
def test_informational_replies(tmp_path: Path, verb: str) -> None:
    result = run(state_for(tmp_path), verb)
    assert isinstance(result, Reply)
    assert result.code in (211, 214, 200, 215)


def test_secure_control_carries_the_context(tmp_path: Path) -> None:
    """With a certificate, ``AUTH TLS`` answers 234 and asks for the handshake."""
    cert = trustme.CA().issue_cert("localhost")
    pem = tmp_path / "cert.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(pem))
    s = state_for(tmp_path, certfile=str(pem))
    result = run(s, "AUTH TLS")
    assert isinstance(result, SecureControl)
    assert result.reply == Reply(234, "AUTH TLS successful.")
