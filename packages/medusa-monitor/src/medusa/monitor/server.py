"""The monitor server: a remote Python prompt into the running process, for its
administrator (the original Medusa's ``monitor.py`` with a sound login).

It listens on a Unix-domain socket (mode 0600, in a directory only its owner can enter) or
on TCP (127.0.0.1 unless told otherwise, optionally with TLS). On TCP it needs a secret of
at least 16 bytes, read from a file or an environment variable, never from the command
line. On a Unix socket without a secret, the socket's permissions are the authentication,
checked once more with the peer's uid (``SO_PEERCRED``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import ssl as _ssl
from collections.abc import Mapping
from typing import Any, ClassVar

from medusa.core.address import Address
from medusa.core.channel import Channel
from medusa.core.log import (
    Logger,
    StdlibLogger,
    check_logger_option,
    error_logger,
    resolve_logger,
)
from medusa.core.options import ConfigError, Option, non_negative, positive
from medusa.core.server import Server
from medusa.core.throttle import LoginFailures
from medusa.monitor.channel import MonitorChannel
from medusa.monitor.secret import SECRET_ENV, SECRET_FILE_ENV, SecretError, load_secret
from medusa.monitor.unixsock import HAVE_PEERCRED, prepare_socket_directory

__all__ = ["SECRET_ENV", "SECRET_FILE_ENV", "MonitorServer", "tls_context"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(value: Any) -> str | None:
    return None if _ENV_NAME.fullmatch(value) else "must be an environment variable name"


def _at_least(minimum: int) -> Any:
    def check(value: Any) -> str | None:
        return None if value >= minimum else f"must be {minimum} or more"

    return check


def tls_context(certfile: str, keyfile: str | None = None) -> _ssl.SSLContext:
    """Return a server-side TLS context accepting TLS 1.2 and later.

    Args:
        certfile: PEM file with the certificate chain.
        keyfile: PEM file with the private key (``None``: it is in ``certfile``).

    Raises:
        ssl.SSLError, OSError: the files cannot be read or do not match.
    """
    context = _ssl.create_default_context(_ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = _ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    return context


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class MonitorServer(Server):
    """The monitor: authenticated sessions running Python in the event loop.

    Args:
        address: where to listen (see :class:`~medusa.core.server.Server`); default
            127.0.0.1:8023.
        secret: the shared secret itself (API use only), at least 16 bytes.
        secret_file: a file holding the secret (mode 0600 or stricter; one trailing
            newline is ignored).
        secret_env: the name of an environment variable holding the secret.
        certfile: PEM certificate chain for TLS (TCP only; TLS 1.2 and later).
        keyfile: PEM private key for ``certfile`` (``None``: it is in ``certfile``).
        max_failures: failed logins after which a client address is locked out (0: never).
        lockout: seconds a locked-out address is refused; also how long failures count.
        failure_delay: seconds before the first refusal; doubled by each further failure.
        max_delay: the longest refusal delay, seconds.
        login_timeout: seconds a client has to answer the challenge.
        output_limit: bytes of output sent per reply at most (the rest is counted).
        max_source: largest block of source accepted at once, bytes.
        audit_log: a :class:`~medusa.core.log.Logger` for logins, failures and every
            executed line, or the name of a ``[logger.NAME]`` table; the default writes to the
            :mod:`logging` logger ``medusa.monitor.audit``; ``False``/``None`` turns it off
            (failures then go to the ``medusa`` error log).
        namespace: further names for every session's namespace.
        max_connections: sessions at once.
        idle_timeout: seconds an idle session stays open (0: forever).
        **kwargs: further :class:`~medusa.core.server.Server` options.

    Raises:
        SecretError: no secret on TCP, two sources of one, or an unusable secret.
        ValueError: TLS options on a Unix socket, a keyfile without a certfile, a
            negative ``max_failures``, ``lockout``, ``failure_delay`` or ``max_delay``.
        ssl.SSLError, OSError: the certificate or key cannot be loaded.
    """

    name: ClassVar[str] = "monitor"
    path_options: ClassVar[tuple[str, ...]] = ("secret_file", "certfile", "keyfile")
    default_port: ClassVar[int] = 8023
    description: ClassVar[str] = "secure remote Python prompt (monitor)"
    start_by_default: ClassVar[bool] = False  # only with --monitor ADDR
    workers_mode = "each"  # a prompt into the master and into each worker
    options: ClassVar[Mapping[str, Option]] = {
        **Server.options,
        **{
            o.name: o
            for o in (
                Option("secret_file", (str,), "file holding the secret (mode 0600)"),
                Option("secret_env", (str,), "environment variable holding the secret", _env_name),
                Option("certfile", (str,), "PEM certificate chain for TLS"),
                Option("keyfile", (str,), "PEM private key for TLS"),
                Option("max_failures", (int,), "failed logins before a lockout", non_negative),
                Option("lockout", (int, float), "lockout, seconds", non_negative),
                Option("failure_delay", (int, float), "first refusal delay, s", non_negative),
                Option("max_delay", (int, float), "longest refusal delay, s", non_negative),
                Option("login_timeout", (int, float), "seconds to log in", positive),
                Option("output_limit", (int,), "output per reply, bytes", _at_least(256)),
                Option("max_source", (int,), "largest source block, bytes", positive),
                Option(
                    "audit_log",
                    (bool, str),
                    "audit log: true, false or a [logger.NAME]",
                    check_logger_option,
                ),
            )
        },
    }

    def __init__(
        self,
        address: Address | str | int | tuple[str, int] = 8023,
        *,
        secret: bytes | str | None = None,
        secret_file: str | os.PathLike[str] | None = None,
        secret_env: str | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        max_failures: int = 5,
        lockout: float = 300.0,
        failure_delay: float = 1.0,
        max_delay: float = 30.0,
        login_timeout: float = 30.0,
        output_limit: int = 65536,
        max_source: int = 1 << 20,
        audit_log: Logger | bool | str | None = True,
        namespace: Mapping[str, Any] | None = None,
        max_connections: int = 16,
        idle_timeout: float = 3600.0,
        **kwargs: Any,
    ) -> None:
        if keyfile is not None and certfile is None:
            raise ValueError("keyfile needs certfile")
        super().__init__(
            address, max_connections=max_connections, idle_timeout=idle_timeout, **kwargs
        )
        unix = self.address.path is not None
        if unix and (certfile is not None or self.ssl is not None):
            raise ValueError("TLS is for TCP: a Unix socket is already private")
        self.secret = load_secret(secret=secret, secret_file=secret_file, secret_env=secret_env)
        if self.secret is None and not unix:
            raise SecretError(
                "secret_file",
                "a monitor on TCP needs a secret: give secret_file or secret_env "
                f"(medusa serve: set {SECRET_FILE_ENV} or {SECRET_ENV})",
            )
        if self.secret is None and not HAVE_PEERCRED:
            raise SecretError(
                "secret_file", "this platform cannot identify Unix-socket peers: give a secret"
            )
        if certfile is not None:
            self.ssl = tls_context(certfile, keyfile)
        self.throttle = LoginFailures(
            max_failures=max_failures,
            lockout=lockout,
            delay=failure_delay,
            max_delay=max_delay,
            max_clients=10000,
        )
        self.login_timeout = float(login_timeout)
        self.output_limit = output_limit
        self.max_source = max_source
        self.audit_log: Logger | None = resolve_logger(audit_log, "medusa.monitor.audit")
        self.namespace: dict[str, Any] = dict(namespace or {})
        self._sessions = 0

    # -- configuration ---------------------------------------------------------------------

    @classmethod
    def from_config(
        cls, table: Mapping[str, Any], *, source: str, prefix: str, base_dir: str
    ) -> Server:
        """Build a monitor from a ``[[server]]`` table; a secret problem is reported
        against its key (``server[1].secret_file``).

        Raises:
            ConfigError: unknown keys, wrong types, bad values, no usable secret on TCP.
        """
        try:
            return super().from_config(table, source=source, prefix=prefix, base_dir=base_dir)
        except ConfigError as exc:
            cause = exc.__cause__
            if isinstance(cause, SecretError):
                raise ConfigError(source, f"{prefix}.{cause.option}", str(cause)) from cause
            raise

    @classmethod
    def for_serve(cls, address: Address, root: str) -> MonitorServer:
        """``medusa serve --monitor ADDR``: the secret comes from the environment (a file
        named by ``MEDUSA_MONITOR_SECRET_FILE``, or ``MEDUSA_MONITOR_SECRET`` itself); a
        Unix socket may go without one (its permissions and the peer's uid then decide).

        Raises:
            ConfigError: both variables set, an unusable secret, or none on TCP.
        """
        secret_file = os.environ.get(SECRET_FILE_ENV) or None
        has_env = SECRET_ENV in os.environ
        if secret_file is not None and has_env:
            raise ConfigError(
                "environment", "--monitor", f"set only one of {SECRET_FILE_ENV} and {SECRET_ENV}"
            )
        try:
            return cls(address, secret_file=secret_file, secret_env=SECRET_ENV if has_env else None)
        except (ValueError, OSError) as exc:
            raise ConfigError("command line", "--monitor", str(exc)) from exc

    # -- running ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen; a Unix socket only in a private directory, then made mode 0600.

        Raises:
            PermissionError: the socket's directory is open to other users.
            OSError: the address cannot be bound.
        """
        path = self.address.path
        if path is not None:
            prepare_socket_directory(path)
        elif self.ssl is None and not _is_loopback(self.address.host):
            error_logger.warning(
                "monitor on %s without TLS: code and output cross the network in clear text",
                self.address,
            )
        await super().start()
        if path is not None:
            os.chmod(path, 0o600)

    @property
    def url_scheme(self) -> str:
        """``monitors`` with TLS, else ``monitor``."""
        return "monitors" if self.ssl is not None else "monitor"

    def make_channel(self) -> Channel:
        """Return a new :class:`~medusa.monitor.channel.MonitorChannel`."""
        return MonitorChannel(self)

    def extra_timeouts(self) -> tuple[float, ...]:
        """The login timeout, so the sweep runs often enough."""
        return (self.login_timeout,)

    def next_session(self) -> int:
        """Number the next session (1, 2, ...), for the file names of its input."""
        self._sessions += 1
        return self._sessions

    def audit(self, message: str, *, failure: bool = False) -> None:
        """Write one line to the audit log. A failed login also goes to the ``medusa``
        error log when the audit log is off (or its :mod:`logging` logger is silenced),
        so failures are always recorded somewhere.

        Args:
            message: the line (no newline).
            failure: True for a failed login.
        """
        log = self.audit_log
        recorded = False
        if log is not None:
            try:
                log.log(f"monitor {message}")
                recorded = not isinstance(log, StdlibLogger) or log.enabled
            except Exception:
                error_logger.exception("the monitor's audit log failed")
        if failure and not recorded:
            error_logger.warning("monitor %s", message)
