"""Access-log lines in the Common Log Format (the NCSA httpd format, as Apache's
``common``): ``host ident user [time] "request line" status bytes``.

The line is made once per response on the event loop's thread, so the common case is kept
cheap (one f-string): the time part is formatted once per second by the caller
(:func:`time_stamp`), the client's address once per connection (:func:`client_host`), and a
request target of plain printable ASCII without ``"`` or ``\\`` (nearly every one) is
written as it is, without escaping.
"""

from __future__ import annotations

import time
from typing import Any

from medusa.http.request import Request

__all__ = ["client_host", "common_log_line", "time_stamp"]


def time_stamp(second: int) -> str:
    """``" [dd/Mon/yyyy:hh:mm:ss +zzzz] "`` for ``second`` (seconds since the epoch, local
    time, as Apache's ``%t``), with the spaces and the opening quote of the request line
    around it: the middle of a Common Log Format line."""
    return time.strftime(' [%d/%b/%Y:%H:%M:%S %z] "', time.localtime(second))


def client_host(peer: Any) -> str:
    """The host field of a client whose transport reports ``peer``: the address of a TCP
    peer (``(host, port, ...)``), ``-`` for anything else (a Unix-socket client)."""
    if type(peer) is tuple and peer:
        return str(peer[0])
    return "-"


def _quote(text: str) -> str:
    """``text`` with ``\\`` and ``"`` escaped by a backslash and every character outside
    printable ASCII written as ``\\xhh``, ``\\uhhhh`` or ``\\Uhhhhhhhh`` (as Apache does):
    a client cannot forge log lines or fields."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return text
    out: list[str] = []
    for char in text:
        code = ord(char)
        if char in '"\\':
            out.append("\\" + char)
        elif 32 <= code < 127:
            out.append(char)
        elif code < 256:
            out.append(f"\\x{code:02x}")
        elif code < 65536:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


_STATUS_FIELDS = {code: f'" {code} ' for code in range(100, 1000)}
"""``'" 200 '``: the end of the request line and the status field, for every three-digit
status (made once: formatting an int per line costs more than a lookup)."""


def common_log_line(request: Request, host: str, stamp: str) -> str:
    """Return the Common Log Format line of a finished request.

    Args:
        request: the finished request; its method, target, version, user, status and
            ``bytes_out`` (body bytes sent: ``-`` for none) make the line.
        host: the client's address (:func:`client_host`).
        stamp: the time part (:func:`time_stamp`).

    The target and the user are escaped (see :func:`_quote`) so that a client cannot forge
    log lines; the method (an RFC 9110 token: the parser refuses anything else) and the
    version (``1.0`` or ``1.1``) need no escaping. (llhttp refuses control characters and
    bytes above 127 in a request-target, but a handler may have rewritten it: the check
    stays.)
    """
    status = request.status
    status_field = _STATUS_FIELDS.get(status) or f'" {status} '
    method = request.method
    if not method:  # a request that never got a request line
        return f"{host} - -{stamp}-{status_field}{request.bytes_out or '-'}"
    target = request.target
    if not target.isascii() or '"' in target or "\\" in target or not target.isprintable():
        target = _quote(target)
    user = request.user
    return (
        f"{host} - {_quote(user) if user else '-'}{stamp}{method} {target} "
        f"HTTP/{request.version}{status_field}{request.bytes_out or '-'}"
    )
