"""The server: a listening endpoint that makes one channel per connection.

A :class:`Server` listens on TCP (IPv4 or IPv6) or a Unix-domain socket, enforces a maximum
number of connections (the excess gets :meth:`Server.refuse`, a clean refusal, never a
crash), keeps :class:`~medusa.core.stats.Counters`, sweeps idle channels, and on shutdown
stops accepting and lets work in flight finish. Protocol packages subclass it (setting
:attr:`Server.name`, :attr:`Server.default_port`, :meth:`Server.make_channel` and their
:attr:`Server.options`) and register the subclass in the ``medusa.servers`` entry-point group.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import ssl as _ssl
import time
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from medusa.core.address import Address, AddressError
from medusa.core.channel import Channel
from medusa.core.descriptors import refresh_limit, short_of_descriptors
from medusa.core.listener import (
    ListenError,
    close_listener,
    listener_addresses,
    open_listeners,
    socket_file_identity,
)
from medusa.core.log import error_logger, peer_text
from medusa.core.options import ConfigError, Option, non_negative, positive, validate_options
from medusa.core.stats import Counters
from medusa.core.trusted import TrustedNetworks, check_proxy_settings
from medusa.core.writelimits import check_water_marks

__all__ = ["ListenError", "Server", "forget_running_servers", "running_servers"]

_RUNNING: dict[int, Server] = {}

LATE_ITERATIONS = 3
"""Loop iterations a stopping server waits for the channels of connections accepted before
it closed its listener (uvloop makes a channel one iteration after the accept)."""


def running_servers() -> list[Server]:
    """Return the servers of this process that are listening now, in start order (for
    status pages and the monitor)."""
    return list(_RUNNING.values())


def forget_running_servers() -> None:
    """Forget the servers :func:`running_servers` lists without closing them (a worker
    just forked: those are the master's)."""
    _RUNNING.clear()


def _check_listen(value: Any) -> str | None:
    try:
        Address.parse(value)
    except AddressError as exc:
        return str(exc)
    return None


class Server:
    """A listening endpoint of one protocol.

    Args:
        address: where to listen: an :class:`~medusa.core.address.Address`, a string
            (``"8080"``, ``"127.0.0.1:8080"``, ``"[::1]:8080"``, ``"*:8080"``,
            ``"unix:/run/medusa.sock"``), a port number (on 127.0.0.1) or a
            ``(host, port)`` tuple.
        backlog: length of the kernel's queue of connections not yet accepted.
        max_connections: channels open at once; further connections are refused.
        idle_timeout: seconds without traffic after which a channel is closed (0: never).
        write_high_water: bytes of outgoing backlog per channel above which the channel
            stops producing and reading (``None``: asyncio's default, 64 KiB).
        write_low_water: bytes below which it resumes (``None``: a quarter of the high mark).
        sendfile: allow zero-copy ``os.sendfile`` for file producers on plain sockets.
        ssl: a server-side :class:`ssl.SSLContext` for TLS, or ``None``.
        reuse_port: set ``SO_REUSEPORT`` (for several processes on one port).
        proxy_protocol: require a PROXY protocol header (v1 or v2) from the peers in
            ``proxy_trusted`` and take the client's address from it; refuse one from anyone
            else (:class:`~medusa.core.proxyreader.ProxyHeaderReader`). Only server types whose
            :attr:`options` include :data:`~medusa.core.trusted.PROXY_OPTIONS` offer it.
        proxy_trusted: CIDR blocks or addresses of the trusted proxies (``["127.0.0.1/32",
            "10.0.0.0/8"]``); required with ``proxy_protocol``.
        proxy_timeout: seconds a trusted peer has to send its whole header.

    Raises:
        AddressError: for an address string of no accepted form.
        ValueError: for a negative write buffer limit or ``write_low_water`` above
            ``write_high_water``; ``proxy_protocol`` without ``proxy_trusted``, or with
            ``ssl`` (the header comes before the TLS handshake, which this server does
            first); a bad ``proxy_trusted`` entry; ``proxy_timeout`` not above 0.
    """

    name: ClassVar[str] = "server"
    """The server type's name: the entry-point name and the ``--NAME`` option of
    ``medusa serve``."""

    default_port: ClassVar[int] = 0
    """Port used by ``medusa serve`` when no address is given."""

    description: ClassVar[str] = "a Medusa server"
    """One line shown by ``medusa plugins`` and ``medusa serve --help``."""

    path_options: ClassVar[tuple[str, ...]] = ()
    """Options that name files or directories: relative values in ``medusa.toml`` are taken
    from the file's directory (see :meth:`resolve_paths`)."""

    busy_reply: ClassVar[bytes] = b""
    """Bytes written to a connection turned away by :meth:`refuse` before it is closed (HTTP's
    503, FTP's 421); empty: just close."""

    descriptors_per_connection: ClassVar[int] = 1
    """Descriptors one connection holds for its whole life, for the start-up check of
    ``max_connections`` against the process's descriptor limit
    (:func:`medusa.core.descriptors.fit_connections`)."""

    workers_mode: str = "shared"
    """How this server runs under ``--workers`` (:mod:`medusa.core.workers`): ``"shared"``
    (the master binds the address, every worker accepts from it), ``"one"`` (only worker 1
    runs it: state that lives in one process) or ``"each"`` (the master and each worker run
    their own, at :func:`~medusa.core.workers.worker_address`). A type sets it as a class
    attribute; a server may set its own in ``__init__``, from its options (medusa-chat with
    a bus shares its state through Redis and runs in every worker: ``"shared"``)."""

    start_by_default: ClassVar[bool] = True
    """Whether ``medusa serve`` without any ``--NAME`` option starts this type at its default
    port. False for types that must be asked for explicitly (the monitor)."""

    options: ClassVar[Mapping[str, Option]] = {
        o.name: o
        for o in (
            Option("listen", (str, int), "address to listen on", _check_listen),
            Option("backlog", (int,), "kernel accept queue length", positive),
            Option("max_connections", (int,), "connections open at once", positive),
            Option("idle_timeout", (int, float), "idle seconds before a close", non_negative),
            Option("write_high_water", (int,), "per-channel output backlog, bytes", non_negative),
            Option("write_low_water", (int,), "resume below this backlog, bytes", non_negative),
            Option("sendfile", (bool,), "use zero-copy sendfile for files"),
        )
    }
    """The options accepted in ``medusa.toml`` (subclasses extend this mapping)."""

    def __init__(
        self,
        address: Address | str | int | tuple[str, int] = 0,
        *,
        backlog: int = 1024,
        max_connections: int = 10000,
        idle_timeout: float = 300.0,
        write_high_water: int | None = None,
        write_low_water: int | None = None,
        sendfile: bool = True,
        ssl: _ssl.SSLContext | None = None,
        reuse_port: bool = False,
        proxy_protocol: bool = False,
        proxy_trusted: Iterable[str] = (),
        proxy_timeout: float = 10.0,
    ) -> None:
        if isinstance(address, tuple):
            address = Address(address[0], int(address[1]))
        elif not isinstance(address, Address):
            address = Address.parse(address)
        check_water_marks(write_high_water, write_low_water)
        self.address = address
        self.backlog = backlog
        self.max_connections = max_connections
        self.idle_timeout = float(idle_timeout)
        self.write_high_water = write_high_water
        self.write_low_water = write_low_water
        self.sendfile = sendfile
        self.ssl = ssl
        self.reuse_port = reuse_port
        trusted = TrustedNetworks(proxy_trusted)
        if proxy_protocol and not trusted:
            raise ValueError("proxy_protocol needs proxy_trusted (the proxies' addresses)")
        if proxy_protocol and ssl is not None:
            raise ValueError("proxy_protocol is not supported on a TLS listener")
        if proxy_timeout <= 0:
            raise ValueError("proxy_timeout must be greater than 0")
        self.trusted_proxies = trusted
        """The ``proxy_trusted`` networks (empty when none were given)."""
        self.proxy_trusted: TrustedNetworks | None = trusted if proxy_protocol else None
        """The peers that must send a PROXY header, or None when ``proxy_protocol`` is
        off (channels then never look for one)."""
        self.proxy_timeout = float(proxy_timeout)
        self.counters = Counters()
        self.channels: set[Channel] = set()
        self._refused: set[Channel] = set()  # refused, their connection not yet lost
        self._listeners: list[asyncio.Server] = []
        # The Unix socket file this server made (listener.socket_file_identity).
        self._socket_file: tuple[int, int, int] | None = None
        self.inherited_sockets: list[socket.socket] = []
        """Listening sockets bound by the master of ``--workers`` that :meth:`start` adopts
        instead of binding :attr:`address` (empty: bind it)."""
        self._sweeper: asyncio.TimerHandle | None = None
        self._idle: asyncio.Event | None = None
        self._stopping = False
        self._channels_stopped = False  # shutdown() has asked every channel to finish
        self._refusals = 0  # refusals not logged yet (one line a second at most)
        self._refusal_logged = 0.0

    # -- configuration ---------------------------------------------------------------------

    @classmethod
    def from_config(
        cls, table: Mapping[str, Any], *, source: str, prefix: str, base_dir: str
    ) -> Server:
        """Build a server from one ``[[server]]`` table of ``medusa.toml`` (``type``
        removed).

        Args:
            table: the options; every key must be in :attr:`options`.
            source: the file name, for error messages.
            prefix: the table's dotted key, for error messages.
            base_dir: directory against which relative paths in options are resolved (a
                relative ``unix:`` socket path among them).

        Raises:
            ConfigError: for unknown keys, wrong types or bad values.
        """
        kwargs = validate_options(table, cls.options, source=source, prefix=prefix)
        check_proxy_settings(kwargs, source=source, prefix=prefix)
        address = Address.parse(kwargs.pop("listen", cls.default_port))  # checked above
        if address.path is not None and not os.path.isabs(address.path):
            address = Address(None, 0, os.path.join(base_dir, address.path))
        kwargs = cls.resolve_paths(kwargs, base_dir)
        try:
            return cls(address, **kwargs)
        except OSError as exc:
            # A file named by one of the path options: the error names that option.
            for name in cls.path_options:
                value = kwargs.get(name)
                if value is not None and exc.filename == os.fspath(value):
                    reason = f"cannot read {exc.filename}: {exc.strerror or exc}"
                    raise ConfigError(source, f"{prefix}.{name}", reason) from exc
            raise ConfigError(source, prefix, str(exc)) from exc
        except ValueError as exc:
            raise ConfigError(source, prefix, str(exc)) from exc

    @classmethod
    def resolve_paths(cls, kwargs: dict[str, Any], base_dir: str) -> dict[str, Any]:
        """Make the options named in :attr:`path_options` absolute against ``base_dir``
        (an absolute path stays as it is). Returns the keyword arguments."""
        for key in cls.path_options:
            value = kwargs.get(key)
            if isinstance(value, str):
                kwargs[key] = os.path.join(base_dir, value)
        return kwargs

    @classmethod
    def for_serve(cls, address: Address, root: str) -> Server:
        """Build the server ``medusa serve ROOT --NAME ADDR`` starts (safe defaults).

        Args:
            address: where to listen.
            root: the directory given to ``medusa serve`` (types without files ignore it).
        """
        return cls(address)

    @classmethod
    def add_serve_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Add this type's own options to ``medusa serve``'s ``parser`` (none by default).

        A type that adds options gives them destinations prefixed with its :attr:`name`
        (``http_listing``) so that types never collide, and reads them back in
        :meth:`from_serve_arguments`.
        """

    @classmethod
    def from_serve_arguments(
        cls, address: Address, root: str, arguments: argparse.Namespace
    ) -> Server:
        """Build the server ``medusa serve`` starts, given its whole parsed command line
        (the options of :meth:`add_serve_arguments` among them); by default
        :meth:`for_serve`.

        Args:
            address: where to listen.
            root: the directory given to ``medusa serve``.
            arguments: the parsed ``medusa serve`` command line.
        """
        return cls.for_serve(address, root)

    # -- life cycle ------------------------------------------------------------------------

    def make_channel(self) -> Channel:
        """Return a new channel for an accepted connection; protocol subclasses override."""
        raise NotImplementedError

    async def start(self) -> None:
        """Start listening (on :attr:`inherited_sockets` when the master of ``--workers``
        bound them for this worker).

        Raises:
            ListenError: when the address cannot be bound (in use, permission, bad host);
                an :class:`OSError` whose message names the server and the address.
        """
        self._stopping = False  # a start again after a failed one (a worker's late start)
        self._channels_stopped = False
        self._listeners = await open_listeners(
            self.name,
            self.address,
            self.make_channel,
            backlog=self.backlog,
            ssl=self.ssl,
            reuse_port=self.reuse_port,
            sockets=self.inherited_sockets,
        )
        if self.address.path is not None and not self.inherited_sockets:
            self._socket_file = socket_file_identity(self.address.path)
        self.counters.started = time.time()
        _RUNNING[id(self)] = self
        self._schedule_sweep()

    async def bind(self) -> None:
        """Bind and listen on :attr:`address` without accepting (the master of
        ``--workers``, whose workers adopt the sockets: :attr:`listening_fds`).

        Raises:
            ListenError: as :meth:`start`.
        """
        self._listeners = await open_listeners(
            self.name,
            self.address,
            self.make_channel,
            backlog=self.backlog,
            reuse_port=self.reuse_port,
            start_serving=False,
        )
        if self.address.path is not None:
            self._socket_file = socket_file_identity(self.address.path)

    @property
    def listening_fds(self) -> list[int]:
        """The descriptors of the listening sockets (the master hands them to its workers,
        which inherit them across ``fork``)."""
        return [sock.fileno() for listener in self._listeners for sock in listener.sockets]

    @property
    def listening(self) -> list[str]:
        """The bound addresses (``127.0.0.1:8080``, ``[::1]:8080``, ``unix:/path``)."""
        return listener_addresses(self._listeners)

    @property
    def port(self) -> int:
        """The first bound TCP port (useful after listening on port 0); 0 for Unix sockets."""
        for listener in self._listeners:
            for sock in listener.sockets:
                name = sock.getsockname()
                if isinstance(name, tuple):
                    return int(name[1])
        return 0

    @property
    def url_scheme(self) -> str:
        """Scheme shown in start-up messages (``http``, ``ftp``...)."""
        return self.name

    def close(self) -> None:
        """Stop accepting connections (channels already open go on)."""
        self._stopping = True
        _RUNNING.pop(id(self), None)
        for listener in self._listeners:
            close_listener(listener)
        socket_file, self._socket_file = self._socket_file, None
        path = self.address.path
        # Only the socket file this server made: after a reload the path may already be the
        # new worker's socket, possibly with this one's inode number.
        if (
            socket_file is not None
            and path is not None
            and socket_file_identity(path) == socket_file
        ):
            with contextlib.suppress(OSError):
                os.unlink(path)
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    async def shutdown(self, grace: float = 10.0) -> None:
        """Stop accepting, ask every channel to finish (:meth:`stop_channel`), wait up to
        ``grace`` seconds for them to close, then abort the rest and wait (briefly) until
        their connections are released.

        Args:
            grace: seconds to let responses in flight finish.
        """
        self.close()
        # Connections accepted before the close get their channels on the next iterations
        # (see channel_opened): let them join before waiting for the channels to finish.
        for _ in range(LATE_ITERATIONS):
            await asyncio.sleep(0)
        for channel in list(self.channels):
            self.stop_channel(channel)
        self._channels_stopped = True
        await self._wait_idle(grace)
        if self.channels or self._refused:
            self.abort_channels()
            # connection_lost runs from the loop's next iterations: let it release the
            # sockets before the caller closes the loop.
            await self._wait_idle(1.0)
        for listener in self._listeners:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(listener.wait_closed(), 1.0)

    def abort_channels(self) -> None:
        """Abort every open connection now (the end of the grace period, or a second stop
        signal); their ``connection_lost`` follows on the loop's next iterations."""
        for channel in [*self.channels, *self._refused]:
            channel.abort()

    async def _wait_idle(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds until no channel is open (refused ones
        included)."""
        if self.channels or self._refused:
            self._idle = asyncio.Event()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)

    def stop_channel(self, channel: Channel) -> None:
        """Ask one channel to finish its current work and close (on shutdown). The
        default closes it once its queued output is sent; protocols override this to
        close idle connections at once."""
        channel.close_when_done()

    # -- channel bookkeeping ---------------------------------------------------------------

    def channel_opened(self, channel: Channel) -> bool:
        """Register a new channel; return False (after :meth:`refuse`) when the server is
        full (``max_connections``) or the process is nearly out of descriptors
        (:func:`~medusa.core.descriptors.short_of_descriptors`); refusals are logged, one
        line a second at most.

        A connection accepted just before the server stopped accepting (its channel made
        an iteration later: uvloop makes every one so, and the standard loop those of the
        closing iteration) is not refused: it is registered and then asked to finish like
        the others (:meth:`stop_channel`: an HTTP client's request is answered with
        ``Connection: close``), so a worker handing over to another in a reload fails no
        request."""
        counters = self.counters
        counters.connections += 1
        full = counters.active >= self.max_connections
        short = None if full else _short_of_descriptors(channel)
        if full or short is not None:
            counters.refused += 1
            if full:
                why = f"{self.max_connections} connections open (max_connections)"
            else:
                why = f"out of descriptors (the process may open {short})"
            self._log_refusal(channel, why)
            self._refused.add(channel)
            try:
                self.refuse(channel)
            except Exception:
                error_logger.exception("refusing %r failed", channel.peer)
                channel.abort()
            return False
        counters.active += 1
        self.channels.add(channel)
        if self._stopping:  # after handle_connect (a greeting) has run
            asyncio.get_running_loop().call_soon(self._stop_late, channel)
        return True

    def _stop_late(self, channel: Channel) -> None:
        if self._channels_stopped and channel in self.channels:
            self.stop_channel(channel)

    def _log_refusal(self, channel: Channel, why: str) -> None:
        self._refusals += 1
        now = time.monotonic()
        if now - self._refusal_logged < 1.0:
            return
        more = self._refusals - 1
        self._refusals = 0
        self._refusal_logged = now
        error_logger.warning(
            "%s on %s: refused a connection from %s: %s%s",
            self.name,
            self.address,
            peer_text(channel.peer) if channel.peer else "a local client",
            why,
            f" (and {more} more since the last line)" if more else "",
        )

    def refuse(self, channel: Channel) -> None:
        """Turn away a connection over :attr:`max_connections`: write :attr:`busy_reply`
        (if any), then close."""
        transport = channel.transport
        if self.busy_reply and transport is not None:
            transport.write(self.busy_reply)
        channel.close()

    def channel_closed(self, channel: Channel) -> None:
        """Unregister a channel whose connection was lost."""
        if channel in self.channels:
            self.channels.discard(channel)
            self.counters.active -= 1
        else:
            self._refused.discard(channel)
        if not self.channels and not self._refused and self._idle is not None:
            self._idle.set()

    # -- idle sweep ------------------------------------------------------------------------

    @property
    def sweep_interval(self) -> float:
        """Seconds between two idle sweeps: a quarter of the shortest timeout, at most 1 s."""
        timeouts = [t for t in (self.idle_timeout, *self.extra_timeouts()) if t > 0]
        return max(0.01, min([1.0, *(t / 4 for t in timeouts)]))

    def extra_timeouts(self) -> tuple[float, ...]:
        """Other timeouts (seconds) that channels check in :meth:`Channel.check_timeout`;
        protocol subclasses list theirs so the sweep runs often enough."""
        return ()

    def _schedule_sweep(self) -> None:
        loop = asyncio.get_running_loop()
        self._sweeper = loop.call_later(self.sweep_interval, self._sweep)

    def _sweep(self) -> None:
        refresh_limit()  # prlimit --pid can change it under a running process
        now = time.monotonic()
        for channel in list(self.channels):
            try:
                channel.check_timeout(now)
            except Exception:
                error_logger.exception("timeout check of %r failed", channel.peer)
                channel.abort()
        if not self._stopping:
            self._schedule_sweep()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.address}>"


def _short_of_descriptors(channel: Channel) -> int | None:
    """The descriptor limit when the channel's socket descriptor comes near it, else
    None (also when the transport shows no socket)."""
    transport = channel.transport
    try:
        sock = transport.get_extra_info("socket") if transport is not None else None
        fd = sock.fileno() if sock is not None else -1
    except (AttributeError, OSError):
        return None
    return short_of_descriptors(fd) if fd >= 0 else None
