"""The chat network's bus on Redis (redis-py's ``redis.asyncio``, the extra
``medusa-chat[redis]``): the I/O behind :class:`~medusa.chat.bus.Bus`.

Keys, under ``medusa-chat:<network name>:``:

* ``nick:<case-folded nick>``: ``<node>/<serial>``, the local user holding the nick,
  set by a Lua script only when absent (or already that user's), so that two nodes
  claiming one nick at once give it to exactly one; ``nicks:<node>``, the set of a node's
  nick keys, so that the others can free them when it is lost.
* ``node:<node>``: the node's heartbeat, its server name with a time to live of
  ``heartbeat_timeout`` seconds, renewed every third of it. A node whose key is gone is
  lost for the others: its users quit (``node lost``) and its nicks are freed.
* ``records`` (a pub/sub channel): every node publishes its records
  (:mod:`medusa.chat.replica`) there, as the JSON array ``[node, [record, ...]]``: the
  records of one loop iteration in one PUBLISH, written at once without waiting for the
  previous PUBLISH's reply (:mod:`medusa.chat.publisher`, on a connection of its own).
  Redis delivers one connection's publishes in order, so each node's records reach the
  others in the order they were made.

When Redis cannot be reached, the node keeps its users connected and tells them with a
NOTICE; records are dropped and nick claims answered 437 meanwhile. When it is back (the
same server, or one restarted empty), the node claims its users' nicks again (a user whose
nick another node took meanwhile quits with ``Nick collision``), publishes ``hello`` and
its ``sync`` (every node answers ``hello`` with its own), so nothing a live node holds is
lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
from typing import TYPE_CHECKING, Any

from medusa.chat import replica
from medusa.chat.bus import CLAIMED, TAKEN, UNREACHABLE, Record
from medusa.chat.casemap import irc_lower
from medusa.chat.publisher import Publisher
from medusa.core.log import error_logger

if TYPE_CHECKING:
    from medusa.chat.network import Network
    from medusa.chat.user import User

__all__ = ["RedisBus", "check_bus_url", "require_redis"]

_INSTALL = "pip install 'medusa-chat[redis]'"

# KEYS: nick key, the node's nick set; ARGV: owner. 1 when the nick is (now) the owner's.
_CLAIM = """
local held = redis.call('GET', KEYS[1])
if held == false then
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('SADD', KEYS[2], KEYS[1])
  return 1
end
if held == ARGV[1] then return 1 end
return 0
"""

# KEYS: nick key, the node's nick set; ARGV: owner.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[2], KEYS[1])
return 0
"""

# KEYS: the lost node's nick set; ARGV: 'node/' (the owners' prefix).
_FORGET = """
for _, key in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local held = redis.call('GET', key)
  if held and string.sub(held, 1, string.len(ARGV[1])) == ARGV[1] then
    redis.call('DEL', key)
  end
end
redis.call('DEL', KEYS[1])
return 0
"""

_DOWN = "The network's bus (Redis) is unreachable: users of other servers cannot be reached"
_BACK = "The network's bus (Redis) is back: users of other servers can be reached again"


def require_redis() -> None:
    """Check that redis-py is importable.

    Raises:
        ImportError: naming the extra to install (``name`` is ``"redis"``).
    """
    try:
        import redis.asyncio  # noqa: F401
    except ImportError:
        raise ImportError(f"the bus option needs redis-py: {_INSTALL}", name="redis") from None


def check_bus_url(value: Any) -> str | None:
    """The reason ``value`` is not a Redis URL (``redis://HOST:PORT/DB``, ``rediss://``,
    ``unix:///path``), else None (an :class:`~medusa.core.options.Option` check)."""
    if not isinstance(value, str) or not value.startswith(("redis://", "rediss://", "unix://")):
        return "not a Redis URL (redis://HOST:PORT/DB)"
    return None


class RedisBus:
    """One node's link to the network's Redis.

    Args:
        network: the local network (its :attr:`~medusa.chat.network.Network.bus` is set to
            this bus by :meth:`start`).
        url: the Redis URL (``redis://HOST:PORT/DB``).
        heartbeat_timeout: seconds without a heartbeat after which a node is lost (its
            heartbeat is renewed, and the others' checked, every third of it).

    Attributes:
        node: this node's id: host name, process id and a random part.
        up: True while Redis answers.
    """

    def __init__(self, network: Network, url: str, *, heartbeat_timeout: float = 10.0) -> None:
        self.network = network
        self.url = url
        self.heartbeat_timeout = heartbeat_timeout
        self.node = f"{socket.gethostname()}/{os.getpid()}/{secrets.token_hex(4)}"
        self.up = False
        self.prefix = f"medusa-chat:{network.config.network_name}:"
        self.channel = self.prefix + "records"
        self._redis: Any = None
        self._scripts: dict[str, Any] = {}
        self._pending: list[Record] = []
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._commands: asyncio.Queue[tuple[str, User, str]] = asyncio.Queue()
        # Nick releases asked and done: records wait for the releases asked with them, so
        # that a nick shown free elsewhere (NICK, QUIT) is free in Redis by then.
        self._releases_asked = 0
        self._releases_done = 0
        self._released = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._publisher: Publisher | None = None
        self._closing = False
        self._was_up = False

    # -- the Bus interface -----------------------------------------------------------------

    def publish(self, record: Record) -> None:
        """Queue ``record`` for the next PUBLISH (dropped while Redis is unreachable: the
        ``sync`` made on its return covers the state)."""
        if self.up:
            self._pending.append(record)
            self._wake.set()

    def claim_nick(self, user: User, nick: str) -> None:
        """Claim ``nick`` for ``user`` (claims and releases run in order, one at a time);
        the answer goes to :meth:`~medusa.chat.network.Network.nick_claimed`."""
        if not self.up:
            asyncio.get_running_loop().call_soon(self._answer, user, nick, UNREACHABLE)
            return
        self._commands.put_nowait(("claim", user, nick))

    def release_nick(self, user: User, key: str) -> None:
        """Free ``key`` if ``user`` holds it."""
        if self.up:
            self._releases_asked += 1
            self._commands.put_nowait(("release", user, key))

    # -- life cycle ------------------------------------------------------------------------

    async def start(self, wait: float = 0.0) -> None:
        """Become the network's bus and connect in the background (a Redis that cannot be
        reached is retried until :meth:`close`, the users being told meanwhile).

        Args:
            wait: seconds to wait for the first connection (then going on anyway).
        """
        require_redis()
        self.network.bus = self
        self._task = asyncio.create_task(self._run(), name="chat bus")
        deadline = asyncio.get_running_loop().time() + wait
        while not self.up and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)

    async def close(self, timeout: float = 2.0) -> None:
        """Publish what is queued (the users' QUITs of a shutdown), free this node's nicks
        and heartbeat, and disconnect; waits ``timeout`` seconds at most."""
        if self.up and self._pending:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), timeout)
        if self.up and self._publisher is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._publisher.drained(), timeout)
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=timeout)
        redis = self._redis
        if redis is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._forget(self.node), timeout)
                await asyncio.wait_for(redis.delete(self._key("node", self.node)), timeout)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(redis.aclose(), timeout)
        self.up = False
        if self.network.bus is self:
            self.network.bus = None

    # -- the connection ----------------------------------------------------------------------

    def _key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    def _owner(self, user: User) -> str:
        return f"{self.node}/{user.serial}"

    async def _run(self) -> None:
        from redis.asyncio import Redis
        from redis.exceptions import RedisError

        retry = 0.1
        while not self._closing:
            tasks: list[asyncio.Task[None]] = []
            try:
                if self._redis is None:
                    self._redis = Redis.from_url(
                        self.url,
                        socket_connect_timeout=max(0.5, self.heartbeat_timeout / 3),
                        socket_timeout=max(1.0, self.heartbeat_timeout / 2),
                    )
                    for name, text in (("claim", _CLAIM), ("release", _RELEASE)):
                        self._scripts[name] = self._redis.register_script(text)
                    self._scripts["forget"] = self._redis.register_script(_FORGET)
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                await pubsub.subscribe(self.channel)
                publisher = self._publisher = Publisher(
                    self.url,
                    self.channel,
                    connect_timeout=max(0.5, self.heartbeat_timeout / 3),
                    reply_timeout=max(1.0, self.heartbeat_timeout / 2),
                )
                await publisher.connect()
                await self._connected()
                retry = 0.1
                tasks = [
                    asyncio.create_task(self._listen(pubsub)),
                    asyncio.create_task(self._write(publisher)),
                    asyncio.create_task(publisher.read_replies()),
                    asyncio.create_task(self._heartbeat()),
                    asyncio.create_task(self._run_commands()),
                ]
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
                for task in done:
                    task.result()  # raises the error that ended it
            except (TimeoutError, RedisError, OSError) as exc:
                self._disconnected(exc)
            except Exception as exc:  # a bug: logged, and the bus starts again
                error_logger.exception("chat: the bus failed")
                self._disconnected(exc)
            finally:
                for task in tasks:
                    task.cancel()
                if tasks:
                    await asyncio.wait(tasks, timeout=1.0)
                await self._close_publisher()
            if not self._closing:
                await asyncio.sleep(retry)
                retry = min(retry * 2, 1.0)

    async def _connected(self) -> None:
        """Redis answers (at start or again): heartbeat, nicks claimed again, ``hello``
        and this node's ``sync``."""
        redis = self._redis
        await redis.set(
            self._key("node", self.node),
            self.network.config.server_name,
            px=int(self.heartbeat_timeout * 1000),
        )
        await self._claim_local()
        self.up = True
        self._pending = [["hello"], replica.snapshot(self.network)]
        self._wake.set()
        if self._was_up:
            error_logger.warning("chat: the bus %s is back", self.url)
            self._tell_users(_BACK)
        else:
            error_logger.info("chat: node %s on the bus %s", self.node, self.url)
        self._was_up = True

    def _disconnected(self, exc: BaseException) -> None:
        """Redis stopped answering: drop what waits, answer the claims waiting, tell the
        users (once)."""
        if self._closing:
            return
        was_up, self.up = self.up, False
        self._pending = []
        while not self._commands.empty():
            kind, user, name = self._commands.get_nowait()
            if kind == "claim":
                self._answer(user, name, UNREACHABLE)
        self._releases_done = self._releases_asked
        self._released.set()
        if was_up or not self._was_up:
            error_logger.warning("chat: the bus %s is unreachable: %s", self.url, exc)
        if was_up:
            self._tell_users(_DOWN)
        self._was_up = self._was_up or was_up

    def _tell_users(self, text: str) -> None:
        network = self.network
        for user in list(network.users.values()):
            if not user.node and user.registered and not user.gone:
                network.notice(user, text)

    async def _claim_local(self) -> None:
        """Claim the nicks of this node's users again (Redis may have restarted empty, or
        the others may have found this node lost); a nick held by another node's user
        meanwhile makes the local user quit (``Nick collision``)."""
        network = self.network
        for user in list(network.users.values()):
            if user.node or user.gone or not user.key:
                continue
            if not await self._call_claim(user, user.key):
                error_logger.warning("chat: %s lost the nick %s to another node", user, user.nick)
                network.quit(user, "Nick collision")

    async def _call_claim(self, user: User, key: str) -> bool:
        keys = [self._key("nick", key), self._key("nicks", self.node)]
        return bool(await self._scripts["claim"](keys=keys, args=[self._owner(user)]))

    async def _forget(self, node: str) -> None:
        await self._scripts["forget"](keys=[self._key("nicks", node)], args=[node + "/"])

    def _answer(self, user: User, nick: str, result: str) -> None:
        self.network.nick_claimed(user, nick, result)

    async def _run_commands(self) -> None:
        """Nick claims and releases, in the order they were asked."""
        while True:
            kind, user, name = await self._commands.get()
            if kind == "claim":
                claimed = await self._call_claim(user, irc_lower(name))
                self._answer(user, name, CLAIMED if claimed else TAKEN)
            else:
                key = name
                keys = [self._key("nick", key), self._key("nicks", self.node)]
                await self._scripts["release"](keys=keys, args=[self._owner(user)])
                self._releases_done += 1
                self._released.set()

    async def _write(self, publisher: Publisher) -> None:
        """Publish the records queued, all of them at once, as soon as they are queued
        (pipelined: the previous PUBLISH's reply is not waited for), but after the nick
        releases asked before them (a NICK or QUIT record frees a nick for the others)."""
        while True:
            if not self._pending:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
            # The records queued so far go once the nick releases asked so far are done
            # (a record and its release are asked in one call, in either order).
            count, asked = len(self._pending), self._releases_asked
            while self._releases_done < asked:
                self._released.clear()
                await self._released.wait()
            records = self._pending[:count]
            del self._pending[:count]
            payload = json.dumps([self.node, records], separators=(",", ":"))
            await publisher.send(payload)

    async def _close_publisher(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(publisher.aclose(), 1.0)

    async def _listen(self, pubsub: Any) -> None:
        """Apply the other nodes' records as they come."""
        network = self.network
        try:
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                try:
                    node, records = json.loads(message["data"])
                except (ValueError, TypeError) as exc:
                    error_logger.warning("chat: bus message not understood: %s", exc)
                    continue
                if node == self.node:
                    continue
                for record in records:
                    try:
                        replica.apply(network, node, record)
                    except (ValueError, TypeError, IndexError, KeyError) as exc:
                        error_logger.warning("chat: bus record from %s refused: %r", node, exc)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(pubsub.aclose(), 1.0)

    async def _heartbeat(self) -> None:
        """Renew this node's heartbeat and look for lost nodes, every third of the
        timeout. A heartbeat found missing (this node was found lost, or Redis restarted
        empty) makes the node claim its nicks and publish its state again."""
        redis = self._redis
        interval = self.heartbeat_timeout / 3
        ttl = int(self.heartbeat_timeout * 1000)
        network = self.network
        while True:
            await asyncio.sleep(interval)
            key = self._key("node", self.node)
            previous = await redis.set(key, network.config.server_name, px=ttl, get=True)
            if previous is None:
                error_logger.warning("chat: node %s was found lost: joining again", self.node)
                await self._claim_local()
                self.publish(["hello"])
                self.publish(replica.snapshot(network))
            nodes = list(network.nodes)
            if not nodes:
                continue
            pipe = redis.pipeline(transaction=False)
            for node in nodes:
                pipe.exists(self._key("node", node))
            for node, exists in zip(nodes, await pipe.execute(), strict=True):
                if not exists and node in network.nodes:
                    error_logger.warning("chat: node %s lost (no heartbeat)", node)
                    await self._forget(node)  # its nicks are free when its users quit
                    replica.lose_node(network, node)
