"""The HTTP server: a :class:`~medusa.core.server.Server` whose channels speak HTTP/1.x and
hand each request to a chain of handlers."""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl as _ssl
import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from medusa.core.address import Address
from medusa.core.channel import Channel
from medusa.core.log import (
    Logger,
    StdlibLogger,
    access_logger,
    check_logger_option,
    error_logger,
    resolve_logger,
)
from medusa.core.options import ConfigError, Option, non_negative, positive
from medusa.core.resolver import HostNameLog, Resolver
from medusa.core.server import Server
from medusa.core.trusted import PROXY_OPTIONS, TrustedNetworks
from medusa.http.accesslog import AccessLog
from medusa.http.appargs import add_app_arguments, app_chain
from medusa.http.channel import HTTPChannel
from medusa.http.charset import DEFAULT_CHARSET
from medusa.http.dates import now_http_date
from medusa.http.files import FileHandler
from medusa.http.handler import Handler
from medusa.http.handlers import build_handlers, charset_option
from medusa.http.listing import DirectoryListingHandler
from medusa.http.request import Request
from medusa.http.status import status_line
from medusa.http.status_page import StatusHandler

__all__ = ["HTTPServer"]

_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 20\r\nRetry-After: 1\r\nConnection: close\r\n\r\nserver is too busy.\n"
)

_DEFAULT = object()


class HTTPServer(Server):
    """An HTTP/1.0 and HTTP/1.1 server.

    Args:
        address: where to listen (see :class:`~medusa.core.server.Server`).
        handlers: the handler chain, tried in order (each has ``match`` and
            ``handle_request``).
        root: a directory to serve: a :class:`~medusa.http.files.FileHandler` on it is
            appended to the chain.
        charset: the charset that ``root``'s file handler names on textual types
            (``"utf-8"``; ``None`` or ``""``: none; see :mod:`medusa.http.charset`).
        max_body_size: largest request body accepted, bytes (413 above).
        max_request_line: longest request-target accepted, bytes (414 above).
        max_header_size: largest header block accepted, bytes (431 above).
        max_header_fields: most header fields accepted (431 above).
        header_timeout: seconds a client has to send a whole request head (408 after).
        keepalive_timeout: seconds an idle persistent connection is kept.
        body_timeout: seconds a request body may go without any data arriving (nginx's
            ``client_body_timeout``); then 408, the connection closes and a body being
            stored (an upload's temporary file) is removed, logged with the client, the
            path and the bytes received.
        body_min_rate: least average rate of a request body, bytes per second, over each
            ``body_timeout`` window (Apache's ``mod_reqtimeout`` ``MinRate``): a body that
            trickles slower gets the same 408 and removal, its log line giving the rate;
            ``0``: only silence is timed. Time during which the server holds the body back
            (a pipelined request waiting its turn, ``100 Continue`` not yet sent, a
            password check, a client that does not read its responses) counts for neither.
        max_pipeline: pipelined requests buffered before reading pauses.
        access_log: a :class:`~medusa.core.log.Logger` for Common Log Format lines, or the
            name of one registered with :func:`~medusa.core.log.register_logger` (a
            ``[logger.NAME]`` table); the default writes to the :mod:`logging` logger
            ``medusa.http.access``; ``None`` or ``False`` turns the access log off.
        server_header: value of the ``Server`` response header.
        parser_keep_limit: up to this many open connections, each keeps its parser
            between requests (faster); above it, idle connections drop theirs (about
            0.9 KB less per idle connection).
        certfile: PEM certificate chain for HTTPS (TLS 1.2 and later only).
        keyfile: PEM private key for ``certfile`` (``None``: it is in ``certfile``).
        resolve_names: log each client's host name instead of its address; the name is
            looked up in the background (the access-log line waits, the response never).
        resolver: the :class:`~medusa.core.resolver.Resolver` for ``resolve_names``
            (default: the shared one, see :func:`medusa.core.resolver.shared_resolver`).
        proxy_headers: from peers in ``proxy_trusted`` only, take each request's client
            address and scheme from ``Forwarded`` (RFC 7239) or ``X-Forwarded-For`` and
            ``X-Forwarded-Proto`` (:mod:`medusa.http.forwarded`): the access log, log lines,
            authentication lockouts, the status page and redirects use them.
        **kwargs: the options of :class:`~medusa.core.server.Server` (``backlog``,
            ``max_connections``, ``idle_timeout``, buffer sizes, ``ssl``, and the PROXY
            protocol's ``proxy_protocol``, ``proxy_trusted``, ``proxy_timeout``...).

    Raises:
        FileNotFoundError, NotADirectoryError: when ``root`` is not a directory.
        ssl.SSLError, OSError: when the certificate or key cannot be loaded.
        ValueError: ``proxy_headers`` or ``proxy_protocol`` without ``proxy_trusted``,
            ``proxy_protocol`` with TLS, ``resolve_names`` without any resolver installed, an
            ``access_log`` name that no logger is registered under, or a negative (or NaN)
            ``body_min_rate``.
    """

    name: ClassVar[str] = "http"
    path_options: ClassVar[tuple[str, ...]] = ("root", "certfile", "keyfile")
    busy_reply: ClassVar[bytes] = _BUSY  # 503 with Retry-After, over max_connections
    default_port: ClassVar[int] = 8080
    description: ClassVar[str] = "HTTP/1.1 server"
    options: ClassVar[Mapping[str, Option]] = {
        **Server.options,
        **PROXY_OPTIONS,
        **{
            o.name: o
            for o in (
                Option("root", (str,), "directory to serve"),
                Option("charset", (str, bool), 'charset of textual files ("utf-8"; false: none)'),
                Option("max_body_size", (int,), "largest request body, bytes", non_negative),
                Option("max_request_line", (int,), "longest request-target, bytes", positive),
                Option("max_header_size", (int,), "largest header block, bytes", positive),
                Option("max_header_fields", (int,), "most header fields", positive),
                Option("header_timeout", (int, float), "seconds to send a request head", positive),
                Option("keepalive_timeout", (int, float), "idle keep-alive seconds", positive),
                Option("body_timeout", (int, float), "seconds a body may send nothing", positive),
                Option(
                    "body_min_rate",
                    (int, float),
                    "bytes/s a body must average over body_timeout (0: no minimum)",
                    non_negative,
                ),
                Option("max_pipeline", (int,), "pipelined requests buffered", positive),
                Option(
                    "access_log",
                    (bool, str),
                    "access log: true, false or a [logger.NAME]",
                    check_logger_option,
                ),
                Option("resolve_names", (bool,), "log client host names (needs a resolver)"),
                Option("server_header", (str,), "Server header value"),
                Option("certfile", (str,), "PEM certificate chain for HTTPS"),
                Option("keyfile", (str,), "PEM private key for HTTPS"),
                Option(
                    "proxy_headers",
                    (bool,),
                    "take client and scheme from Forwarded/X-Forwarded-* of proxy_trusted",
                ),
            )
        },
    }

    def __init__(
        self,
        address: Address | str | int | tuple[str, int] = 8080,
        *,
        handlers: Iterable[Handler] = (),
        root: str | os.PathLike[str] | None = None,
        charset: str | bool | None = DEFAULT_CHARSET,
        max_body_size: int = 1 << 20,
        max_request_line: int = 8192,
        max_header_size: int = 65536,
        max_header_fields: int = 100,
        header_timeout: float = 10.0,
        keepalive_timeout: float = 15.0,
        body_timeout: float = 60.0,
        body_min_rate: float = 500,
        max_pipeline: int = 64,
        access_log: Logger | bool | str | None = True,
        server_header: str = "Medusa",
        parser_keep_limit: int = 256,
        certfile: str | None = None,
        keyfile: str | None = None,
        resolve_names: bool = False,
        resolver: Resolver | None = None,
        proxy_headers: bool = False,
        **kwargs: Any,
    ) -> None:
        if certfile is not None and kwargs.get("ssl") is None:
            kwargs["ssl"] = tls_context(certfile, keyfile)
        super().__init__(address, **kwargs)
        if proxy_headers and not self.trusted_proxies:
            raise ValueError("proxy_headers needs proxy_trusted (the proxies' addresses)")
        self.forwarded_from: TrustedNetworks | None = (
            self.trusted_proxies if proxy_headers else None
        )
        chain = list(handlers)
        if root is not None:
            chain.append(FileHandler(root, charset=charset_option(charset or False)))
        self.handlers: tuple[Handler, ...] = tuple(chain)
        self.max_body_size = max_body_size
        self.max_request_line = max_request_line
        self.max_header_size = max_header_size
        self.max_header_fields = max_header_fields
        self.max_head_bytes = max_request_line + max_header_size
        self.header_timeout = float(header_timeout)
        self.keepalive_timeout = float(keepalive_timeout)
        self.body_timeout = float(body_timeout)
        if not body_min_rate >= 0:
            raise ValueError(f"body_min_rate must not be negative: {body_min_rate!r}")
        self.body_min_rate = float(body_min_rate)
        self.max_pipeline = max_pipeline
        self.access_log: Logger | None = (
            access_logger("http") if access_log is True else resolve_logger(access_log, "")
        )
        self.server_header = server_header.encode("latin-1")
        self._prefix_second = -1
        self.head_prefixes: dict[int, bytes] = {}
        """Status line, ``Server`` and ``Date`` by status, for the second of
        :attr:`head_prefixes_until` (see :meth:`head_prefix`)."""
        self.head_prefixes_since = 0.0
        self.head_prefixes_until = 0.0
        """The :func:`time.time` interval, seconds, in which :attr:`head_prefixes` hold:
        ``head_prefixes_since <= time.time() < head_prefixes_until``."""
        self.parser_keep_limit = parser_keep_limit
        self.host_names = HostNameLog(resolver) if resolve_names else None
        self._access_lines = (
            None
            if self.access_log is None
            else AccessLog(
                self.access_log,
                self.host_names,
                # Lines whose host changes later (a name, a proxy's client) go the long way.
                direct=self.host_names is None and self.forwarded_from is None,
            )
        )
        self.access = self._access_lines
        """The access log (:class:`~medusa.http.accesslog.AccessLog`) while it writes
        anything (re-read once a second by :meth:`head_prefix`), else None: a response then
        skips it."""

    # -- configuration ---------------------------------------------------------------------

    @classmethod
    def from_config(
        cls, table: Mapping[str, Any], *, source: str, prefix: str, base_dir: str
    ) -> Server:
        """Build a server from a ``[[server]]`` table: its ``[[server.handler]]`` tables
        become the handler chain, in order (see :mod:`medusa.http.handlers`), followed by a
        file handler when ``root`` is set; a ``root`` that is not a directory is reported
        against its key (see :meth:`Server.from_config`).

        Raises:
            ConfigError: for unknown keys, wrong types or bad values.
        """
        table = dict(table)
        chain = build_handlers(
            table.pop("handler", []), source=source, prefix=prefix, base_dir=base_dir
        )
        root = table.get("root")
        if isinstance(root, str):
            path = os.path.join(base_dir, root)
            if not os.path.isdir(path):
                raise ConfigError(source, f"{prefix}.root", f"{path}: not a directory")
        server = super().from_config(table, source=source, prefix=prefix, base_dir=base_dir)
        assert isinstance(server, HTTPServer)
        server.handlers = (*chain, *server.handlers)  # a root's file handler stays last
        return server

    @classmethod
    def for_serve(cls, address: Address, root: str) -> HTTPServer:
        """``medusa serve ROOT --http ADDR``: serve ROOT's files."""
        return cls(address, root=root)

    @classmethod
    def add_serve_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """``medusa serve``'s HTTP options: ``--listing`` (HTML index of directories
        without ``index.html``) and ``--status [PATH]`` (the status page, at ``/status``
        by default)."""
        parser.add_argument(
            "--listing",
            dest="http_listing",
            action="store_true",
            help="http: list directories that have no index.html (off by default)",
        )
        parser.add_argument(
            "--status",
            dest="http_status",
            nargs="?",
            const="/status",
            default=None,
            metavar="PATH",
            type=_url_path,
            help="http: serve the status page at PATH (default /status); put ROOT before it",
        )
        add_app_arguments(parser)

    @classmethod
    def from_serve_arguments(
        cls, address: Address, root: str, arguments: argparse.Namespace
    ) -> HTTPServer:
        """``medusa serve ROOT --http ADDR [--status [PATH]] [--listing]``: the status page
        first, then the listing of ROOT's directories, then ROOT's files. With ``--app``:
        the status page, then (with an explicit ROOT only) ROOT's existing files, then the
        application (:func:`medusa.http.appargs.app_chain`).

        Raises:
            ConfigError: for an application that cannot be loaded, or ``--listing`` with
                ``--app``.
        """
        handlers: list[Handler] = []
        status = getattr(arguments, "http_status", None)
        if status is not None:
            handlers.append(StatusHandler(status))
        if getattr(arguments, "http_app", None) is not None:
            handlers += app_chain(root, arguments)
            return cls(address, handlers=handlers)
        if getattr(arguments, "http_listing", False):
            handlers.append(DirectoryListingHandler(root))
        return cls(address, root=root, handlers=handlers)

    @property
    def url_scheme(self) -> str:
        """``https`` with TLS, else ``http``."""
        return "https" if self.ssl is not None else "http"

    # -- handlers --------------------------------------------------------------------------

    def install_handler(self, handler: Handler, position: int = 0) -> None:
        """Insert ``handler`` into the chain at ``position`` (0: first, as the original's
        ``install_handler``; ``len(handlers)``: last), while the server runs. Requests
        already dispatched finish with the handler they started with.
        """
        chain = list(self.handlers)
        chain.insert(position, handler)
        self.handlers = tuple(chain)

    def remove_handler(self, handler: Handler) -> None:
        """Remove ``handler`` from the chain.

        Raises:
            ValueError: when it is not installed.
        """
        chain = list(self.handlers)
        chain.remove(handler)
        self.handlers = tuple(chain)

    # -- start and stop hooks of handlers ---------------------------------------------------

    async def start(self) -> None:
        """Await each handler's ``startup()`` hook, in chain order, then listen (see
        :meth:`Server.start`): an ASGI application's lifespan startup, for example, is
        complete before the first connection is accepted. A handler without the hook is
        skipped. When a hook raises, or listening fails, the hooks of the handlers already
        started get their ``shutdown()``.

        Raises:
            ListenError: when the address cannot be bound, or from a hook
                (:class:`~medusa.http.lifespan.LifespanStartupError` is one).
            Exception: whatever else a hook raises.
        """
        started: list[Handler] = []
        try:
            for handler in self.handlers:
                hook = getattr(handler, "startup", None)
                if hook is not None:
                    await hook()
                    started.append(handler)
            await super().start()
        except BaseException:
            await stop_handlers(started, 5.0)
            raise

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stop as :meth:`Server.shutdown` does (the connections finish within ``grace``
        seconds), then await each handler's ``shutdown()`` hook within what is left of the
        grace period (at least 1 second)."""
        began = time.monotonic()
        await super().shutdown(grace)
        await stop_handlers(self.handlers, max(grace - (time.monotonic() - began), 1.0))

    # -- channels --------------------------------------------------------------------------

    def make_channel(self) -> Channel:
        """Return a new :class:`~medusa.http.channel.HTTPChannel`."""
        return HTTPChannel(self)

    def stop_channel(self, channel: Channel) -> None:
        """On shutdown: close idle connections now, let responses in flight finish."""
        if isinstance(channel, HTTPChannel):
            channel.shutdown()
        else:
            channel.close_when_done()

    def extra_timeouts(self) -> tuple[float, ...]:
        """The header, keep-alive and body timeouts, so the sweep runs often enough."""
        return (self.header_timeout, self.keepalive_timeout, self.body_timeout)

    def head_prefix(self, status: int) -> bytes:
        """Return the status line, ``Server`` and ``Date`` fields of a response with
        ``status``, formatted once per second (RFC 9110 §6.6.1: the Date of a response is
        its generation time, to the second). While the time is in
        [:attr:`head_prefixes_since`, :attr:`head_prefixes_until`), :attr:`head_prefixes`
        holds those made this second (callers on the hot path read it first)."""
        second = int(time.time())
        if second != self._prefix_second:
            self._prefix_second = second
            self.head_prefixes = {}
            self.head_prefixes_since = float(second)
            self.head_prefixes_until = second + 1.0
            lines = self._access_lines
            if lines is not None:
                lines.second = second
                # Whether the access log records anything is also re-read once a second.
                log = lines.logger
                enabled = not isinstance(log, StdlibLogger) or log.enabled
                self.access = lines if enabled else None
        prefix = self.head_prefixes.get(status)
        if prefix is None:
            prefix = self.head_prefixes[status] = (
                status_line(status)
                + b"Server: "
                + self.server_header
                + b"\r\nDate: "
                + now_http_date()
                + b"\r\n"
            )
        return prefix

    def log_access(self, request: Request) -> None:
        """Write the request's Common Log Format line to :attr:`access_log`, if it writes
        anything (see :meth:`AccessLog.log <medusa.http.accesslog.AccessLog.log>`, which
        the channel calls directly for the usual response)."""
        access = self.access
        if access is not None:
            access.log(request)


async def stop_handlers(handlers: Iterable[Handler], timeout: float) -> None:
    """Await the ``shutdown()`` hook of each of ``handlers`` that has one, in order, all
    within ``timeout`` seconds; a hook that raises or is still running then is logged."""
    deadline = time.monotonic() + timeout
    for handler in handlers:
        hook = getattr(handler, "shutdown", None)
        if hook is None:
            continue
        try:
            await asyncio.wait_for(hook(), max(deadline - time.monotonic(), 0.01))
        except TimeoutError:
            error_logger.warning("%r: its shutdown did not finish in time", handler)
        except Exception:
            error_logger.exception("%r: its shutdown failed", handler)


def _url_path(text: str) -> str:
    """argparse type of ``--status PATH``: a URL path, starting with ``/``."""
    if not text.startswith("/"):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a URL path starting with / (to serve a directory, put ROOT "
            "before --status, or write --status=/status)"
        )
    return text


def tls_context(certfile: str, keyfile: str | None = None) -> _ssl.SSLContext:
    """Return a server-side TLS context that accepts TLS 1.2 and later only.

    Args:
        certfile: PEM file with the certificate chain.
        keyfile: PEM file with the private key (``None``: it is in ``certfile``).

    Raises:
        ssl.SSLError, OSError: when the files cannot be read or do not match.
    """
    context = _ssl.create_default_context(_ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = _ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    return context
