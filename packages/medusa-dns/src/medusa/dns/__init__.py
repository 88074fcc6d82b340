"""medusa-dns: an asynchronous caching DNS resolver on the running loop (dnspython for the
wire format)."""

__version__ = "0.1.0"
