"""medusa-monitor: an authenticated remote Python prompt into the running server, and its
client."""

from medusa.monitor.server import MonitorServer

__version__ = "0.1.0"

__all__ = ["MonitorServer"]
