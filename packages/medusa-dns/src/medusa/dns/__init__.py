"""medusa-dns: an asynchronous caching DNS resolver on the running loop (dnspython for the
wire format); medusa-core's ``Resolver``, entry point ``dns`` in ``medusa.resolvers``."""

from medusa.dns.counters import ResolverCounters
from medusa.dns.resolver import DNSResolver

__all__ = ["DNSResolver", "ResolverCounters"]

__version__ = "0.1.0"
