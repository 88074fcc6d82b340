"""medusa-monitor: an authenticated remote Python prompt into the running server, and its
client (``medusa-monitor ADDR``).

The server (:class:`MonitorServer`, entry point ``monitor`` in ``medusa.servers``) runs
each administrator's code in the event loop with the live servers in scope; the client
(:mod:`medusa.monitor.client`, built on :class:`MonitorConnection`) logs in with
HMAC-SHA256 over a random nonce. The wire protocol is in :mod:`medusa.monitor.wire`.
"""

from medusa.monitor.connection import LoginRefusedError, MonitorConnection, Reply
from medusa.monitor.server import MonitorServer

__version__ = "0.1.0"

__all__ = ["LoginRefusedError", "MonitorConnection", "MonitorServer", "Reply"]
