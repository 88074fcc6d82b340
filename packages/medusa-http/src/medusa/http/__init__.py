"""medusa-http: an HTTP/1.1 server of handlers over medusa-core.

The public API: :class:`HTTPServer`, :class:`Request`, the :class:`Handler` protocol (with
:data:`NOT_DONE_YET`), the default :class:`FileHandler`, and the handlers that host Python
web applications: :class:`ASGIHandler` (ASGI 3) and :class:`WSGIHandler` (PEP 3333).
"""

from medusa.http.asgi import ASGIHandler
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
from medusa.http.wsgi import WSGIHandler

__version__ = "0.1.0"

__all__ = [
    "NOT_DONE_YET",
    "ASGIHandler",
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
    "WSGIHandler",
]
