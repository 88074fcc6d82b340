"""The request-target and the ``Host`` field, checked before a request is built.

Sans-IO: pure functions over strings, tested without sockets. Whatever they refuse is answered
400 (Bad Request) by the channel.

* Request-target forms (RFC 9112 §3.2): origin-form (``/path?query``), absolute-form
  (``http://host:port/path?query``, RFC 9112 §3.2.2: the scheme must be ``http`` or
  ``https``, the authority a valid host without userinfo, RFC 9110 §4.2.4), asterisk-form
  (``*``, for ``OPTIONS`` only, RFC 9112 §3.2.4). Authority-form belongs to ``CONNECT``, which
  is refused before this point; anything else is malformed.
* ``Host`` (RFC 9112 §3.2, RFC 9110 §7.2): an HTTP/1.1 request must carry exactly one, with
  a valid value: ``uri-host [ ":" port ]`` (RFC 3986 §3.2.2, §3.2.3): a registered name of
  unreserved, sub-delims and percent-encoded ASCII characters, an IPv4 address, or an IPv6
  address in brackets; the port at most 5 ASCII digits. An empty value is valid (RFC 9112
  §3.2: a target URI without authority).
"""

from __future__ import annotations

import ipaddress
import re

__all__ = ["KNOWN_HOSTS", "TargetError", "split_target", "valid_host"]


class TargetError(ValueError):
    """A request-target that cannot be used; its message says why (for the 400 page)."""


_HOST = re.compile(
    r"(?:\[([0-9A-Fa-f:.]+|[vV][0-9A-Fa-f]+\.[-A-Za-z0-9._~!$&'()*+,;=:]+)\]"
    r"|(?:[-A-Za-z0-9._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)"
    r"(?::[0-9]{0,5})?"
)

_SCHEME = re.compile(r"[A-Za-z][-A-Za-z0-9+.]*")

KNOWN_HOSTS: set[str] = set()
"""``Host`` values :func:`valid_host` found valid (up to 1,024): the usual few are then
checked with a set lookup."""
_KNOWN_HOSTS_MAX = 1024


def valid_host(value: str) -> bool:
    """Return True when ``value`` is a valid ``Host`` field value (RFC 9110 §7.2): empty,
    or ``uri-host [ ":" port ]`` as described in the module docstring.

    Values found valid are remembered (up to 1,024 of them), so the usual few cost a set
    lookup.
    """
    if value in KNOWN_HOSTS:
        return True
    match = _HOST.fullmatch(value)
    if match is None:
        return False
    literal = match.group(1)
    if literal is not None and literal[0] not in "vV":
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            return False
    if len(KNOWN_HOSTS) >= _KNOWN_HOSTS_MAX:
        KNOWN_HOSTS.clear()
    KNOWN_HOSTS.add(value)
    return True


def split_target(method: str, target: str) -> tuple[str, str, str | None]:
    """Split a request-target into its path, its query and, for the absolute-form, its
    authority (RFC 9112 §3.2).

    Args:
        method: the request method (``"OPTIONS"``: the only one allowed ``*``).
        target: the request-target as received, decoded as Latin-1.

    Returns:
        ``(path, query, authority)``: the path still percent-encoded (``"/"`` when an
        absolute-form target has none), the query without its ``?`` (``""`` when none),
        and the absolute-form's ``host[:port]`` (``None`` for the other forms; RFC 9112
        §3.2.2: it replaces the ``Host`` field).

    Raises:
        TargetError: for ``*`` with another method than OPTIONS, an absolute-form target
            of another scheme than http(s), with userinfo, or with an invalid or empty host,
            and any other form.
    """
    if target.startswith("/"):
        path, _, query = target.partition("?")
        return path, query, None
    if target == "*":
        if method != "OPTIONS":
            raise TargetError("the asterisk-form request-target is only for OPTIONS")
        return "*", "", None
    scheme, sep, rest = target.partition("://")
    if not sep or _SCHEME.fullmatch(scheme) is None:
        raise TargetError("malformed request-target")
    if scheme.lower() not in ("http", "https"):
        raise TargetError(f"unsupported scheme {scheme!r} in the request-target")
    end = len(rest)
    for delimiter in "/?#":
        found = rest.find(delimiter)
        if found != -1 and found < end:
            end = found
    authority, remainder = rest[:end], rest[end:]
    if "@" in authority:
        raise TargetError("userinfo in the request-target")
    if not authority or authority.startswith(":"):
        raise TargetError("no host in the request-target")  # RFC 9110 §4.2.1
    if not valid_host(authority):
        raise TargetError("invalid host in the request-target")
    remainder = remainder.partition("#")[0]
    path, _, query = remainder.partition("?")
    return path or "/", query, authority
