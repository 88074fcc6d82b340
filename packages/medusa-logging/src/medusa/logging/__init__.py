"""medusa-logging: loggers that never block the loop (syslog RFC 3164/5424, socket, file,
multi)."""

__version__ = "0.1.0"
