"""A blocking client connection to a monitor (what ``medusa-monitor`` and tests use).

Example::

    conn = MonitorConnection.open("unix:/run/medusa/monitor.sock")
    banner = conn.login(secret)
    reply = conn.execute("servers['http'].counters.requests")
    print(reply.output, reply.ok)

Replies are parsed only once wholly received, so an interrupted wait (Ctrl-C while code
runs) loses nothing: the caller can send ``CANCEL`` and wait again.
"""

from __future__ import annotations

import socket
import ssl as _ssl
from collections.abc import Callable
from dataclasses import dataclass

from medusa.core.address import Address
from medusa.monitor import wire
from medusa.monitor.secret import answer_challenge

__all__ = ["LoginRefusedError", "MonitorConnection", "Reply"]


class LoginRefusedError(Exception):
    """The server refused the login.

    Attributes:
        reason: the server's word for it: ``secret`` (a wrong secret), ``locked`` (too
            many failures from this address), ``peer`` (a Unix-socket peer of another
            user).
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"login refused: {reason}")


@dataclass(frozen=True, slots=True)
class Reply:
    """One answer to ``LINE``, ``EXEC`` or ``RESET``.

    Attributes:
        more: True when the statement needs more lines (``MORE``).
        ok: False when the code raised or did not compile.
        output: what it printed and echoed, then its traceback.
    """

    more: bool
    ok: bool = True
    output: str = ""


class MonitorConnection:
    """One session with a monitor over a connected socket.

    Args:
        sock: the connected (and, for TLS, wrapped) socket.
    """

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._buffer = bytearray()
        self._eof = False

    @classmethod
    def open(
        cls,
        address: str | Address,
        *,
        timeout: float | None = 10.0,
        ssl_context: _ssl.SSLContext | None = None,
        server_hostname: str | None = None,
    ) -> MonitorConnection:
        """Connect to ``address`` (``unix:/path``, ``HOST:PORT``, ``[IPv6]:PORT`` or
        ``PORT`` on 127.0.0.1).

        Args:
            address: where the monitor listens.
            timeout: seconds for connecting and for each wait (``None``: no limit); see
                :meth:`set_timeout`.
            ssl_context: a client TLS context (TCP only).
            server_hostname: the name the certificate must carry (default: the host).

        Raises:
            AddressError: an address of no accepted form.
            OSError: the connection failed (ssl.SSLError: the TLS handshake).
        """
        if not isinstance(address, Address):
            address = Address.parse(address)
        if address.path is not None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            target: str | tuple[str, int] = address.path
        else:
            host = address.host or "127.0.0.1"
            sock = socket.create_connection((host, address.port), timeout)
            target = ""
        try:
            sock.settimeout(timeout)
            if target:
                sock.connect(target)
            if ssl_context is not None:
                if address.path is not None:
                    raise ValueError("TLS is for TCP addresses")
                sock = ssl_context.wrap_socket(
                    sock, server_hostname=server_hostname or address.host
                )
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    def set_timeout(self, timeout: float | None) -> None:
        """Seconds to wait for each reply (``None``: as long as the code runs)."""
        self.sock.settimeout(timeout)

    # -- reading ---------------------------------------------------------------------------

    def _fill(self) -> None:
        if self._eof:
            raise ConnectionError("the monitor closed the connection")
        data = self.sock.recv(65536)
        if not data:
            self._eof = True
            raise ConnectionError("the monitor closed the connection")
        self._buffer += data

    def _take_message(self) -> tuple[str, list[str], str] | None:
        """Remove and return one whole message from the buffer, or None."""
        buffer = self._buffer
        end = buffer.find(b"\n")
        if end == -1:
            if len(buffer) > 4096:
                raise wire.ProtocolError("reply line too long")
            return None
        head = bytes(buffer[:end])
        kind, args, length = wire.parse_reply_head(head)
        if len(buffer) < end + 1 + length:
            return None
        body = bytes(buffer[end + 1 : end + 1 + length])
        del buffer[: end + 1 + length]
        return kind, args, body.decode("utf-8", "replace")

    def read_message(self) -> tuple[str, list[str], str]:
        """Wait for the next whole message: ``(kind, words, text)``.

        Raises:
            ConnectionError: the server closed the connection.
            TimeoutError: no whole message within the timeout.
            ProtocolError: a malformed message.
        """
        while True:
            message = self._take_message()
            if message is not None:
                return message
            self._fill()

    def read_reply(self) -> Reply:
        """Wait for the answer to ``LINE``, ``EXEC`` or ``RESET``.

        Raises:
            ConnectionError, TimeoutError, ProtocolError: see :meth:`read_message`.
        """
        kind, args, text = self.read_message()
        if kind == "MORE":
            return Reply(more=True)
        if kind == "RESULT":
            return Reply(more=False, ok=args[0] == "ok", output=text)
        raise wire.ProtocolError(f"unexpected {kind} reply")

    # -- requests --------------------------------------------------------------------------

    def login(self, secret: bytes | Callable[[], bytes] | None) -> str:
        """Answer the challenge and return the banner.

        Args:
            secret: the secret, or a function returning it (called only when the server
                asks for one, so a Unix socket served without a secret needs none).

        Raises:
            LoginRefusedError: the server said ``DENIED``.
            ValueError: the server asked for a secret and none was given.
            ConnectionError, TimeoutError, ProtocolError: see :meth:`read_message`.
        """
        line = self._read_line()
        if line.startswith(b"DENIED"):
            raise LoginRefusedError(line[6:].decode("ascii", "replace").strip() or "unknown")
        hello = wire.parse_hello(line)
        if hello.method == wire.HMAC_SHA256:
            if callable(secret):
                secret = secret()
            if not secret:
                raise ValueError("the monitor asks for a secret")
            self.sock.sendall(wire.auth(answer_challenge(secret, hello.nonce)))
        kind, args, text = self.read_message()
        if kind == "DENIED":
            raise LoginRefusedError(args[0] if args else "unknown")
        if kind != "OK":
            raise wire.ProtocolError(f"unexpected {kind} reply to the login")
        return text

    def _read_line(self) -> bytes:
        while True:
            end = self._buffer.find(b"\n")
            if end != -1:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                return line
            if len(self._buffer) > 4096:
                raise wire.ProtocolError("greeting too long")
            self._fill()

    def line(self, text: str) -> Reply:
        """Send one line of interactive input; return ``MORE`` or its result."""
        self.sock.sendall(wire.line(text))
        return self.read_reply()

    def execute(self, source: str) -> Reply:
        """Run a whole block of source; return its result."""
        self.sock.sendall(wire.exec_block(source))
        return self.read_reply()

    def reset(self) -> Reply:
        """Forget a statement begun with :meth:`line`."""
        self.sock.sendall(wire.reset())
        return self.read_reply()

    def cancel(self) -> None:
        """Ask the server to cancel the awaited code running now (its reply follows)."""
        self.sock.sendall(wire.cancel())

    def close(self) -> None:
        """Close the connection."""
        self.sock.close()

    def __enter__(self) -> MonitorConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
