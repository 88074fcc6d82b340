"""Access-log lines in the Common Log Format (the NCSA httpd format, as Apache's
``common``): ``host ident user [time] "request line" status bytes``."""

from __future__ import annotations

import time

from medusa.http.request import Request

__all__ = ["common_log_line"]

_last_second = -1
_last_stamp = ""


def _clf_time() -> str:
    global _last_second, _last_stamp
    now = int(time.time())
    if now != _last_second:
        _last_stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(now))
        _last_second = now
    return _last_stamp


def _quote(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .encode("ascii", "backslashreplace")
        .decode("ascii")
    )


def common_log_line(request: Request) -> str:
    """Return the Common Log Format line of a finished request.

    The host is the client's address (a Unix-socket client logs as ``-``); ``bytes`` is the
    body bytes sent (``-`` for none); the request line is escaped so that a client cannot
    forge log lines.
    """
    peer = request.peer
    host = peer[0] if isinstance(peer, tuple) and peer else "-"
    user = _quote(request.user) if request.user else "-"
    line = f"{request.method} {request.target} HTTP/{request.version}" if request.method else "-"
    size = str(request.bytes_out) if request.bytes_out else "-"
    return f'{host} - {user} [{_clf_time()}] "{_quote(line)}" {request.status} {size}'
