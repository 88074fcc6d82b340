"""The WSGI ``environ`` of a request (PEP 3333 "environ Variables") and ``wsgi.errors``.

What the environ holds:

* ``REQUEST_METHOD``; ``SCRIPT_NAME``, the handler's prefix (``""`` at ``/``);
  ``PATH_INFO``, the rest of the path, percent-decoded and given as the bytes' Latin-1
  text (PEP 3333 "Unicode Issues": ``/caf%C3%A9`` is ``"/cafÃ©"``; a framework re-decodes
  it as UTF-8); ``QUERY_STRING``, still encoded; ``RAW_URI``, the request-target as
  sent (gunicorn's name);
* ``CONTENT_TYPE`` and ``CONTENT_LENGTH`` when the request has them; every other field as
  ``HTTP_<NAME>`` (upper case, ``-`` as ``_``), repeated fields joined by ``", "`` (RFC
  9110 §5.3). Fields whose names hold an underscore are left out, as gunicorn leaves
  them out by default: ``X_Forwarded_For`` and ``X-Forwarded-For`` would both become
  ``HTTP_X_FORWARDED_FOR``, and a client could pass one for the other through a proxy that
  checks only the second;
* ``SERVER_NAME`` and ``SERVER_PORT`` from the ``Host`` field (the port the scheme implies
  when it has none), else the listening socket's address; ``SERVER_PROTOCOL``
  (``"HTTP/1.1"``); ``REMOTE_ADDR`` and ``REMOTE_PORT``, the client (as a trusted proxy gave
  it, by the PROXY protocol or ``Forwarded``/``X-Forwarded-For``);
* ``wsgi.version`` ``(1, 0)``; ``wsgi.url_scheme`` (``https`` under TLS or as a trusted
  proxy said); ``wsgi.input`` (:mod:`medusa.http.wsgiinput`);
  ``wsgi.input_terminated`` true (the input ends with the body, chunked or not);
  ``wsgi.errors`` (:class:`ErrorStream`); ``wsgi.multithread`` true;
  ``wsgi.multiprocess`` true under ``--workers`` above 1; ``wsgi.run_once`` false;
  ``wsgi.file_wrapper`` (:mod:`medusa.http.wsgifile`).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from medusa.http.wsgifile import FileWrapper

if TYPE_CHECKING:
    from medusa.http.request import Request
    from medusa.http.wsgiinput import WSGIInput

__all__ = ["ErrorStream", "build_environ", "constant_keys", "wsgi_logger"]

wsgi_logger = logging.getLogger("medusa.http.wsgi")
"""The logger of WSGI applications' ``wsgi.errors`` lines and failures."""

_CGI_NAMES: dict[str, str | None] = {
    "content-type": "CONTENT_TYPE",
    "content-length": "CONTENT_LENGTH",
}
"""environ keys by lower-case field name, made as met (``None``: left out)."""
_CGI_NAMES_MAX = 1024

_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _environ_name(name: str) -> str | None:
    key = "HTTP_" + name.upper().replace("-", "_") if "_" not in name else None
    if len(_CGI_NAMES) < _CGI_NAMES_MAX:
        _CGI_NAMES[name] = key
    return key


class ErrorStream:
    """``wsgi.errors``: a text file whose lines go to the ``medusa.http.wsgi`` logger at
    ERROR level (one record per line; a line without its end waits for it, per thread,
    until ``flush()``)."""

    __slots__ = ("_local",)

    def __init__(self) -> None:
        self._local = threading.local()

    def write(self, text: str) -> int:
        """Log the complete lines of ``text``, keep the rest; return ``len(text)``."""
        held = getattr(self._local, "held", "")
        lines = (held + text).split("\n")
        self._local.held = lines.pop()
        for line in lines:
            wsgi_logger.error("%s", line.rstrip("\r"))
        return len(text)

    def writelines(self, lines: Any) -> None:
        """Write each of ``lines``."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Log a line without its end, if any."""
        held = getattr(self._local, "held", "")
        if held:
            self._local.held = ""
            wsgi_logger.error("%s", held)

    def writable(self) -> bool:
        """True."""
        return True


def build_environ(
    request: Request,
    script_name: str,
    wsgi_input: WSGIInput | None,
    constants: dict[str, Any],
) -> dict[str, Any]:
    """Return the environ of ``request`` for an application mounted at ``script_name``.

    Args:
        request: the request (its path starts with ``script_name``).
        script_name: the mount prefix, ``""`` or ``"/app"``.
        wsgi_input: the body's stream, or None for a request without a body.
        constants: the keys that are the same for every request of the handler
            (``wsgi.version``, ``wsgi.errors``...), copied in first.
    """
    path = request.path
    if not path.isascii():
        path = path.encode("utf-8", "surrogateescape").decode("latin-1")
    if script_name:
        path = path[len(script_name) :]
    scheme = request.scheme
    headers = request.headers
    environ = {
        **constants,
        "REQUEST_METHOD": request.method,
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path,
        "QUERY_STRING": request.query,
        "RAW_URI": request.target,
        "SERVER_PROTOCOL": "HTTP/1.1" if request.version == "1.1" else "HTTP/1.0",
        "wsgi.url_scheme": scheme,
        "wsgi.input": _EMPTY if wsgi_input is None else wsgi_input,
    }
    names = _CGI_NAMES
    for name, value in headers.items():
        key = names[name] if name in names else _environ_name(name)
        if key is not None:
            environ[key] = value
    peer = request.peer
    if type(peer) is tuple:
        environ["REMOTE_ADDR"] = peer[0]
        environ["REMOTE_PORT"] = str(peer[1])
    else:
        environ["REMOTE_ADDR"] = str(peer or "")
        environ["REMOTE_PORT"] = ""
    host = headers.get("host")
    if host:
        server = _HOSTS.get(host) or _split_host(host)
        environ["SERVER_NAME"] = server[0]
        environ["SERVER_PORT"] = server[1] or _DEFAULT_PORTS[scheme]
    else:
        transport = request.channel.transport
        local = transport.get_extra_info("sockname") if transport is not None else None
        if type(local) is tuple:
            environ["SERVER_NAME"] = local[0]
            environ["SERVER_PORT"] = str(local[1])
        else:
            environ["SERVER_NAME"] = str(local or "")
            environ["SERVER_PORT"] = ""
    return environ


_HOSTS: dict[str, tuple[str, str]] = {}
"""``Host`` values split so far (up to 1,024)."""


def _split_host(host: str) -> tuple[str, str]:
    """``("example.com", "8080")`` from ``example.com:8080`` (``[::1]`` keeps its
    brackets), remembered."""
    name, colon, port = host.rpartition(":")
    split = (host, "") if not colon or host.endswith("]") else (name, port)
    if len(_HOSTS) < 1024:
        _HOSTS[host] = split
    return split


def constant_keys(multiprocess: bool, errors: ErrorStream) -> dict[str, Any]:
    """The environ keys that never change for a handler."""
    return {
        "wsgi.version": (1, 0),
        "wsgi.errors": errors,
        "wsgi.multithread": True,
        "wsgi.multiprocess": multiprocess,
        "wsgi.run_once": False,
        "wsgi.input_terminated": True,
        "wsgi.file_wrapper": FileWrapper,
    }


class _EmptyInput:
    """``wsgi.input`` of a request without a body."""

    __slots__ = ()

    def read(self, size: int | None = -1) -> bytes:
        return b""

    def readline(self, size: int | None = -1) -> bytes:
        return b""

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return []

    def __iter__(self) -> _EmptyInput:
        return self

    def __next__(self) -> bytes:
        raise StopIteration

    def close(self) -> None:
        pass


_EMPTY = _EmptyInput()
