# ruff: noqa: S321  (ftplib is the client under test: these are FTP server tests)
"""FTP behind a proxy speaking the PROXY protocol (HAProxy's proxy-protocol.txt, v1 and v2):
the test's client plays the proxy on 127.0.0.1 (trusted), opening its control and passive
data connections with a header that names another client (127.0.0.5), as HAProxy in TCP
mode with ``send-proxy`` does for the control port and the forwarded passive range.

Checked: logs, the port-theft check of data connections (RFC 2577 §5), the bounce check of
PORT (RFC 2577 §3), sessions and failed logins per address all see the header's client;
data connections from the proxy without a valid header (none, garbage, truncated at every
byte, silence) are refused and logged while the session goes on; the bytes after the header
(an upload's first bytes, a PROT P handshake) are not lost.
"""

from __future__ import annotations

import contextlib
import ftplib
import io
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from medusa.core.passwords import hash_password
from medusa.core.testing import ServerThread, wait_until
from medusa.ftp import FTPServer, VirtualUser, parse_permissions

BACKENDS = ["asyncio", "uvloop"]
HASH = hash_password("right")
CLIENT = "127.0.0.5"
PUBLIC = "127.0.0.3"
"""The address the pretend proxy says the client connected to (its headers' destination)."""
PAYLOAD = bytes(range(256)) * 4099


class ListLogger:
    """A Logger keeping its lines (written on the loop's thread, read by the test)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def log(self, message: str) -> None:
        with self._lock:
            self.lines.append(message)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)


def v1_header(sock: socket.socket, client: str) -> bytes:
    """A version 1 header for ``sock``, naming ``client`` (with the socket's own port) and
    :data:`PUBLIC` as the destination."""
    port = sock.getsockname()[1]
    server_port = sock.getpeername()[1]
    return f"PROXY TCP4 {client} {PUBLIC} {port} {server_port}\r\n".encode()


def v2_header(sock: socket.socket, client: str) -> bytes:
    """A version 2 header (PROXY, TCP over IPv4) with a NOOP TLV, naming ``client`` and
    :data:`PUBLIC`."""
    port = sock.getsockname()[1]
    server_port = sock.getpeername()[1]
    block = socket.inet_aton(client) + socket.inet_aton(PUBLIC)
    block += struct.pack("!HH", port, server_port)
    tlv = b"\x04" + struct.pack("!H", 3) + b"abc"  # PP2_TYPE_NOOP
    body = block + tlv
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", len(body)) + body


HEADERS: dict[str, Callable[[socket.socket, str], bytes]] = {"v1": v1_header, "v2": v2_header}


class ProxiedFTP(ftplib.FTP_TLS):
    """ftplib's client behind a pretend proxy: each connection it opens (control and
    passive data) starts with a PROXY header naming :attr:`client`. The header and the
    first bytes of an upload go out in one ``send`` when :attr:`glue` is set."""

    def __init__(self, header: Callable[[socket.socket, str], bytes], client: str = CLIENT) -> None:
        super().__init__(timeout=10)
        self.header = header
        self.client = client
        self.glue = b""

    def connect(
        self, host: str = "", port: int = 0, timeout: float = -999, source_address: Any = None
    ) -> str:
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), self.timeout)
        self.af = self.sock.family
        self.sock.sendall(self.header(self.sock, self.client))
        self.file = self.sock.makefile("r", encoding=self.encoding)
        self.welcome = self.getresp()
        return self.welcome

    def login(self, user: str = "", passwd: str = "", acct: str = "", secure: bool = False) -> str:
        """Log in without AUTH TLS unless ``secure`` (FTP_TLS's default is the opposite)."""
        return super().login(user, passwd, acct, secure)

    def ntransfercmd(
        self, cmd: str, rest: int | str | None = None
    ) -> tuple[socket.socket, int | None]:
        host, port = self.makepasv()
        conn = socket.create_connection((host, port), self.timeout)
        conn.sendall(self.header(conn, self.client) + self.glue)
        if rest is not None:
            self.sendcmd(f"REST {rest}")
        resp = self.sendcmd(cmd)
        if resp[0] == "2":
            resp = self.getresp()
        if resp[0] != "1":
            raise ftplib.error_reply(resp)
        if self._prot_p:  # type: ignore[attr-defined]
            conn = self.context.wrap_socket(conn, server_hostname=self.host)
        return conn, None


_OPEN: list[ftplib.FTP | socket.socket] = []


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _OPEN:
        _OPEN.pop().close()


def start(root: Path, backend: str, **options: object) -> ServerThread:
    users = [VirtualUser("u", str(root), parse_permissions("elradfmw"), HASH)]
    server = FTPServer(
        ("127.0.0.1", 0),
        users=users,
        anonymous_root=root,
        proxy_protocol=True,
        proxy_trusted=["127.0.0.1/32"],
        **options,  # type: ignore[arg-type]
    )
    return ServerThread([server], backend=backend).start()


def proxied(thread: ServerThread, version: str = "v1", client: str = CLIENT) -> ProxiedFTP:
    ftp = ProxiedFTP(HEADERS[version], client)
    _OPEN.append(ftp)
    ftp.connect("127.0.0.1", thread.servers[0].port)
    return ftp


def pasv_port(ftp: ftplib.FTP) -> int:
    return ftp.makepasv()[1]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("version", ["v1", "v2"])
def test_logs_and_data_connections_see_the_headers_client(
    tmp_path: Path, backend: str, version: str
) -> None:
    """Download, listing and upload through the pretend proxy: the session log and the
    transfer log name 127.0.0.5, and the data connections (from 127.0.0.1, with a header
    naming 127.0.0.5) pass the port-theft check. An upload's first bytes sent in the same
    segment as the header are kept. PASV announces the header's destination (ftplib
    connects to the control connection's address whatever PASV says)."""
    (tmp_path / "payload.bin").write_bytes(PAYLOAD)
    xferlog, session_log = ListLogger(), ListLogger()
    thread = start(tmp_path, backend, xferlog=xferlog, session_log=session_log)
    try:
        ftp = proxied(thread, version)
        ftp.login("u", "right")
        assert "(127,0,0,3," in ftp.sendcmd("PASV")
        got: list[bytes] = []
        ftp.retrbinary("RETR payload.bin", got.append)
        assert b"".join(got) == PAYLOAD
        assert "payload.bin" in ftp.nlst()
        ftp.glue = PAYLOAD[:1000]  # arrives with the header
        ftp.storbinary("STOR up.bin", io.BytesIO(PAYLOAD[1000:]))
        assert (tmp_path / "up.bin").read_bytes() == PAYLOAD
        ftp.quit()
        wait_until(lambda: xferlog.text().count(f" {CLIENT} ") == 2, what="two xferlog lines")
        assert "127.0.0.1" not in xferlog.text()
        assert session_log.lines[0].startswith(f"{CLIENT}:")
        assert "refused" not in session_log.text()
    finally:
        thread.stop()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_data_connection_naming_another_client_is_refused(tmp_path: Path, backend: str) -> None:
    """Through the proxy, another client (127.0.0.9) connects first to the session's passive
    port: refused as port theft and logged with both addresses; the port stays open for the
    session's own client, whose download then works."""
    (tmp_path / "payload.bin").write_bytes(PAYLOAD)
    session_log = ListLogger()
    thread = start(tmp_path, backend, session_log=session_log)
    try:
        ftp = proxied(thread)
        ftp.login("u", "right")
        ftp.voidcmd("TYPE I")
        port = pasv_port(ftp)
        thief = socket.create_connection(("127.0.0.1", port), timeout=10)
        _OPEN.append(thief)
        thief.sendall(v1_header(thief, "127.0.0.9"))
        assert thief.recv(10) == b""  # closed at once
        refusal = "data connection from 127.0.0.9 through 127.0.0.1 refused (port theft)"
        wait_until(lambda: refusal in session_log.text(), what="the refusal logged")
        conn = socket.create_connection(("127.0.0.1", port), timeout=10)
        _OPEN.append(conn)
        conn.sendall(v2_header(conn, CLIENT))
        assert ftp.sendcmd("RETR payload.bin")[:3] in ("125", "150")
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
        assert data == PAYLOAD
        assert ftp.voidresp().startswith("226")
    finally:
        thread.stop()


def _bad_data_connection(thread: ServerThread, ftp: ftplib.FTP, payload: bytes) -> None:
    """Open the session's passive port from 127.0.0.1, send ``payload``, half-close when
    it is not empty, and wait until the server closed the connection (a reset when it
    closed with bytes unread)."""
    port = pasv_port(ftp)
    conn = socket.create_connection(("127.0.0.1", port), timeout=10)
    _OPEN.append(conn)
    if payload:
        with contextlib.suppress(OSError):  # the server may have closed already
            conn.sendall(payload)
            conn.shutdown(socket.SHUT_WR)
    with contextlib.suppress(ConnectionResetError):
        assert conn.recv(10) == b""


@pytest.mark.parametrize("backend", BACKENDS)
def test_data_connections_without_a_valid_header_are_refused(tmp_path: Path, backend: str) -> None:
    """From the trusted proxy's address a data connection must open with a header: no
    header (a TLS ClientHello, an FTP client's bytes), a header cut at every byte of v1 and
    v2, and silence past ``proxy_timeout`` are each closed with one session-log line;
    nothing reaches the error log as a traceback, and the session still transfers."""
    (tmp_path / "payload.bin").write_bytes(PAYLOAD)
    session_log = ListLogger()
    thread = start(tmp_path, backend, session_log=session_log, proxy_timeout=0.3)
    try:
        ftp = proxied(thread)
        ftp.login("u", "right")
        probe = socket.create_connection(("127.0.0.1", thread.servers[0].port))
        _OPEN.append(probe)
        v1 = v1_header(probe, CLIENT)
        v2 = v2_header(probe, CLIENT)
        cases = [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", b"hello there\r\n"]
        cases += [v1[:n] for n in range(1, len(v1))]
        cases += [v2[:n] for n in range(1, len(v2))]
        for payload in cases:
            _bad_data_connection(thread, ftp, payload)
        _bad_data_connection(thread, ftp, b"")  # silence: closed after proxy_timeout
        wait_until(
            lambda: session_log.text().count("bad PROXY header") == len(cases) + 1,
            what="every refusal logged",
        )
        text = session_log.text()
        assert "no PROXY header in time" in text
        got: list[bytes] = []
        ftp.retrbinary("RETR payload.bin", got.append)
        assert b"".join(got) == PAYLOAD
    finally:
        thread.stop()


@pytest.mark.parametrize("backend", BACKENDS)
def test_sessions_and_failed_logins_are_counted_per_client(tmp_path: Path, backend: str) -> None:
    """``max_sessions_per_ip`` and the failed-login lockout count the header's client, not
    the proxy: 127.0.0.5 reaches its limits while 127.0.0.6, through the same proxy, does
    not."""
    thread = start(
        tmp_path,
        backend,
        max_sessions_per_ip=2,
        max_login_failures_per_ip=1,
        login_failure_delay=0.01,
    )
    try:
        first, _second = proxied(thread), proxied(thread)
        with pytest.raises(ftplib.error_temp, match=r"^421"):
            proxied(thread)
        other = proxied(thread, client="127.0.0.6")
        with pytest.raises(ftplib.error_perm, match=r"^530"):
            first.login("u", "wrong")
        with pytest.raises(ftplib.error_temp, match=r"^421"):
            first.login("u", "right")  # 127.0.0.5 is locked out
        other.login("u", "right")
    finally:
        thread.stop()


@pytest.mark.parametrize("backend", BACKENDS)
def test_port_is_checked_against_the_headers_client(tmp_path: Path, backend: str) -> None:
    """PORT to the header's client is accepted; PORT to the proxy's own address (the real
    peer) is a bounce to a foreign address (RFC 2577 §3): 501."""
    thread = start(tmp_path, backend)
    try:
        ftp = proxied(thread)
        ftp.login("u", "right")
        assert ftp.sendcmd("PORT 127,0,0,5,200,10").startswith("200")
        with pytest.raises(ftplib.error_perm, match=r"^501"):
            ftp.sendcmd("PORT 127,0,0,1,200,10")
    finally:
        thread.stop()


@pytest.fixture(scope="module")
def tls_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("tls")
    cert = ca.issue_cert("127.0.0.1")
    certfile, cafile = folder / "cert.pem", folder / "ca.pem"
    for pem in cert.cert_chain_pems:
        pem.write_to_path(str(certfile), append=True)
    cert.private_key_pem.write_to_path(str(certfile), append=True)
    ca.cert_pem.write_to_path(str(cafile))
    return certfile, cafile


@pytest.mark.parametrize("backend", BACKENDS)
def test_prot_p_data_connection_after_a_header(
    tmp_path: Path, backend: str, tls_file: tuple[Path, Path]
) -> None:
    """Under PROT P the header comes before the data connection's TLS handshake (the
    ClientHello follows it, possibly in the same segment): the transfer works both ways."""
    certfile, cafile = tls_file
    (tmp_path / "payload.bin").write_bytes(PAYLOAD)
    thread = start(tmp_path, backend, certfile=str(certfile), xferlog=False, session_log=False)
    try:
        ftp = proxied(thread, "v2")
        ftp.context = ssl.create_default_context(cafile=str(cafile))
        ftp.auth()
        ftp.login("u", "right")
        ftp.prot_p()
        got: list[bytes] = []
        ftp.retrbinary("RETR payload.bin", got.append)
        assert b"".join(got) == PAYLOAD
        ftp.storbinary("STOR up.bin", io.BytesIO(PAYLOAD))
        assert (tmp_path / "up.bin").read_bytes() == PAYLOAD
        ftp.quit()
    finally:
        thread.stop()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_control_connection_without_its_header_leaves_no_session(
    tmp_path: Path, backend: str
) -> None:
    """A trusted peer's control connection that ends before its PROXY header is complete
    never had a session: it logs no ``disconnected`` line (it used to, under the proxy's
    address, with no ``connected`` line before), and at a stop one still waiting is closed
    without a 421 (there was no 220)."""
    session_log = ListLogger()
    thread = start(tmp_path, backend, session_log=session_log, proxy_timeout=30)
    port = thread.servers[0].port
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"PROXY TCP4 192.0.2")
    waiting = socket.create_connection(("127.0.0.1", port), timeout=10)
    _OPEN.append(waiting)
    waiting.sendall(b"PROXY TCP4 ")
    wait_until(lambda: thread.call(lambda: thread.servers[0].counters.active) == 1)
    ftp = proxied(thread)
    ftp.login()
    ftp.quit()
    thread.stop()
    assert waiting.recv(1024) == b""  # closed, no "421 Server shutting down."
    lines = session_log.lines
    # Only the proxied session's lines: none under the proxy's own address.
    assert all(line.startswith(f"{CLIENT}:") for line in lines), lines
    assert sum("disconnected" in line for line in lines) == 1, lines
