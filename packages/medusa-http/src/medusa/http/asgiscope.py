"""The connection scope of ASGI 3.0 (asgiref's specification, "HTTP & WebSocket"): the keys
an ``http`` and a ``websocket`` scope share, built from a :class:`~medusa.http.request.Request`.

:func:`base_scope` leaves out ``type`` and ``method`` (``http`` only) and ``subprotocols``
(``websocket`` only): :mod:`medusa.http.asgi` and :mod:`medusa.http.asgiwebsocket` add
them. ``scheme`` is ``http`` or ``https``; the WebSocket side turns it into ``ws``/``wss``.

:func:`base_scope` also has ``type``, ``method`` and ``extensions`` for the caller to set.

The mount point: ``root_path`` is the prefix the application is mounted at (``""`` at
``/``), and ``path`` is the whole request path, the prefix included, as the request-target
gave it (what uvicorn sends and what Starlette and Django expect: the ASGI specification's
WSGI compatibility section maps ``PATH_INFO`` to ``path`` without ``root_path``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from medusa.http.request import Request

__all__ = ["ASGI_VERSION", "base_scope", "raw_path", "scope_path", "server_address"]

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
"""The ``asgi`` key of every scope (one dict shared by the scopes: not to be changed).
HTTP spec 2.4: ``send`` after the client left raises :class:`OSError` (a subclass), and
``http.disconnect`` follows a finished response; the WebSocket side may set its own."""

_SERVER = "asgi_server_address"
"""Attribute under which a channel keeps its local address once asked (one
``getsockname`` per connection, not per request)."""


def raw_path(request: Request) -> bytes:
    """The path of ``request``'s target as the client sent it (still percent-encoded),
    without the query: ``b"/a%20b"`` for ``GET /a%20b?x=1``. The authority of an
    absolute-form target is left out (RFC 9112 §3.2.2); ``*`` (OPTIONS) stays ``b"*"``."""
    target = request.target
    if target[:1] != "/" and target != "*":
        scheme_end = target.find("://")
        start = target.find("/", scheme_end + 3) if scheme_end != -1 else -1
        target = target[start:] if start != -1 else "/"
    return target.partition("?")[0].encode("latin-1")


def scope_path(request: Request, raw: bytes) -> str:
    """The percent-decoded path of ``request`` as ASGI wants it: UTF-8 decoded (an invalid
    sequence becomes U+FFFD). ``raw`` is :func:`raw_path`'s result."""
    if raw.isascii():
        if b"%" not in raw:
            return raw.decode("ascii")
        return unquote(raw.decode("ascii"), errors="replace")
    # Bytes above 0x7f sent as they are (not percent-encoded): UTF-8, as browsers send.
    return unquote(raw.decode("utf-8", "replace"), errors="replace")


def server_address(request: Request) -> tuple[str, int] | None:
    """The ``(host, port)`` the connection of ``request`` reached (the server's socket
    address, asked once per connection), or None for a Unix socket."""
    channel = request.channel
    address = channel.__dict__.get(_SERVER, channel)
    if address is channel:
        transport = channel.transport
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        address = (sockname[0], sockname[1]) if type(sockname) is tuple else None
        channel.__dict__[_SERVER] = address
    return address  # type: ignore[no-any-return]


def base_scope(request: Request, *, root_path: str, state: dict[str, Any]) -> dict[str, Any]:
    """Return the keys common to ASGI ``http`` and ``websocket`` scopes for ``request``.

    Args:
        request: the request (its head is read; its body may still be arriving).
        root_path: the prefix the application is mounted at (``""`` or ``"/api"``, no
            trailing slash).
        state: the lifespan state (:mod:`medusa.http.lifespan`); the scope gets a shallow
            copy of it, as the specification asks.

    Returns:
        A new dict: ``asgi`` (``{"version": "3.0", "spec_version": "2.4"}``),
        ``http_version`` (``"1.0"`` or ``"1.1"``), ``scheme`` (``"https"`` under TLS or
        from a trusted proxy's ``X-Forwarded-Proto``/``Forwarded``, see
        :mod:`medusa.http.forwarded`; else ``"http"``), ``path`` (percent-decoded UTF-8,
        prefix included), ``raw_path`` (bytes as sent, no query), ``query_string`` (bytes
        after ``?``, still percent-encoded), ``root_path``, ``headers`` (a list of
        ``(name, value)`` byte pairs, names lower-case, repeated fields joined with
        ``", "`` as RFC 9110 §5.3 allows), ``client`` (``(host, port)`` of the client, or
        of the client a trusted proxy named; None on a Unix socket), ``server`` (see
        :func:`server_address`) and ``state``; and, for the caller to set, ``type``
        (``"http"``), ``method`` and ``extensions`` (a WebSocket scope deletes ``method``).
        The keys are in the order of a copied template (cheaper than a new dict).
    """
    target = request.target
    if target[:1] == "/" and "?" not in target and "%" not in target and target.isascii():
        raw = target.encode("ascii")  # the usual origin-form target: its path as it is
        path = target
    else:
        raw = raw_path(request)
        path = scope_path(request, raw)
    scope = _TEMPLATES.get(root_path) or _template(root_path)
    scope = scope.copy()  # a copy of a dict of these keys: cheaper than a new dict
    scope["http_version"] = request.version
    scope["path"] = path
    scope["raw_path"] = raw
    scope["query_string"] = request.query.encode("latin-1")
    scope["headers"] = [
        (name.encode("latin-1"), value.encode("latin-1")) for name, value in request.headers.items()
    ]
    scope["state"] = state.copy() if state else {}
    channel = request.channel
    if request.forwarded is None:
        peer = channel.peer
        if channel.http.ssl is not None:
            scope["scheme"] = "https"
    else:
        peer = request.peer
        scope["scheme"] = request.scheme
    if type(peer) is not tuple or len(peer) != 2:
        peer = (peer[0], peer[1]) if type(peer) is tuple and len(peer) > 2 else None
    scope["client"] = peer
    server = channel.__dict__.get(_SERVER, channel)
    scope["server"] = server_address(request) if server is channel else server
    return scope


_TEMPLATES: dict[str, dict[str, Any]] = {}
"""A scope's keys in order with their usual values, by ``root_path``: copied for each
request (the ``asgi`` dict is shared by them)."""


def _template(root_path: str) -> dict[str, Any]:
    template: dict[str, Any] = {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": "1.1",
        "scheme": "http",
        "method": "GET",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": root_path,
        "headers": [],
        "client": None,
        "server": None,
        "state": {},
        "extensions": {},
    }
    if len(_TEMPLATES) < 64:
        _TEMPLATES[root_path] = template
    return template
