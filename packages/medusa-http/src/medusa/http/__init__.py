"""medusa-http: an HTTP/1.1 server of handlers over medusa-core.

The public API: :class:`HTTPServer`, :class:`Request`, the :class:`Handler` protocol (with
:data:`NOT_DONE_YET`) and the default :class:`FileHandler`.
"""

from medusa.http.auth import BasicAuthHandler
from medusa.http.files import FileHandler
from medusa.http.handler import NOT_DONE_YET, Handler
from medusa.http.listing import DirectoryListingHandler
from medusa.http.publish import PublishingHandler
from medusa.http.put import PutHandler
from medusa.http.redirect import RedirectHandler, RedirectRule
from medusa.http.request import Request
from medusa.http.server import HTTPServer
from medusa.http.status_page import StatusHandler
from medusa.http.userdir import UserDirHandler
from medusa.http.vhost import VirtualHostHandler

__version__ = "0.1.0"

__all__ = [
    "NOT_DONE_YET",
    "BasicAuthHandler",
    "DirectoryListingHandler",
    "FileHandler",
    "HTTPServer",
    "Handler",
    "PublishingHandler",
    "PutHandler",
    "RedirectHandler",
    "RedirectRule",
    "Request",
    "StatusHandler",
    "UserDirHandler",
    "VirtualHostHandler",
]
