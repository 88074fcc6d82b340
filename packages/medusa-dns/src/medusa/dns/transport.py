"""One DNS exchange with one name server, over UDP (RFC 1035 §4.2.1) or TCP (RFC 1035 §4.2.2,
RFC 7766), on the running event loop.

Each UDP query gets its own socket, bound by the kernel to a random ephemeral port (RFC 5452
§9.2: the source port is the second 16 bits an off-path forger must guess after the ID) and
connected to the server, so that the kernel drops datagrams from other sources; datagrams are
still checked for the server's address, then by :func:`~medusa.dns.message.accept_reply`.
The UDP socket is watched with ``loop.add_reader`` (both the standard loop and uvloop have
it), which costs less per query than a datagram transport.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket

from medusa.dns.counters import ResolverCounters
from medusa.dns.message import Query, Reply, accept_reply

__all__ = ["exchange_tcp", "exchange_udp"]

_MAX_DATAGRAM = 65535


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(host.split("%", 1)[0])


async def exchange_udp(
    query: Query, server: tuple[str, int], timeout: float, counters: ResolverCounters
) -> Reply:
    """Send ``query`` to ``server`` over UDP and return the first datagram accepted as its
    reply.

    Args:
        query: the query (its wire form and what a reply must repeat).
        server: ``(IP address, port)``.
        timeout: seconds to wait for the reply.
        counters: where ignored datagrams are counted.

    Raises:
        TimeoutError: no acceptable reply within ``timeout``.
        OSError: the socket failed (ICMP port unreachable gives ConnectionRefusedError).
    """
    loop = asyncio.get_running_loop()
    ip = _ip(server[0])
    port = server[1]
    waiter: asyncio.Future[Reply] = loop.create_future()
    with socket.socket(
        socket.AF_INET6 if ip.version == 6 else socket.AF_INET, socket.SOCK_DGRAM
    ) as sock:
        sock.setblocking(False)
        sock.connect(server)
        fd = sock.fileno()

        def readable() -> None:
            while not waiter.done():
                try:
                    data, addr = sock.recvfrom(_MAX_DATAGRAM)
                except (BlockingIOError, InterruptedError):
                    return
                except OSError as exc:
                    waiter.set_exception(exc)
                    return
                reply = None
                if addr[1] == port and _ip(addr[0]) == ip:
                    reply = accept_reply(data, query)
                if reply is None:
                    counters.ignored_replies += 1
                else:
                    waiter.set_result(reply)

        loop.add_reader(fd, readable)
        try:
            sock.send(query.wire)
            async with asyncio.timeout(timeout):
                return await waiter
        finally:
            loop.remove_reader(fd)


async def exchange_tcp(
    query: Query, server: tuple[str, int], timeout: float, counters: ResolverCounters
) -> Reply:
    """Send ``query`` to ``server`` over TCP with its two-byte length prefix and return the
    first message accepted as its complete reply.

    Args:
        query: the query (its wire form and what a reply must repeat).
        server: ``(IP address, port)``.
        timeout: seconds for the connection and the reply together.
        counters: where ignored messages are counted.

    Raises:
        TimeoutError: no acceptable reply within ``timeout``.
        OSError: the connection failed or was closed before the reply
            (:class:`asyncio.IncompleteReadError` is turned into ConnectionError).
    """
    async with asyncio.timeout(timeout):
        reader, writer = await asyncio.open_connection(server[0], server[1])
        try:
            writer.write(len(query.wire).to_bytes(2, "big") + query.wire)
            while True:
                try:
                    size = int.from_bytes(await reader.readexactly(2), "big")
                    data = await reader.readexactly(size)
                except asyncio.IncompleteReadError:
                    raise ConnectionError("connection closed before the reply") from None
                reply = accept_reply(data, query)
                if reply is not None and reply.message is not None and not reply.truncated:
                    return reply
                counters.ignored_replies += 1
        finally:
            writer.transport.abort()
