"""The ftp server type is found through the medusa.servers entry point."""

from medusa.core.plugins import load_server_types
from medusa.ftp.server import FTPServer


def test_ftp_entry_point() -> None:
    assert load_server_types()["ftp"] is FTPServer
