"""Access-log lines in the Common Log Format (the NCSA httpd format, as Apache's
``common``): ``host ident user [time] "request line" status bytes``.

The line is made once per response on the event loop's thread, so the common case is kept
cheap: the time part is formatted once per second, and a request line of plain printable
ASCII without ``"`` or ``\\`` (nearly every one) is written as it is, without escaping.
"""

from __future__ import annotations

import time

from medusa.http.request import Request

__all__ = ["common_log_line"]

_last_second = -1
_last_stamp = ""


def _stamp(now: int) -> str:
    """``" [dd/Mon/yyyy:hh:mm:ss +zzzz] "`` for ``now`` (seconds), recomputed when the
    second changes."""
    global _last_second, _last_stamp
    _last_stamp = time.strftime(' [%d/%b/%Y:%H:%M:%S %z] "', time.localtime(now))
    _last_second = now
    return _last_stamp


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


def common_log_line(request: Request) -> str:
    """Return the Common Log Format line of a finished request.

    The host is the client's address (a Unix-socket client logs as ``-``); ``bytes`` is the
    body bytes sent (``-`` for none); the request line and the user are escaped (see
    :func:`_quote`) so that a client cannot forge log lines.
    """
    peer = request.channel.peer
    host = peer[0] if type(peer) is tuple and peer else "-"
    user = request.user
    method = request.method
    if method:
        line = f"{method} {request.target} HTTP/{request.version}"
        if not (line.isascii() and line.isprintable()) or '"' in line or "\\" in line:
            line = _quote(line)
    else:
        line = "-"
    now = int(time.time())
    stamp = _last_stamp if now == _last_second else _stamp(now)
    size = request.bytes_out
    return (
        f'{host} - {_quote(user) if user else "-"}{stamp}{line}" {request.status} '
        f"{size if size else '-'}"
    )
