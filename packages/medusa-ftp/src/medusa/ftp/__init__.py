"""medusa-ftp: an FTP server (RFC 959 and its extensions) over medusa-core."""

from medusa.ftp.server import FTPServer

__version__ = "0.1.0"

__all__ = ["FTPServer"]
