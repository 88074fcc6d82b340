"""The connection scope of ASGI 3.0 (asgiref's specification, "HTTP & WebSocket"): the keys
an ``http`` and a ``websocket`` scope share, built from a :class:`~medusa.http.request.Request`.

:func:`base_scope` gives an ``http`` scope but for ``extensions`` (which
:mod:`medusa.http.asgi` sets); :mod:`medusa.http.asgiwebsocket` turns it into a
``websocket`` scope (``method`` deleted, ``subprotocols`` added, ``scheme`` turned into
``ws``/``wss``).

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

__all__ = ["ASGI_VERSION", "base_scope", "field_name", "raw_path", "scope_path", "server_address"]

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
        :func:`server_address`), ``state`` and ``method``; and, for the caller to set,
        ``type`` (``"http"``) and ``extensions`` (a WebSocket scope deletes ``method``).
        The keys are in the order of a copied template (cheaper than a new dict).
    """
    target = request.target
    if target[:1] == "/" and "?" not in target and "%" not in target and target.isascii():
        raw = target.encode("ascii")  # the usual origin-form target: its path as it is
        path = target
    else:
        raw = raw_path(request)
        path = scope_path(request, raw)
    channel = request.channel
    connection: ConnectionScope | None = channel.__dict__.get(_CONNECTION)
    if connection is None or connection[0] is not root_path:
        connection = _connection(request, root_path)
    scope = connection[1].copy()  # a copy of a dict of these keys: cheaper than a new dict
    scope["http_version"] = request.version
    scope["method"] = request.method
    scope["path"] = path
    scope["raw_path"] = raw
    query = request.query
    if query:
        scope["query_string"] = query.encode("latin1")
    headers = []
    names = _NAMES
    for name, value in request.headers.items():  # (a loop: cheaper than a comprehension)
        headers.append((names.get(name) or field_name(name), value.encode("latin1")))
    scope["headers"] = headers
    scope["state"] = state.copy() if state else {}
    if request.forwarded is None:
        scope["scheme"] = connection[2]
        scope["client"] = connection[3]
    else:
        scope["scheme"] = request.scheme
        scope["client"] = _client(request.peer)
    scope["server"] = connection[4]
    return scope


def field_name(name: str) -> bytes:
    """The bytes of a request's header field name (lower-case ``str``, as the request
    holds it), remembered for the next requests (looking one up costs about half of
    encoding it): up to 512 names of at most 64 characters, where clients send a few
    dozen usual fields."""
    raw = name.encode("latin1")
    if len(name) <= 64 and len(_NAMES) < 512:
        _NAMES[name] = raw
    return raw


_NAMES: dict[str, bytes] = {}
"""Header field names met so far and their bytes (:func:`field_name`)."""

_CONNECTION = "asgi_connection_scope"
"""Attribute under which a channel keeps what its scopes share (a tuple of the root path,
the template, the scheme, the client and the server), made at its first ASGI request: a
connection's addresses and TLS do not change (a PROXY protocol header, which changes the
peer, comes before any request)."""


Address = tuple[str, int] | None
ConnectionScope = tuple[str, dict[str, Any], str, Address, Address]


def _connection(request: Request, root_path: str) -> ConnectionScope:
    """Make and keep what the scopes of ``request``'s connection share."""
    channel = request.channel
    connection: ConnectionScope = (
        root_path,
        _TEMPLATES.get(root_path) or _template(root_path),
        "https" if channel.http.ssl is not None else "http",
        _client(channel.peer),
        server_address(request),
    )
    channel.__dict__[_CONNECTION] = connection
    return connection


def _client(peer: Any) -> Address:
    """The ``client`` of a scope: ``(host, port)`` of a TCP peer (IPv6's flow and scope
    left out), None for a Unix socket."""
    if type(peer) is tuple and len(peer) >= 2:
        return peer if len(peer) == 2 else (peer[0], peer[1])
    return None


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
