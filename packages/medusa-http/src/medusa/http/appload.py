"""Loading a Python web application named on the command line or in ``medusa.toml``
(``--app myproject.asgi:application``), and telling ASGI 3 from WSGI.

The spec is ``MODULE:ATTRIBUTE``: ``MODULE`` a dotted module name imported as ``import``
would (from ``app_dir``, put first on :data:`sys.path`; the current directory when none is
given, as uvicorn and gunicorn do), ``ATTRIBUTE`` a dotted attribute path in it
(``main:app``, ``pkg.web:api.app``), or a factory called with no arguments when it ends with
``()`` (``main:create_app()``).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import os
import sys
from typing import TYPE_CHECKING, Any, Literal

from medusa.core.log import error_logger

if TYPE_CHECKING:
    from medusa.http.handler import Handler

__all__ = ["INTERFACES", "AppLoadError", "app_handler", "detect_interface", "load_app"]


class AppLoadError(ValueError):
    """The application cannot be loaded or its interface told: the message says which part
    of the spec failed and why (``--app main:ap: module 'main' has no attribute 'ap'``)."""


def load_app(spec: str, *, app_dir: str | None = None) -> object:
    """Import and return the application named by ``spec``.

    Args:
        spec: ``MODULE:ATTR``, ``MODULE:ATTR.SUB`` or ``MODULE:FACTORY()``.
        app_dir: a directory put first on :data:`sys.path` (``None``: the current
            directory).

    Returns:
        The attribute, or what the factory returned.

    Raises:
        AppLoadError: for a spec without ``:``, a module that cannot be imported (not
            found, or an error while importing it: the traceback is logged), a missing
            attribute, a factory that raises (logged with its traceback) or a factory that
            is not callable.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise AppLoadError(f"{spec!r}: expected MODULE:ATTRIBUTE, such as main:app")
    factory = attribute.endswith("()")
    if factory:
        attribute = attribute[:-2]
    directory = os.path.abspath(app_dir if app_dir is not None else os.getcwd())
    if app_dir is not None and not os.path.isdir(directory):
        raise AppLoadError(f"app directory {app_dir}: not a directory")
    if directory not in sys.path:
        sys.path.insert(0, directory)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (
            module_name == exc.name or module_name.startswith(exc.name + ".")
        ):
            raise AppLoadError(f"{spec}: no module named {exc.name!r} (in {directory})") from None
        error_logger.error("importing %s failed", module_name, exc_info=True)
        raise AppLoadError(f"{spec}: importing {module_name} failed: {exc}") from None
    except Exception as exc:
        error_logger.error("importing %s failed", module_name, exc_info=True)
        raise AppLoadError(
            f"{spec}: importing {module_name} failed: {type(exc).__name__}: {exc}"
        ) from None
    app: object = module
    path = module_name
    for part in attribute.split("."):
        if not part.isidentifier():
            raise AppLoadError(f"{spec}: {attribute!r} is not a dotted attribute name")
        try:
            app = getattr(app, part)
        except AttributeError:
            raise AppLoadError(f"{spec}: {path!r} has no attribute {part!r}") from None
        path = f"{path}.{part}"
    if factory:
        if not callable(app):
            raise AppLoadError(f"{spec}: {path} is not callable, it cannot be a factory")
        try:
            app = app()
        except Exception as exc:
            error_logger.error("the factory %s() failed", path, exc_info=True)
            raise AppLoadError(f"{spec}: {path}() failed: {type(exc).__name__}: {exc}") from None
    return app


def detect_interface(app: object) -> Literal["asgi", "wsgi"]:
    """Tell whether ``app`` is an ASGI 3 or a WSGI application.

    The rule: the callable is ``app`` itself when it is a function (or a method, or a
    :func:`functools.partial`), else its ``__call__``. It is ASGI 3 when that is a
    coroutine function (``async def``), taking 3 positional parameters (``scope, receive,
    send``) or ``*args``; WSGI (PEP 3333) when it is a plain callable taking 2 (``environ,
    start_response``) or ``*args``. Anything else is refused: a class (ASGI 2's double
    callable; pass an instance), a plain function of 3 parameters that returns an awaitable
    (say ``--interface asgi``), another count. ``--interface`` (``interface`` in
    ``medusa.toml``) skips this guess.

    Raises:
        AppLoadError: when it is neither, saying why.
    """
    if inspect.isclass(app):
        raise AppLoadError(
            f"{app!r} is a class: ASGI 2 (a class per connection) is not supported; "
            "name an ASGI 3 or WSGI callable"
        )
    if not callable(app):
        raise AppLoadError(f"{app!r} is not callable: not an ASGI or WSGI application")
    function = app
    if not (inspect.isfunction(app) or inspect.ismethod(app) or _is_partial(app)):
        function = type(app).__call__.__get__(app)
    count, star = _positional(function)
    if inspect.iscoroutinefunction(function):
        if count == 3 or star:
            return "asgi"
        raise AppLoadError(f"{app!r}: a coroutine function of {count} parameters, not ASGI 3's 3")
    if count == 2 or star:
        return "wsgi"
    hint = " (if it returns an awaitable, say --interface asgi)" if count == 3 else ""
    raise AppLoadError(
        f"{app!r}: a callable of {count} parameters is neither ASGI 3 (async, 3) nor WSGI (2)"
        + hint
    )


def _is_partial(app: object) -> bool:
    return isinstance(app, functools.partial)


def _positional(function: object) -> tuple[int, bool]:
    """The positional parameters ``function`` takes without defaults, and whether it has
    ``*args``."""
    try:
        signature = inspect.signature(function)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0, True  # a builtin without a signature: give it the benefit of the doubt
    count = 0
    star = False
    for parameter in signature.parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL:
            star = True
        elif (
            parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)
            and parameter.default is parameter.empty
        ):
            count += 1
    return count, star


INTERFACES = ("auto", "asgi", "wsgi")
"""The values of ``--interface`` and of the ``app`` handler's ``interface`` option."""


def app_handler(
    spec: str,
    *,
    interface: str = "auto",
    prefix: str = "",
    threads: int = 8,
    app_dir: str | None = None,
    ws_max_size: int | None = None,
    ws_ping_interval: float | None = None,
) -> Handler:
    """Load the application ``spec`` (:func:`load_app`) and return the handler that serves
    it: :class:`~medusa.http.asgi.ASGIHandler` for ASGI 3,
    :class:`~medusa.http.wsgi.WSGIHandler` (``threads`` of them) for WSGI.

    Args:
        spec: ``MODULE:ATTR`` or ``MODULE:FACTORY()``.
        interface: ``"auto"`` (:func:`detect_interface`), ``"asgi"`` or ``"wsgi"``.
        prefix: the URL path it is mounted at (``""``: ``/``).
        threads: WSGI only: the application's threads.
        app_dir: see :func:`load_app`.
        ws_max_size, ws_ping_interval: ASGI only: the WebSocket options of
            :class:`~medusa.http.asgi.ASGIHandler` (None: its defaults).

    Raises:
        AppLoadError: as :func:`load_app` and :func:`detect_interface`, or for an unknown
            ``interface``.
        ValueError: for a prefix not starting with ``/`` or ``threads`` below 1.
    """
    if interface not in INTERFACES:
        raise AppLoadError(f"interface {interface!r}: one of {', '.join(INTERFACES)}")
    app = load_app(spec, app_dir=app_dir)
    if interface == "auto":
        interface = detect_interface(app)
    elif not callable(app):
        raise AppLoadError(f"{spec}: {app!r} is not callable")
    if interface == "asgi":
        from medusa.http.asgi import ASGIHandler

        ws: dict[str, Any] = {"ws_max_size": ws_max_size, "ws_ping_interval": ws_ping_interval}
        options = {key: value for key, value in ws.items() if value is not None}
        return ASGIHandler(app, prefix=prefix, name=spec, **options)  # type: ignore[arg-type]
    from medusa.http.wsgi import WSGIHandler

    return WSGIHandler(app, prefix=prefix, threads=threads)
