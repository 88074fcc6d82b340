"""Per-server counters, read by the HTTP status page and the monitor."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

__all__ = ["Counters"]


@dataclass(slots=True)
class Counters:
    """Counters of one server since it started.

    Attributes:
        connections: connections accepted (total, including refused ones).
        refused: connections refused because the server was at ``max_connections`` or
            shutting down.
        active: channels open now.
        requests: requests (or commands) handled.
        bytes_in: bytes received from clients.
        bytes_out: bytes sent to clients (sendfile included).
        errors: protocol errors and handler failures.
        started: wall-clock start time (seconds since the epoch).
    """

    connections: int = 0
    refused: int = 0
    active: int = 0
    requests: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    errors: int = 0
    started: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, float]:
        """Return the counters as a plain dict (for JSON)."""
        return asdict(self)
