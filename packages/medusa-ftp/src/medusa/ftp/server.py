"""The FTP server: a :class:`~medusa.core.server.Server` whose channels are FTP sessions
(:class:`~medusa.ftp.session.FTPChannel`), with its options for ``medusa.toml``, its
authorizers, limits and logs."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl as _ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Literal

from medusa.core.address import Address
from medusa.core.channel import Channel
from medusa.core.log import Logger, error_logger, resolve_logger
from medusa.core.options import ConfigError, Option
from medusa.core.passwords import hash_password, verify_password
from medusa.core.resolver import HostNameLog, Resolver
from medusa.core.server import Server
from medusa.core.throttle import LoginFailures
from medusa.core.trusted import PROXY_OPTIONS
from medusa.core.uploads import FTP_TEMPORARY, StaleUpload, remove_stale_uploads
from medusa.ftp.accounts import Account
from medusa.ftp.authorizers import AnonymousAuthorizer, Authorizer, VirtualUser, VirtualUsers
from medusa.ftp.session import FTPChannel
from medusa.ftp.tls import server_context
from medusa.ftp.userconfig import FTP_OPTIONS, users_from_config

__all__ = ["FTPServer"]

_BUSY = b"421 Too many connections; try again later.\r\n"


class FTPServer(Server):
    """An FTP server (RFC 959, 1123, 2389, 2428, 2640, 3659, 4217).

    Args:
        address: where to listen (see :class:`~medusa.core.server.Server`); 8021 on
            127.0.0.1 by default.
        anonymous_root: a directory served read-only to ``anonymous``/``ftp`` (any
            password); ``None`` turns anonymous logins off.
        users: virtual users (:class:`~medusa.ftp.authorizers.VirtualUser`).
        passwords: a password file (``medusa passwd``) for users without an inline hash.
        unix_users: also accept the machine's users through PAM (the server must run as
            root); see :mod:`medusa.ftp.unixusers`.
        pam_service: the PAM service of Unix users.
        unix_allow_root: accept root as a Unix user.
        unix_require_shell: refuse Unix users without a shell listed in ``/etc/shells``.
        authorizers: authorizers tried before the ones above, in order.
        passive_ports: the range of passive ports (``range(60000, 60100)``); ``None``:
            any free port.
        masquerade_address: the IPv4 address announced by ``PASV`` (behind NAT).
        permit_foreign_addresses: allow ``PORT``/``EPRT`` to other hosts than the client
            (FXP; opens the bounce attack of RFC 2577, off by default).
        permit_privileged_ports: allow ``PORT``/``EPRT`` to ports below 1024.
        certfile: PEM certificate chain: enables ``AUTH TLS`` (TLS 1.2 and later).
        keyfile: PEM private key for ``certfile`` (``None``: it is in ``certfile``).
        tls_control_required: non-anonymous users must ``AUTH TLS`` before ``USER``.
        tls_data_required: transfers need ``PROT P``.
        max_login_attempts: failed logins on one connection before it is closed.
        login_failure_delay: seconds before the refusal of an address's first failed
            login; each further failure from that address (on any connection, within
            ``login_failure_window``) doubles it.
        login_failure_max_delay: the longest such delay, seconds.
        max_login_failures_per_ip: failed logins from one address within
            ``login_failure_window`` seconds after which that address's logins are
            refused (421 and close, the password not checked) for
            ``login_failure_window`` seconds from the failure that spent the budget
            (:class:`~medusa.core.throttle.LoginFailures`); anonymous logins and other
            addresses are not affected (0: no such limit).
        login_failure_window: seconds a failed login is remembered; the lockout's length.
        max_sessions_per_ip: sessions open at once from one address (421 beyond).
        data_timeout: seconds a data connection may take to open, stay without progress,
            or stay under ``data_min_rate`` (0: never).
        data_min_rate: least average rate of a transfer over each ``data_timeout``
            seconds, bytes per second (0: only stalls count); half of
            ``max_download_rate``/``max_upload_rate`` when that is lower.
        clean_stale_uploads: at start, walk ``anonymous_root`` and the virtual users'
            roots in a worker thread and remove the temporary files of uploads that a
            killed process left (see :func:`medusa.core.uploads.remove_stale_uploads`).
        max_download_rate: bytes per second per download (0: unlimited).
        max_upload_rate: bytes per second per upload (0: unlimited).
        listing_style: ``"unix"`` (``ls -l``) or ``"msdos"`` for ``LIST``.
        banner: the text of the 220 greeting.
        max_line: longest command line accepted, bytes (500 beyond).
        xferlog: a :class:`~medusa.core.log.Logger` for the transfer log, or the name of
            a ``[logger.NAME]`` table; True: the :mod:`logging` logger
            ``medusa.ftp.xferlog``; False or None: off.
        session_log: a Logger for sessions (logins, deletions...), or a logger name; True:
            the logger ``medusa.ftp.session``; False or None: off.
        resolve_names: write the client's host name in the transfer log, looked up in the
            background (no reply waits for it).
        resolver: the :class:`~medusa.core.resolver.Resolver` for ``resolve_names``
            (default: the shared one).
        **kwargs: the options of :class:`~medusa.core.server.Server` (``idle_timeout``,
            ``max_connections``, ...), the PROXY protocol's among them:
            ``proxy_protocol``, ``proxy_trusted``, ``proxy_timeout``. Behind a trusted
            proxy the control connection opens with a PROXY header (read by core's
            channel), and so must every passive data connection that comes from a trusted
            address (read by :mod:`medusa.ftp.proxyheader`, before a ``PROT P``
            handshake): the client it names is checked against the session's (port
            theft, RFC 2577 §5).

    Raises:
        NotADirectoryError: when ``anonymous_root`` is not a directory.
        ValueError: for a bad user, passive range or listing style, a logger name not
            configured, or ``resolve_names`` without a resolver installed.
        PermissionError: for ``unix_users`` when not running as root.
        ssl.SSLError, OSError: when the certificate cannot be loaded.
    """

    name: ClassVar[str] = "ftp"
    path_options: ClassVar[tuple[str, ...]] = ("anonymous_root", "passwords", "certfile", "keyfile")
    busy_reply: ClassVar[bytes] = _BUSY  # 421: too many sessions (or from one address)
    default_port: ClassVar[int] = 8021
    description: ClassVar[str] = "FTP server (RFC 959, FTPS)"
    options: ClassVar[Mapping[str, Option]] = {**Server.options, **PROXY_OPTIONS, **FTP_OPTIONS}

    def __init__(
        self,
        address: Address | str | int | tuple[str, int] = 8021,
        *,
        anonymous_root: str | os.PathLike[str] | None = None,
        users: Iterable[VirtualUser] = (),
        passwords: str | os.PathLike[str] | None = None,
        unix_users: bool = False,
        pam_service: str = "login",
        unix_allow_root: bool = False,
        unix_require_shell: bool = True,
        authorizers: Iterable[Authorizer] = (),
        passive_ports: range | tuple[int, int] | list[int] | None = None,
        masquerade_address: str | None = None,
        permit_foreign_addresses: bool = False,
        permit_privileged_ports: bool = False,
        certfile: str | None = None,
        keyfile: str | None = None,
        tls_control_required: bool = False,
        tls_data_required: bool = False,
        max_login_attempts: int = 3,
        login_failure_delay: float = 1.0,
        login_failure_max_delay: float = 30.0,
        max_login_failures_per_ip: int = 20,
        login_failure_window: float = 600.0,
        max_sessions_per_ip: int = 64,
        data_timeout: float = 60.0,
        data_min_rate: int = 500,
        clean_stale_uploads: bool = True,
        max_download_rate: int = 0,
        max_upload_rate: int = 0,
        listing_style: Literal["unix", "msdos"] = "unix",
        banner: str = "Medusa FTP server ready.",
        max_line: int = 8192,
        xferlog: Logger | bool | str | None = True,
        session_log: Logger | bool | str | None = True,
        resolve_names: bool = False,
        resolver: Resolver | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(address, **kwargs)
        chain = list(authorizers)
        if anonymous_root is not None:
            chain.append(AnonymousAuthorizer(anonymous_root))
        users = list(users)
        if users:
            chain.append(VirtualUsers(users, passwords))
        if unix_users:
            from medusa.ftp.unixusers import UnixUsers

            chain.append(
                UnixUsers(pam_service, allow_root=unix_allow_root, require_shell=unix_require_shell)
            )
        self.authorizers: list[Authorizer] = chain
        if passive_ports is not None and not isinstance(passive_ports, range):
            low, high = passive_ports
            passive_ports = range(int(low), int(high) + 1)
        if passive_ports is not None and (
            not passive_ports or passive_ports[0] < 1024 or passive_ports[-1] > 65535
        ):
            raise ValueError("passive_ports must be a non-empty range within 1024-65535")
        self.passive_ports: range | None = passive_ports
        if masquerade_address is not None:
            try:
                ipaddress.IPv4Address(masquerade_address)
            except ValueError:
                raise ValueError(
                    f"masquerade_address {masquerade_address!r} is not an IPv4 address"
                ) from None
        self.masquerade_address = masquerade_address
        self.permit_foreign_addresses = permit_foreign_addresses
        self.permit_privileged_ports = permit_privileged_ports
        self.tls_context: _ssl.SSLContext | None = None
        self.data_tls_context: _ssl.SSLContext | None = None
        if certfile is not None:
            self.tls_context = server_context(certfile, keyfile)
            self.data_tls_context = server_context(certfile, keyfile, session_tickets=False)
        if (tls_control_required or tls_data_required) and self.tls_context is None:
            raise ValueError("tls_control_required and tls_data_required need a certfile")
        self.tls_control_required = tls_control_required
        self.tls_data_required = tls_data_required
        self.max_login_attempts = max_login_attempts
        self.login_failure_delay = float(login_failure_delay)
        self.login_failures = LoginFailures(
            max_failures=max_login_failures_per_ip,
            lockout=login_failure_window,
            delay=login_failure_delay,
            max_delay=login_failure_max_delay,
            max_clients=10000,
        )
        self.max_sessions_per_ip = max_sessions_per_ip
        self.data_timeout = float(data_timeout)
        self.data_min_rate = data_min_rate
        self.clean_stale_uploads = clean_stale_uploads
        self._stale_scan: asyncio.Future[list[StaleUpload]] | None = None
        self._stop_scan = threading.Event()
        self.max_download_rate = max_download_rate
        self.max_upload_rate = max_upload_rate
        if listing_style not in ("unix", "msdos"):
            raise ValueError(f"listing_style must be unix or msdos, not {listing_style!r}")
        self.listing_style: Literal["unix", "msdos"] = listing_style
        self.banner = banner
        self.max_line = max_line
        self.xferlog = resolve_logger(xferlog, "medusa.ftp.xferlog")
        self.session_log = resolve_logger(session_log, "medusa.ftp.session")
        self.host_names = HostNameLog(resolver) if resolve_names else None
        self._dummy_hash: str | None = None
        self._per_host: dict[str, int] = {}

    # -- configuration ---------------------------------------------------------------------

    @classmethod
    def from_config(
        cls, table: Mapping[str, Any], *, source: str, prefix: str, base_dir: str
    ) -> Server:
        """Build a server from a ``[[server]]`` table; its ``[[server.user]]`` tables are
        the virtual users (see :mod:`medusa.ftp.userconfig`).

        Raises:
            ConfigError: for unknown keys, wrong types or bad values (users included).
        """
        table = dict(table)
        users = users_from_config(
            table.pop("user", []), source=source, prefix=prefix, base_dir=base_dir
        )
        root = table.get("anonymous_root")
        if isinstance(root, str) and not os.path.isdir(os.path.join(base_dir, root)):
            raise ConfigError(source, f"{prefix}.anonymous_root", f"{root}: not a directory")
        server = super().from_config(table, source=source, prefix=prefix, base_dir=base_dir)
        assert isinstance(server, FTPServer)
        if users:
            passwords = table.get("passwords")
            path = os.path.join(base_dir, passwords) if isinstance(passwords, str) else None
            try:
                server.authorizers.append(VirtualUsers(users, path))
            except (ValueError, OSError) as exc:
                raise ConfigError(source, f"{prefix}.user", str(exc)) from exc
        return server

    @classmethod
    def for_serve(cls, address: Address, root: str) -> FTPServer:
        """``medusa serve ROOT --ftp ADDR``: anonymous, read-only, on ROOT."""
        return cls(address, anonymous_root=root)

    # -- start and stop --------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening; then (``clean_stale_uploads``) look for the temporary files of
        uploads a killed process left, in a worker thread, and log each one removed.

        Raises:
            OSError: when the address cannot be bound.
        """
        await super().start()
        roots = self.served_roots()
        if self.clean_stale_uploads and roots:
            began = time.time()
            self._stale_scan = asyncio.get_running_loop().run_in_executor(
                None,
                lambda: remove_stale_uploads(
                    roots, FTP_TEMPORARY, before=began, stop=self._stop_scan
                ),
            )
            self._stale_scan.add_done_callback(self._stale_scan_done)

    def served_roots(self) -> list[str]:
        """The real directories of anonymous and virtual users (Unix users' home
        directories are not included)."""
        roots: list[str] = []
        for authorizer in self.authorizers:
            if isinstance(authorizer, AnonymousAuthorizer):
                roots.append(authorizer.root)
            elif isinstance(authorizer, VirtualUsers):
                roots.extend(user.root for user in authorizer.users.values())
        return roots

    def _stale_scan_done(self, future: asyncio.Future[list[StaleUpload]]) -> None:
        self._stale_scan = None
        if future.cancelled():
            return
        exc = future.exception()
        if exc is not None:
            error_logger.warning("FTP: the search for stale temporary uploads failed: %s", exc)
            return
        for stale in future.result():
            error_logger.warning(
                "FTP: removed %s (%d bytes, last written %s): the temporary file of an "
                "upload interrupted when a server process was killed",
                stale.path,
                stale.size,
                time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stale.mtime)),
            )

    def close(self) -> None:
        """Stop accepting connections and end the search for stale uploads early."""
        self._stop_scan.set()
        super().close()

    # -- logins ----------------------------------------------------------------------------

    def authorizer_for(self, user: str) -> Authorizer | None:
        """Return the first authorizer that handles the name ``user`` (the one whose
        answer counts), or None when none does."""
        for authorizer in self.authorizers:
            if authorizer.handles(user):
                return authorizer
        return None

    def recently_verified(self, user: str, password: str) -> Account | None:
        """Return the account of a virtual user whose ``password`` passed its check in the
        last 5 minutes (:meth:`~medusa.ftp.authorizers.VirtualUsers.verified_at_once`,
        microseconds on the loop), else None: then :meth:`authenticate` decides, in the
        background. Sessions ask it only once the client's address was found not locked
        out."""
        authorizer = self.authorizer_for(user)
        if isinstance(authorizer, VirtualUsers):
            return authorizer.verified_at_once(user, password)
        return None

    async def authenticate(self, user: str, password: str) -> Account | None:
        """Return the account of ``user`` with ``password``, asking the first authorizer
        that handles the name; None when refused. An unknown name costs a dummy scrypt
        check, so that it takes as long as a known one."""
        authorizer = self.authorizer_for(user)
        if authorizer is not None:
            return await authorizer.authenticate(user, password)
        if self._dummy_hash is None:
            self._dummy_hash = await asyncio.to_thread(hash_password, "medusa-dummy")
        await asyncio.to_thread(verify_password, password, self._dummy_hash)
        return None

    # -- channels --------------------------------------------------------------------------

    def make_channel(self) -> Channel:
        """Return a new FTP session for an accepted control connection."""
        return FTPChannel(self)

    def log_with_host(self, log: Logger, address: str, line: Callable[[str], str]) -> None:
        """Write ``line(host)`` to ``log``: ``host`` is the client's name with
        ``resolve_names`` (see :class:`~medusa.core.resolver.HostNameLog`: no reply waits
        for it), else its address."""
        if self.host_names is None:
            log.log(line(address))
        else:
            self.host_names.write(log, address, line)

    def session_opened(self, channel: FTPChannel) -> bool:
        """Count a session for its client's address, once that address is known (after
        the PROXY protocol header of a connection from a trusted proxy); over
        ``max_sessions_per_ip`` from one address, 421 and close.

        Returns:
            False when the session was refused (its greeting must not be sent).
        """
        host = channel.peer_host
        channel.counted_host = host
        count = self._per_host.get(host, 0) + 1
        self._per_host[host] = count
        if count > self.max_sessions_per_ip:
            self.counters.refused += 1
            self.refuse(channel)
            return False
        return True

    def channel_closed(self, channel: Channel) -> None:
        """Unregister a session."""
        if isinstance(channel, FTPChannel) and channel.counted_host is not None:
            host, channel.counted_host = channel.counted_host, None
            count = self._per_host.get(host, 0) - 1
            if count > 0:
                self._per_host[host] = count
            else:
                self._per_host.pop(host, None)
        super().channel_closed(channel)

    def stop_channel(self, channel: Channel) -> None:
        """On shutdown: 421 to idle sessions; a transfer in progress finishes first."""
        if isinstance(channel, FTPChannel):
            channel.shutdown()
        else:
            channel.close_when_done()

    def extra_timeouts(self) -> tuple[float, ...]:
        """The data-connection timeout, so that the sweep runs often enough."""
        return (self.data_timeout,)

    @property
    def url_scheme(self) -> str:
        """``ftp``."""
        return "ftp"
