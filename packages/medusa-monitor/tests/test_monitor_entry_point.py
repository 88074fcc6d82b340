"""The monitor server type is found through the medusa.servers entry point."""

from medusa.core.plugins import load_server_types
from medusa.monitor.server import MonitorServer


def test_monitor_entry_point() -> None:
    assert load_server_types()["monitor"] is MonitorServer
