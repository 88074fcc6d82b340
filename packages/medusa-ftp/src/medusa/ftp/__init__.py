"""medusa-ftp: an FTP server (RFC 959 and its extensions, FTPS) over medusa-core.

The server type is :class:`FTPServer` (entry point ``ftp`` in ``medusa.servers``); users
come from :mod:`medusa.ftp.authorizers` (anonymous, virtual) and
:mod:`medusa.ftp.unixusers` (real Unix users through PAM).
"""

from medusa.ftp.accounts import Account, parse_permissions
from medusa.ftp.authorizers import AnonymousAuthorizer, Authorizer, VirtualUser, VirtualUsers
from medusa.ftp.server import FTPServer
from medusa.ftp.session import FTPChannel

__version__ = "0.1.0"

__all__ = [
    "Account",
    "AnonymousAuthorizer",
    "Authorizer",
    "FTPChannel",
    "FTPServer",
    "VirtualUser",
    "VirtualUsers",
    "parse_permissions",
]
