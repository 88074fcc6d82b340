"""The browser side: one HTTP listener that serves the chat page on ``GET /`` and bridges
WebSocket connections (RFC 6455) on ``/ws`` into the network.

Each WebSocket text message carries one IRC line without CR LF (several lines separated by
LF are accepted), in both directions, as in the IRCv3 WebSocket note (subprotocol
``text.ircv3.net``): the page speaks IRC, so browser users are ordinary users of the
network. The WebSocket framing is done by wsproto (the extra ``medusa-chat[web]``); the
HTTP request head is read here (only ``GET``/``HEAD`` of two paths are served).

A WebSocket from a page of another origin is refused (403) unless its ``Origin`` names the
same host and port the request was sent to, so other sites cannot open chat sessions
from their visitors' browsers.
"""

from __future__ import annotations

import time
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from medusa.chat.connection import peer_host
from medusa.chat.message import MAX_LINE
from medusa.chat.session import Session
from medusa.core.channel import Channel

if TYPE_CHECKING:
    from medusa.chat.server import ChatServer

__all__ = ["SUBPROTOCOL", "WebConnection", "chat_page", "parse_head", "require_wsproto"]

SUBPROTOCOL = "text.ircv3.net"
"""The WebSocket subprotocol accepted (when the client offers it)."""

MAX_HEAD = 16384
"""Bytes of an HTTP request head."""

MAX_MESSAGE = 4 * MAX_LINE
"""Bytes of one WebSocket message from a browser (a few IRC lines)."""


def require_wsproto() -> None:
    """Check that wsproto is importable.

    Raises:
        ImportError: with the install hint (``pip install 'medusa-chat[web]'``).
    """
    try:
        import wsproto  # noqa: F401
    except ImportError:
        raise ImportError("the web option needs wsproto: pip install 'medusa-chat[web]'") from None


@cache
def chat_page() -> bytes:
    """The chat page (``static/chat.html`` of this package)."""
    return resources.files("medusa.chat").joinpath("static/chat.html").read_bytes()


def parse_head(head: bytes) -> tuple[str, str, dict[str, str]] | None:
    """Parse an HTTP/1.1 request head (RFC 9112 section 2-3) into ``(method, path,
    headers)`` with lower-case header names; ``None`` when malformed."""
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes everything
        return None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            return None
        headers[name.lower()] = value.strip()
    return parts[0], parts[1].split("?", 1)[0], headers


def _response(status: str, body: bytes, content_type: str, head_only: bool = False) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "Cache-Control: no-store\r\n"
        "X-Content-Type-Options: nosniff\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    return head if head_only else head + body


class WebConnection(Channel):
    """One HTTP connection of the web listener: a page request, or a WebSocket user.

    Args:
        server: the chat server.
    """

    terminator = None

    def __init__(self, server: ChatServer) -> None:
        super().__init__(server)
        self._chat = server
        self._head = b""
        self._ws: Any = None  # wsproto.WSConnection once upgraded
        self._text: list[str] = []
        self._text_size = 0
        self._out: list[bytes] | None = None
        self.session: Session | None = None

    def handle_connect(self) -> None:
        """Count the connection against ``max_clients_per_address`` (refused beyond)."""
        self._chat.admit(self)

    def collect_incoming_data(self, data: bytes) -> None:
        """The request head, then WebSocket frames."""
        if self._ws is not None:
            self._ws.receive_data(data)
            self._ws_events()
            return
        self._head += data
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_HEAD:
                self._reply("431 Request Header Fields Too Large", b"too large\n")
            return
        if end > MAX_HEAD:
            self._reply("431 Request Header Fields Too Large", b"too large\n")
            return
        self._request(self._head[: end + 4], self._head)

    def _reply(self, status: str, body: bytes, content_type: str = "text/plain") -> None:
        self.push(_response(status, body, content_type))
        self.close_when_done()
        self._head = b""

    def _request(self, head: bytes, received: bytes) -> None:
        parsed = parse_head(head)
        if parsed is None:
            self._reply("400 Bad Request", b"bad request\n")
            return
        method, path, headers = parsed
        if method not in ("GET", "HEAD"):
            self._reply("405 Method Not Allowed", b"method not allowed\n")
            return
        if path in ("/", "/index.html"):
            page = _response("200 OK", chat_page(), "text/html; charset=utf-8", method == "HEAD")
            self.push(page)
            self.close_when_done()
            return
        if path != "/ws":
            self._reply("404 Not Found", b"not found\n")
            return
        if "websocket" not in headers.get("upgrade", "").lower():
            self._reply("426 Upgrade Required", b"a WebSocket is expected here\n")
            return
        origin = headers.get("origin")
        if (
            origin is not None
            and urlsplit(origin).netloc.lower() != headers.get("host", "").lower()
        ):
            self._reply("403 Forbidden", b"cross-origin WebSocket refused\n")
            return
        from wsproto import ConnectionType, WSConnection

        self._ws = WSConnection(ConnectionType.SERVER)
        self._head = b""
        self._ws.receive_data(received)
        self._ws_events()

    def _ws_events(self) -> None:
        from wsproto.events import (
            AcceptConnection,
            BytesMessage,
            CloseConnection,
            Ping,
            Request,
            TextMessage,
        )
        from wsproto.utilities import RemoteProtocolError

        ws = self._ws
        try:
            for event in ws.events():
                if isinstance(event, Request):
                    proto = SUBPROTOCOL if SUBPROTOCOL in event.subprotocols else None
                    self.push(ws.send(AcceptConnection(subprotocol=proto)))
                    self._start_session()
                elif isinstance(event, TextMessage | BytesMessage):
                    data = event.data
                    # a binary message's bytes go to the session as they came (which
                    # refuses them when they are not UTF-8: FAIL INVALID_UTF8)
                    text = (
                        data if isinstance(data, str) else data.decode("utf-8", "surrogateescape")
                    )
                    self._message_part(text, event.message_finished)
                elif isinstance(event, Ping):
                    self.push(ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    self.push(ws.send(event.response()))
                    self.close_when_done()
                    return
        except RemoteProtocolError:
            self.close()

    def _start_session(self) -> None:
        server = self._chat
        self.session = Session(
            server.network,
            peer_host(self.peer),
            self.send_line,
            self.close_link,
            server.policy,
            time.monotonic(),
            kind="web",
        )

    def _message_part(self, text: str, finished: bool) -> None:
        self._text.append(text)
        self._text_size += len(text)
        if self._text_size > MAX_MESSAGE:
            session = self.session
            if session is not None and finished:
                self._text, self._text_size = [], 0
                session.refuse_long_line(time.monotonic())
            elif finished:
                self._text, self._text_size = [], 0
            else:
                self._text = [""]  # keep counting, drop the content
            return
        if not finished:
            return
        whole = "".join(self._text)
        self._text, self._text_size = [], 0
        session = self.session
        if session is None:
            return
        now = time.monotonic()
        for line in whole.split("\n"):
            if line:
                session.receive_line(line.encode("utf-8", "surrogateescape"), now)
                if session.user.gone:
                    return

    def send_line(self, data: bytes) -> None:
        """Send one IRC line (CR LF removed) as a WebSocket text message; the frames of one
        loop iteration leave in one write."""
        ws = self._ws
        if ws is None:
            return
        from wsproto.events import TextMessage

        frame = ws.send(TextMessage(data=data[:-2].decode("utf-8", "replace")))
        out = self._out
        if out is None:
            self._out = [frame]
            self._chat.batcher.add(self)
        else:
            out.append(frame)

    def flush_output(self) -> None:
        """Write the frames queued in this iteration (see :meth:`send_line`)."""
        out = self._out
        self._out = None
        if out:
            self.push(b"".join(out))

    def close_link(self, reason: str) -> None:
        """Send ``ERROR :Closing Link`` and a WebSocket close, then close."""
        self.flush_output()
        ws = self._ws
        if ws is not None:
            from wsproto.connection import ConnectionState
            from wsproto.events import CloseConnection, TextMessage

            host = self.session.user.host if self.session is not None else "*"
            if ws.state == ConnectionState.OPEN:
                self.push(ws.send(TextMessage(data=f"ERROR :Closing Link: {host} ({reason})")))
                self.push(ws.send(CloseConnection(code=1000, reason=reason[:100])))
        self.close_when_done()

    def check_timeout(self, now: float) -> None:
        """Ping and registration deadlines of a WebSocket user; a page request that sends
        no complete head within the registration timeout is closed."""
        if self.session is not None:
            self.session.check_timeout(now)
        elif self._ws is None:
            limit = self._chat.policy.registration_timeout or 60.0
            if now - self.connected_at > limit:
                self.close()

    def handle_close(self) -> None:
        """The connection is gone: a WebSocket user quits."""
        if self.session is not None:
            self.session.connection_lost()
