"""The Python ceiling for a hello answer: a bare :class:`asyncio.Protocol` with
httptools' ``HttpRequestParser``, nothing else (no routing, no limits, no logging).

Every request, whatever its method or target, is answered ``200`` with ``Hello, World!``,
``Content-Type: text/plain`` and ``Content-Length`` (RFC 9112 §6.3); the connection stays
open unless the request asked to close it (``should_keep_alive``, RFC 9112 §9.3). A parse
error closes the connection.

Usage (from the repository root, in the ``bench`` environment)::

    python bench/servers/bare_httptools.py --port 8080 [--loop uvloop|asyncio] [--host H]
"""

from __future__ import annotations

import argparse
import asyncio

import httptools

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
RESPONSE_CLOSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n"
    b"Connection: close\r\n\r\nHello, World!"
)


class HelloProtocol(asyncio.Protocol):
    """One connection: feeds the parser, answers each complete request."""

    __slots__ = ("parser", "transport")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_message_complete(self) -> None:
        transport = self.transport
        if transport is None:
            return
        if self.parser.should_keep_alive():
            transport.write(RESPONSE)
        else:
            transport.write(RESPONSE_CLOSE)
            transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


async def serve(host: str, port: int) -> None:
    """Listen on ``host``:``port`` until cancelled."""
    loop = asyncio.get_running_loop()
    server = await loop.create_server(HelloProtocol, host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--loop", choices=("uvloop", "asyncio"), default="uvloop")
    args = parser.parse_args()
    if args.loop == "uvloop":
        import uvloop

        uvloop.run(serve(args.host, args.port))
    else:
        asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
