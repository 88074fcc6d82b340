"""The request line (RFC 9112 §3), sans-IO: the method's name, the request-target split into
a decoded path, a query and, for the absolute form, an authority, and the version check.

HTTP/1.0 and HTTP/1.1 are served; any other version that the parser lets through
(``HTTP/2.0``, a version-less ``HTTP/0.9`` line) gets 505 (RFC 9110 §15.6.6). A malformed
target gets 400 (:mod:`medusa.http.target`).
"""

from __future__ import annotations

from urllib.parse import unquote

from medusa.http.headcheck import RequestRejectedError
from medusa.http.target import TargetError, split_target

__all__ = ["METHOD_NAMES", "split_request_line"]

METHOD_NAMES: dict[bytes, str] = {
    m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
}
"""The common methods' names by the bytes the parser gives, made once."""


def split_request_line(
    method: bytes, target: str, version: str
) -> tuple[str, str, str, str | None]:
    """Return ``(method, path, query, authority)`` of a request line: the method's name, the
    target's path percent-decoded (undecodable bytes kept as surrogates), its query, and
    the authority of an absolute-form target (which replaces ``Host``, RFC 9112 §3.2.2),
    else None.

    Args:
        method: the method as the parser gives it (``b"GET"``; a token, checked by it).
        target: the request-target as received, decoded as Latin-1.
        version: the parser's version (``"1.1"``).

    Raises:
        RequestRejectedError: 505 for a version other than 1.0 and 1.1; 400 for a malformed
            target.
    """
    if version != "1.1" and version != "1.0":
        raise RequestRejectedError(505, f"HTTP version {version} is not supported")
    name = METHOD_NAMES.get(method) or method.decode("ascii")
    authority = None
    if target.startswith("/"):
        raw_path, _, query = target.partition("?")
    else:
        try:
            raw_path, query, authority = split_target(name, target)
        except TargetError as exc:
            raise RequestRejectedError(400, str(exc)) from None
    path = unquote(raw_path, errors="surrogateescape") if "%" in raw_path else raw_path
    return name, path, query, authority
