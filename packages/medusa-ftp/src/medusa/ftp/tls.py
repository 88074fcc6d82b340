"""TLS for FTP (RFC 4217): the server's context, used for ``AUTH TLS`` on the control
connection and for ``PROT P`` data connections."""

from __future__ import annotations

import ssl

__all__ = ["server_context"]


def server_context(
    certfile: str, keyfile: str | None = None, *, session_tickets: bool = True
) -> ssl.SSLContext:
    """Return a server-side TLS context that accepts TLS 1.2 and later only.

    Args:
        certfile: PEM file with the certificate chain.
        keyfile: PEM file with the private key (``None``: it is in ``certfile``).
        session_tickets: send TLS 1.3 session tickets after the handshake. Data
            connections turn them off: a client that only uploads never reads them, and
            closing a socket with unread data sends a reset, which destroys the end of the
            upload in flight.

    Raises:
        ssl.SSLError, OSError: when the files cannot be read or do not match.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    if not session_tickets:
        context.num_tickets = 0
    return context
