"""medusa-chat: Medusa's chat server: an IRC server (RFC 1459/2812) over medusa-core channels."""

from medusa.chat.server import ChatServer

__version__ = "0.1.0"

__all__ = ["ChatServer"]
