"""The chat server: IRC clients on its main address and, optionally, the original Medusa's
simple line mode (``simple``) and a browser page with a WebSocket bridge (``web``) on
addresses of their own, all in one network."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from medusa.chat.batching import WriteBatcher
from medusa.chat.casemap import is_valid_channel
from medusa.chat.commands import COMMANDS, Handler
from medusa.chat.connection import IRCConnection, peer_host
from medusa.chat.network import Network, NetworkConfig
from medusa.chat.redisbus import RedisBus, check_bus_url, require_redis
from medusa.chat.session import LinkPolicy
from medusa.chat.simple import SimpleConnection
from medusa.chat.websocket import WebConnection, require_wsproto
from medusa.core.address import Address
from medusa.core.channel import Channel
from medusa.core.listener import close_listener, open_listeners
from medusa.core.log import error_logger
from medusa.core.options import ConfigError, Option, non_negative, positive
from medusa.core.server import Server
from medusa.core.trusted import PROXY_OPTIONS

__all__ = ["ChatServer"]


def _check_address(value: Any) -> str | None:
    if value == "":
        return None
    try:
        Address.parse(value)
    except ValueError as exc:
        return str(exc)
    return None


def _check_channel(value: Any) -> str | None:
    return None if is_valid_channel(value) else "not a channel name (#name)"


class ChatServer(Server):
    """An IRC server (RFC 1459/2812 client protocol) with a simple telnet mode and a web
    page, sharing one :class:`~medusa.chat.network.Network`.

    Args:
        address: the IRC address (see :class:`~medusa.core.server.Server`).
        server_name: the name in prefixes and numerics.
        network_name: ``NETWORK=`` in ``RPL_ISUPPORT``.
        password: a connection password clients must send with PASS (``None``: none).
        motd: the message of the day as text (``None``: clients get 422).
        motd_file: a file whose lines are the message of the day (read at start-up).
        max_clients_per_address: connections at once from one IP address (all listeners).
        max_channels_per_client: channels a client may be on at once.
        flood_rate: lines per second per client in the long run (0: no flood control).
        flood_burst: lines a client may send at once before flood control counts.
        ping_interval: seconds of client silence before the server sends PING (0: never).
        ping_timeout: seconds to answer that PING before ``Ping timeout``.
        registration_timeout: seconds to complete NICK and USER (0: no limit).
        max_sendq: output writes (the lines of one loop iteration each) queued for a
            client that does not read before it is disconnected (``SendQ exceeded``).
        nick_length: the longest nickname.
        simple: address of the simple line mode (``""`` or ``None``: off).
        simple_channel: the channel simple-mode users talk in.
        web: address of the HTTP page and WebSocket bridge (needs ``medusa-chat[web]``).
        bus: a Redis URL (``redis://HOST:PORT/DB``): every process naming the same bus
            (and ``network_name``) serves one network (:mod:`medusa.chat.redisbus`; needs
            ``medusa-chat[redis]``); ``None``: the network lives in this process.
        heartbeat_timeout: with a bus, seconds after which a node that stopped (killed,
            or cut from Redis) is lost for the others: its users quit (``node lost``).
        commands: the command table given to the network, command name (upper case) to
            ``handler(network, user, message)`` (``None``: the standard
            :data:`medusa.chat.commands.COMMANDS`); from a startup script only. Every
            listener's users are served by it.
        kwargs: the options of :class:`~medusa.core.server.Server`; ``idle_timeout``
            defaults to 0 here (PING decides when a client is gone). With
            ``proxy_protocol`` (and ``proxy_trusted``), every listener of the server (IRC,
            ``simple``, ``web``) takes the PROXY header from trusted peers: the client's
            address is then used for host masks, ``max_clients_per_address`` and logs.

    Raises:
        AddressError: for a malformed address.
        OSError: when ``motd_file`` cannot be read.
        ValueError: for a bad ``simple_channel``.
        ImportError: for ``web`` without wsproto installed, for ``bus`` without redis-py.

    Attributes:
        workers_mode: ``"one"`` (worker 1 only) without a bus; with one, ``"shared"``:
            every worker serves the chat, one network through Redis.
        bus: the running :class:`~medusa.chat.redisbus.RedisBus`, or ``None``.
    """

    name: ClassVar[str] = "chat"
    workers_mode = "one"  # its users and channels live in one process (unless a bus)
    path_options: ClassVar[tuple[str, ...]] = ("motd_file",)
    default_port: ClassVar[int] = 6667
    description: ClassVar[str] = "IRC chat server (simple line mode and web page optional)"

    options: ClassVar[Mapping[str, Option]] = {
        **Server.options,
        **PROXY_OPTIONS,
        **{
            o.name: o
            for o in (
                Option("server_name", (str,), "server name in messages"),
                Option("network_name", (str,), "network name (005 NETWORK=)"),
                Option("password", (str,), "connection password (PASS)"),
                Option("motd", (str,), "message of the day"),
                Option("motd_file", (str,), "file holding the message of the day"),
                Option("max_clients_per_address", (int,), "connections per IP", positive),
                Option("max_channels_per_client", (int,), "channels per client", positive),
                Option("flood_rate", (int, float), "lines/s per client (0: off)", non_negative),
                Option("flood_burst", (int, float), "lines at once per client", positive),
                Option("ping_interval", (int, float), "silence before PING, s", non_negative),
                Option("ping_timeout", (int, float), "time to answer PING, s", positive),
                Option("registration_timeout", (int, float), "NICK/USER deadline, s", non_negative),
                Option("max_sendq", (int,), "queued writes for a slow client", positive),
                Option("nick_length", (int,), "longest nickname", positive),
                Option("simple", (str, int), "address of the simple line mode", _check_address),
                Option("simple_channel", (str,), "channel of simple-mode users", _check_channel),
                Option("web", (str, int), "address of the web page + WebSocket", _check_address),
                Option("bus", (str,), "Redis URL shared by the nodes", check_bus_url),
                Option("heartbeat_timeout", (int, float), "node lost after, s", positive),
            )
        },
    }

    def __init__(
        self,
        address: Address | str | int | tuple[str, int] = 6667,
        *,
        server_name: str = "medusa",
        network_name: str = "Medusa",
        password: str | None = None,
        motd: str | None = None,
        motd_file: str | os.PathLike[str] | None = None,
        max_clients_per_address: int = 10,
        max_channels_per_client: int = 20,
        flood_rate: float = 5.0,
        flood_burst: float = 30.0,
        ping_interval: float = 120.0,
        ping_timeout: float = 60.0,
        registration_timeout: float = 60.0,
        max_sendq: int = 10000,
        nick_length: int = 30,
        simple: Address | str | int | None = None,
        simple_channel: str = "#lobby",
        web: Address | str | int | None = None,
        bus: str | None = None,
        heartbeat_timeout: float = 10.0,
        commands: Mapping[str, Handler] | None = None,
        idle_timeout: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(address, idle_timeout=idle_timeout, **kwargs)
        if motd_file is not None:
            motd = Path(motd_file).read_text("utf-8", "replace")
        self.network = Network(
            NetworkConfig(
                server_name=server_name,
                network_name=network_name,
                password=password,
                motd=tuple(motd.splitlines()) if motd is not None else None,
                nick_length=nick_length,
                max_channels=max_channels_per_client,
            ),
            commands=COMMANDS if commands is None else commands,
        )
        self.policy = LinkPolicy(
            flood_rate=float(flood_rate),
            flood_burst=float(flood_burst),
            ping_interval=float(ping_interval),
            ping_timeout=float(ping_timeout),
            registration_timeout=float(registration_timeout),
        )
        self.max_clients_per_address = max_clients_per_address
        self.max_sendq = max_sendq
        self.simple_address = _optional_address(simple)
        if not is_valid_channel(simple_channel):
            raise ValueError(f"simple_channel {simple_channel!r} is not a channel name")
        self.simple_channel = simple_channel
        self.web_address = _optional_address(web)
        if self.web_address is not None:
            require_wsproto()
        self.bus_url = bus or None
        self.heartbeat_timeout = float(heartbeat_timeout)
        self.bus: RedisBus | None = None
        if self.bus_url is not None:
            reason = check_bus_url(self.bus_url)
            if reason is not None:
                raise ValueError(f"bus {self.bus_url!r}: {reason}")
            require_redis()
            self.workers_mode = "shared"
        self.batcher = WriteBatcher(self.network.seal_shared)
        self._per_address: dict[str, int] = {}
        self._hosts: dict[Channel, str] = {}
        self._extra: list[tuple[str, asyncio.Server]] = []

    @classmethod
    def from_config(
        cls, table: Mapping[str, Any], *, source: str, prefix: str, base_dir: str
    ) -> Server:
        """As :meth:`Server.from_config`; a missing ``wsproto`` for ``web`` or redis-py
        for ``bus`` is reported as a configuration error naming the extra."""
        try:
            return super().from_config(table, source=source, prefix=prefix, base_dir=base_dir)
        except ImportError as exc:
            option = "bus" if exc.name == "redis" else "web"
            raise ConfigError(source, f"{prefix}.{option}", str(exc)) from exc

    @classmethod
    def add_serve_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """``--chat-bus URL``: one network through Redis (the ``bus`` option)."""
        parser.add_argument(
            "--chat-bus",
            dest="chat_bus",
            metavar="URL",
            help="share the chat network through Redis (redis://HOST:PORT/DB; "
            "needs medusa-chat[redis]); the chat then runs in every worker",
        )

    @classmethod
    def from_serve_arguments(
        cls, address: Address, root: str, arguments: argparse.Namespace
    ) -> Server:
        """``medusa serve --chat ADDR [--chat-bus URL]``.

        Raises:
            ConfigError: for a bad URL, or a bus without redis-py installed.
        """
        url = getattr(arguments, "chat_bus", None)
        try:
            return cls(address, bus=url)
        except (ImportError, ValueError) as exc:
            raise ConfigError("command line", "--chat-bus", str(exc)) from exc

    # -- listeners -------------------------------------------------------------------------

    @property
    def url_scheme(self) -> str:
        """``irc`` in start-up messages."""
        return "irc"

    def make_channel(self) -> Channel:
        """An :class:`~medusa.chat.connection.IRCConnection`."""
        return IRCConnection(self)

    def make_simple_channel(self) -> Channel:
        """A :class:`~medusa.chat.simple.SimpleConnection` for the simple line mode."""
        return SimpleConnection(self)

    def make_web_channel(self) -> Channel:
        """A :class:`~medusa.chat.websocket.WebConnection` for the page and its WebSocket."""
        return WebConnection(self)

    async def start(self) -> None:
        """Join the bus (with ``bus``), then listen on the IRC address, then on the
        ``simple`` and ``web`` addresses.

        Raises:
            OSError: when an address cannot be bound (the ones already bound are closed).
        """
        if self.bus_url is not None and self.bus is None:
            # On the bus before the first client comes (a nick needs it), unless Redis
            # does not answer within the heartbeat timeout: then it keeps trying.
            self.bus = RedisBus(
                self.network, self.bus_url, heartbeat_timeout=self.heartbeat_timeout
            )
            await self.bus.start(wait=min(self.heartbeat_timeout, 5.0))
        await super().start()
        extras: list[tuple[str, Address, Callable[[], Channel]]] = []
        if self.simple_address is not None:
            extras.append(("simple", self.simple_address, self.make_simple_channel))
        if self.web_address is not None:
            extras.append(("web", self.web_address, self.make_web_channel))
        try:
            for role, address, factory in extras:
                listeners = await open_listeners(
                    f"{self.name} {role}",
                    address,
                    factory,
                    backlog=self.backlog,
                    # with a bus under --workers every worker binds them (SO_REUSEPORT)
                    reuse_port=self.reuse_port or bool(self.inherited_sockets),
                )
                self._extra.extend((role, listener) for listener in listeners)
        except BaseException:
            self.close()
            raise
        for role, where in self.extra_listening:
            error_logger.info("chat: %s mode on %s", role, _url(role, where))

    async def shutdown(self, grace: float = 10.0) -> None:
        """As :meth:`Server.shutdown` (every user quits, ``Server shutting down``); then
        the bus publishes those QUITs, frees this node's nicks and disconnects."""
        await super().shutdown(grace)
        bus, self.bus = self.bus, None
        if bus is not None:
            await bus.close()

    @property
    def extra_listening(self) -> list[tuple[str, str]]:
        """``(role, address)`` of the ``simple`` and ``web`` listeners (``127.0.0.1:8081``,
        ``unix:/path``)."""
        out: list[tuple[str, str]] = []
        for role, listener in self._extra:
            for sock in listener.sockets:
                name = sock.getsockname()
                if isinstance(name, tuple):
                    out.append((role, str(Address(name[0], name[1]))))
                else:
                    out.append((role, f"unix:{name}"))
        return out

    @property
    def listening(self) -> list[str]:
        """The IRC addresses (``127.0.0.1:6667``, shown as ``irc://``), then the simple
        mode's as ``telnet://127.0.0.1:6668/`` and the web page's as
        ``http://127.0.0.1:8081/``: each start-up line names the protocol spoken there."""
        extra = [_url(role, where) for role, where in self.extra_listening]
        return [*super().listening, *extra]

    def extra_port(self, role: str) -> int:
        """The TCP port of the ``"simple"`` or ``"web"`` listener (0 when off)."""
        for name, listener in self._extra:
            if name == role:
                for sock in listener.sockets:
                    addr = sock.getsockname()
                    if isinstance(addr, tuple):
                        return int(addr[1])
        return 0

    def close(self) -> None:
        """Stop accepting on every address."""
        super().close()
        extra, self._extra = self._extra, []
        for _, listener in extra:
            close_listener(listener)

    # -- connections -----------------------------------------------------------------------

    def admit(self, channel: Channel) -> bool:
        """Count a connection against ``max_clients_per_address``, or refuse it (an
        ``ERROR`` line, then close) beyond. Called by each connection's
        ``handle_connect``: with ``proxy_protocol`` the address is the client's from the
        PROXY header, known only then.

        Returns:
            False when the connection is refused.
        """
        host = peer_host(channel.peer)
        count = self._per_address.get(host, 0)
        if count >= self.max_clients_per_address:
            self.counters.refused += 1
            channel.push(b"ERROR :Closing Link: too many connections from your address\r\n")
            channel.close_when_done()
            return False
        self._per_address[host] = count + 1
        self._hosts[channel] = host
        return True

    def channel_closed(self, channel: Channel) -> None:
        """Unregister a connection."""
        super().channel_closed(channel)
        host = self._hosts.pop(channel, None)
        if host is not None:
            count = self._per_address.get(host, 0) - 1
            if count > 0:
                self._per_address[host] = count
            else:
                self._per_address.pop(host, None)

    def refuse(self, channel: Channel) -> None:
        """Turn away a connection over ``max_connections`` with an ERROR line."""
        channel.push(b"ERROR :Closing Link: server full\r\n")
        channel.close_when_done()

    def stop_channel(self, channel: Channel) -> None:
        """On shutdown, each client gets ``ERROR`` and is closed."""
        session = getattr(channel, "session", None)
        user = getattr(session, "user", None)
        if user is not None and not user.gone:
            self.network.quit(user, "Server shutting down")
        else:
            channel.close_when_done()

    def extra_timeouts(self) -> tuple[float, ...]:
        """The ping and registration timers, so the sweep runs often enough."""
        policy = self.policy
        return (policy.ping_interval, policy.ping_timeout, policy.registration_timeout)


def _url(role: str, where: str) -> str:
    """The URL of a ``simple`` (telnet) or ``web`` (http) listener at ``where``; a
    Unix-domain socket stays ``unix:/path``."""
    if where.startswith("unix:"):
        return where
    return f"{'http' if role == 'web' else 'telnet'}://{where}/"


def _optional_address(value: Address | str | int | None) -> Address | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, Address) else Address.parse(value)
