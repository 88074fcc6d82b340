# ruff: noqa: S321  (ftplib is the client under test: these are FTP server tests)
"""FTPS (RFC 4217): AUTH TLS, PBSZ, PROT P/C and the refusals, with ftplib.FTP_TLS and
curl --ftp-ssl, on both loops, with a trustme CA."""

from __future__ import annotations

import ftplib
import io
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from medusa.core.passwords import hash_password
from medusa.core.testing import ServerThread
from medusa.ftp import FTPServer, VirtualUser, parse_permissions

BACKENDS = ["asyncio", "uvloop"]
HASH = hash_password("secret")
CURL = shutil.which("curl")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_files(ca: trustme.CA, tmp_path: Path) -> tuple[Path, Path]:
    cert = ca.issue_cert("127.0.0.1", "localhost")
    certfile = tmp_path / "cert.pem"
    cafile = tmp_path / "ca.pem"
    for pem in cert.cert_chain_pems:
        pem.write_to_path(str(certfile), append=True)
    cert.private_key_pem.write_to_path(str(certfile), append=True)
    ca.cert_pem.write_to_path(str(cafile))
    return certfile, cafile


_OPEN: list[ftplib.FTP] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    close_clients()


def close_clients() -> None:
    """Close the test's clients (before the server stops, which would otherwise wait for
    their TLS sessions to end)."""
    while _OPEN:
        _OPEN.pop().close()


def start(root: Path, certfile: Path, backend: str, **options: object) -> ServerThread:
    users = [VirtualUser("u", str(root), parse_permissions("elradfmw"), HASH)]
    server = FTPServer(
        ("127.0.0.1", 0),
        users=users,
        anonymous_root=root,
        certfile=str(certfile),
        xferlog=False,
        session_log=False,
        **options,  # type: ignore[arg-type]
    )
    return ServerThread([server], backend=backend).start()


def tls_client(thread: ServerThread, cafile: Path) -> ftplib.FTP_TLS:
    context = ssl.create_default_context(cafile=str(cafile))
    ftp = ftplib.FTP_TLS(context=context)
    _OPEN.append(ftp)
    ftp.connect("127.0.0.1", thread.servers[0].port, timeout=10)
    return ftp


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_ftp_tls_private_transfers(
    tmp_path: Path, tls_files: tuple[Path, Path], backend: str
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    payload = os.urandom(1_500_000)
    (root / "big.bin").write_bytes(payload)
    thread = start(root, tls_files[0], backend)
    try:
        ftp = tls_client(thread, tls_files[1])
        assert "AUTH TLS" in ftp.sendcmd("FEAT")
        ftp.login("u", "secret")  # AUTH TLS first
        assert isinstance(ftp.sock, ssl.SSLSocket)
        assert ftp.sendcmd("PBSZ 0") == "200 PBSZ=0"
        ftp.prot_p()
        data = io.BytesIO()
        ftp.retrbinary("RETR big.bin", data.write)
        assert data.getvalue() == payload
        ftp.storbinary("STOR copy.bin", io.BytesIO(payload))
        assert (root / "copy.bin").read_bytes() == payload
        assert sorted(ftp.nlst()) == ["big.bin", "copy.bin"]
        ftp.set_pasv(False)  # active mode over TLS too
        data = io.BytesIO()
        ftp.retrbinary("RETR copy.bin", data.write)
        assert data.getvalue() == payload
        ftp.prot_c()
        ftp.set_pasv(True)
        assert sorted(ftp.nlst()) == ["big.bin", "copy.bin"]
        with pytest.raises(ftplib.error_perm, match=r"^534"):
            ftp.sendcmd("CCC")
        with pytest.raises(ftplib.error_perm, match=r"^503"):
            ftp.sendcmd("AUTH TLS")
        with pytest.raises(ftplib.error_perm, match=r"^536"):
            ftp.sendcmd("PROT S")
        assert ftp.quit().startswith("221")
    finally:
        close_clients()
        thread.stop()


def test_tls_policies(tmp_path: Path, tls_files: tuple[Path, Path], backend: str) -> None:
    thread = start(
        tmp_path, tls_files[0], backend, tls_control_required=True, tls_data_required=True
    )
    try:
        plain = ftplib.FTP()
        _OPEN.append(plain)
        plain.connect("127.0.0.1", thread.servers[0].port, timeout=10)
        with pytest.raises(ftplib.error_perm, match=r"^534"):
            plain.login("u", "secret")
        assert plain.login().startswith("230")  # anonymous needs no TLS
        with pytest.raises(ftplib.error_perm, match=r"^521"):
            plain.nlst()
        ftp = tls_client(thread, tls_files[1])
        ftp.login("u", "secret")
        ftp.sendcmd("PBSZ 0")
        with pytest.raises(ftplib.error_perm, match=r"^534"):
            ftp.sendcmd("PROT C")
        with pytest.raises(ftplib.error_perm, match=r"^521"):
            ftp.nlst()
        ftp.prot_p()
        assert "cert.pem" in ftp.nlst()
    finally:
        close_clients()
        thread.stop()


def test_tls_handshake_failure_keeps_the_server_up(
    tmp_path: Path, tls_files: tuple[Path, Path], backend: str
) -> None:
    thread = start(tmp_path, tls_files[0], backend)
    try:
        bad = ftplib.FTP_TLS(context=ssl.create_default_context())  # does not trust the CA
        _OPEN.append(bad)
        bad.connect("127.0.0.1", thread.servers[0].port, timeout=10)
        with pytest.raises(ssl.SSLError):
            bad.auth()
        ftp = tls_client(thread, tls_files[1])
        assert ftp.login("u", "secret").startswith("230")
    finally:
        close_clients()
        thread.stop()


@pytest.mark.skipif(CURL is None, reason="curl is not installed")
def test_curl_ftp_ssl(tmp_path: Path, tls_files: tuple[Path, Path], backend: str) -> None:
    assert CURL is not None
    root = tmp_path / "root"
    root.mkdir()
    payload = os.urandom(700_000)
    (root / "file.bin").write_bytes(payload)
    (tmp_path / "upload.bin").write_bytes(payload[::-1])
    thread = start(root, tls_files[0], backend)
    try:
        url = f"ftp://127.0.0.1:{thread.servers[0].port}"
        common = [CURL, "-sS", "--max-time", "30", "--ssl-reqd", "--cacert", str(tls_files[1])]
        auth = ["--user", "u:secret"]
        got = subprocess.run(
            [*common, *auth, f"{url}/file.bin"], capture_output=True, timeout=60, check=True
        )
        assert got.stdout == payload
        subprocess.run(
            [*common, *auth, "-T", str(tmp_path / "upload.bin"), f"{url}/up.bin"],
            capture_output=True,
            timeout=60,
            check=True,
        )
        assert (root / "up.bin").read_bytes() == payload[::-1]
        listing = subprocess.run(
            [*common, *auth, "--list-only", f"{url}/"], capture_output=True, timeout=60, check=True
        )
        assert sorted(listing.stdout.decode().split()) == ["file.bin", "up.bin"]
    finally:
        close_clients()
        thread.stop()
