"""Checks of a request head made before any of its body is read, sans-IO: the body's
framing, ``Host`` and ``Expect``. Each refusal is a :class:`RequestRejectedError` carrying its
status; the channel answers it and closes.

* Framing (RFC 9112 §6): ``Content-Length`` is ASCII digits only (400 otherwise); a body's
  only supported transfer coding is a lone ``chunked``: another coding before it gets 501
  (RFC 9112 §6.1, §7), a list that does not end with ``chunked`` 400 (its length cannot be
  known, RFC 9112 §6.3).
* ``Host`` (RFC 9112 §3.2): required in HTTP/1.1, valid when present (two fields are refused
  by the channel before they are joined).
* ``Expect`` (RFC 9110 §10.1.1): only ``100-continue``; any other expectation gets 417.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from medusa.http.digits import parse_digits
from medusa.http.target import valid_host

__all__ = ["RequestRejectedError", "body_length", "check_fields"]


class RequestRejectedError(Exception):
    """A request refused while it is read: the status to answer (400, 413, 417, 501, ...)
    and the reason for the log line (``str(exc)``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def body_length(headers: Mapping[str, str]) -> int | None:
    """Return the body's length in bytes from a head's fields (lower-case names): the
    ``Content-Length``, 0 without a body, ``None`` for a chunked body.

    Raises:
        RequestRejectedError: 400 for an invalid ``Content-Length`` or a coding list that does
            not end with ``chunked``; 501 for a coding other than ``chunked``.
    """
    length = headers.get("content-length")
    if length is not None:
        size = parse_digits(length)
        if size is None:
            raise RequestRejectedError(400, "invalid Content-Length")
        return size
    if "transfer-encoding" not in headers:
        return 0
    coding = headers["transfer-encoding"]
    if coding != "chunked" and coding.strip().lower() != "chunked":
        if coding.rpartition(",")[2].strip().lower() != "chunked":
            raise RequestRejectedError(400, "chunked is not the final transfer coding")
        raise RequestRejectedError(501, f"unsupported transfer coding: {coding}")
    return None


def check_fields(headers: Mapping[str, str], version: Callable[[], str]) -> bool:
    """Check ``Host`` and ``Expect``; return True when the client expects ``100 Continue``.

    Args:
        headers: the head's fields, lower-case names.
        version: returns the request's HTTP version (``"1.1"``); called only when there is
            no ``Host`` (it costs a call into the parser).

    Raises:
        RequestRejectedError: 400 for a missing (HTTP/1.1) or invalid ``Host``, 417 for an
            expectation other than ``100-continue``.
    """
    host = headers.get("host")
    if host is None:
        if version() == "1.1":
            raise RequestRejectedError(400, "no Host field")
    elif not valid_host(host):
        raise RequestRejectedError(400, "invalid Host field")
    expect = headers.get("expect")
    if expect is None:
        return False
    if expect.lower() != "100-continue":
        raise RequestRejectedError(417, "unsupported expectation")
    return True
