"""The resolver's counters, read by status pages, the monitor and the benchmark."""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["ResolverCounters"]


@dataclass(slots=True)
class ResolverCounters:
    """Running totals since the resolver was made (all plain integers).

    Attributes:
        hits: lookups answered from the cache (answers, negative answers, failures).
        misses: lookups that needed a query (each coalesced waiter counts once here too).
        coalesced: lookups that joined an identical lookup already in flight.
        failures: lookups that ended without an answer (every server timed out or failed).
        negatives: lookups that ended with NXDOMAIN or NODATA from a server.
        queries: messages sent, over UDP and TCP.
        tcp_queries: of those, the ones sent over TCP after a truncated UDP reply.
        timeouts: queries that got no reply in time.
        server_errors: replies with a failure code (SERVFAIL, REFUSED, ...) or that could
            not be used.
        ignored_replies: datagrams dropped because they were not a reply to the query (wrong
            source, ID or question, or malformed): forgeries and stray replies.
    """

    hits: int = 0
    misses: int = 0
    coalesced: int = 0
    failures: int = 0
    negatives: int = 0
    queries: int = 0
    tcp_queries: int = 0
    timeouts: int = 0
    server_errors: int = 0
    ignored_replies: int = 0

    def as_dict(self) -> dict[str, int]:
        """Return the counters by name."""
        return asdict(self)
