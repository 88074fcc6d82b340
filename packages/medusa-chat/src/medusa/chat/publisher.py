"""Pipelined PUBLISH for the chat bus (:mod:`medusa.chat.redisbus`): a node's records
leave for Redis as soon as they are made, without waiting for the reply to the previous
PUBLISH.

Redis answers the commands of one connection in the order they came, and delivers one
connection's publishes to the subscribers in that order, so pipelining keeps each node's
records in order (the Redis protocol's pipelining: https://redis.io/docs/latest/develop/
use/pipelining/). Waiting for each reply instead made every record made meanwhile wait a
round trip to Redis, and that round trip includes the time the node itself spends in its
loop iteration before it reads the reply: on a node fanning a message out to hundreds of
local members, a few milliseconds per crossing.

The connection is one of redis-py's (``redis.asyncio``), its own so that nothing else
reads its replies, without ``socket_timeout`` (with one, which redis-py 8 sets by default,
redis-py on Python 3.11 writes each command from a task of its own, one loop iteration
later: after the node's own fan-out); replies are read with a timeout instead.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["MAX_UNANSWERED", "Publisher"]

MAX_UNANSWERED = 256
"""PUBLISHes written but not yet answered, at most; the writer then waits for replies (a
Redis that stops answering holds at most this many payloads in the socket's buffers)."""


class Publisher:
    """PUBLISH to one Redis channel, pipelined, on a connection of its own.

    Args:
        url: the Redis URL (``redis://HOST:PORT/DB``).
        channel: the pub/sub channel published to.
        connect_timeout: seconds to connect.
        reply_timeout: seconds a PUBLISH may wait for its reply before
            :meth:`read_replies` raises :class:`TimeoutError`.
        max_unanswered: PUBLISHes in flight at most (:data:`MAX_UNANSWERED`).

    Attributes:
        unanswered: PUBLISHes written and not yet answered.
    """

    def __init__(
        self,
        url: str,
        channel: str,
        *,
        connect_timeout: float,
        reply_timeout: float,
        max_unanswered: int = MAX_UNANSWERED,
    ) -> None:
        self.url = url
        self.channel = channel
        self.connect_timeout = connect_timeout
        self.reply_timeout = reply_timeout
        self.max_unanswered = max_unanswered
        self.unanswered = 0
        self._connection: Any = None
        self._sent = asyncio.Event()
        self._answered = asyncio.Event()

    async def connect(self) -> None:
        """Open the connection.

        Raises:
            redis.exceptions.RedisError, OSError, TimeoutError: Redis cannot be reached.
        """
        from redis.asyncio import ConnectionPool

        # socket_timeout=None (redis-py 8's default is 5 s): the write then happens in the
        # caller's task, at once; the replies' reads have a timeout of their own.
        pool = ConnectionPool.from_url(
            self.url, socket_connect_timeout=self.connect_timeout, socket_timeout=None
        )
        # a connection of its own, not lent by the pool: closed by aclose
        self._connection = pool.make_connection()  # type: ignore[no-untyped-call]
        await self._connection.connect()

    async def send(self, payload: str) -> None:
        """Write ``PUBLISH channel payload``; returns once it is written (waiting first
        while :attr:`max_unanswered` replies are missing), before Redis answers.

        Raises:
            redis.exceptions.RedisError: the connection is closed.
        """
        while self.unanswered >= self.max_unanswered:
            self._answered.clear()
            await self._answered.wait()
        self.unanswered += 1
        await self._connection.send_command("PUBLISH", self.channel, payload, check_health=False)
        self._sent.set()

    async def read_replies(self) -> None:
        """Read the replies as they come; runs until the connection fails.

        Raises:
            TimeoutError: a PUBLISH got no reply within ``reply_timeout`` seconds.
            redis.exceptions.RedisError: Redis refused a PUBLISH, or the connection
                failed.
        """
        connection = self._connection
        while True:
            if not self.unanswered:
                self._sent.clear()
                await self._sent.wait()
                continue
            reply = await connection.read_response(timeout=self.reply_timeout)
            if reply is None:  # redis-py's answer to a read timeout given per call
                raise TimeoutError(f"no reply to PUBLISH within {self.reply_timeout} s")
            self.unanswered -= 1
            self._answered.set()

    async def drained(self) -> None:
        """Wait until every PUBLISH written has been answered."""
        while self.unanswered:
            self._answered.clear()
            await self._answered.wait()

    async def aclose(self) -> None:
        """Close the connection (what is written but unanswered may be lost)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect()
