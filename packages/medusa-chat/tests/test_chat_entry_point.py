"""The chat server type is found through the medusa.servers entry point."""

from medusa.chat.server import ChatServer
from medusa.core.plugins import load_server_types


def test_chat_entry_point() -> None:
    assert load_server_types()["chat"] is ChatServer
