"""The events of an HTTP/1.x connection (:mod:`medusa.http.connection`) and what follows a
finished response (:class:`Completion`): plain data, no I/O. A :class:`~medusa.http.request.
Request` is itself the event of a request complete without a body."""

from __future__ import annotations

from typing import Final

from medusa.http.request import Request

__all__ = [
    "BODY_END",
    "CONTINUE",
    "PAUSE_PIPELINE",
    "BodyData",
    "BodyStarted",
    "Completion",
    "Event",
    "ParserFailed",
    "Rejected",
]

CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
"""The interim response that lets a client waiting on ``Expect: 100-continue`` send."""


class BodyStarted:
    """Event: the head of ``request``, which has a body (``length`` bytes, ``None`` when
    chunked); ``expect_continue``: an HTTP/1.1 client waits for :data:`CONTINUE`. When
    ``request.waiting`` is set, the body must not be accepted before the requests ahead are
    answered (the adapter pauses reading until then)."""

    __slots__ = ("expect_continue", "length", "request")

    def __init__(self, request: Request, length: int | None, expect_continue: bool) -> None:
        self.request = request
        self.length = length
        self.expect_continue = expect_continue


class BodyData:
    """Event: a piece of the current request body (``data``, de-chunked bytes)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class _BodyEnd:
    """The type of :data:`BODY_END`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "BODY_END"


BODY_END: Final = _BodyEnd()
"""Event: the last byte of the current request body was read."""


class _PausePipeline:
    """The type of :data:`PAUSE_PIPELINE`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "PAUSE_PIPELINE"


PAUSE_PIPELINE: Final = _PausePipeline()
"""Event: :attr:`ConnectionSettings.max_pipeline` requests are queued: stop reading until
:meth:`HTTPConnection.response_complete` says ``resume_pipeline``."""


class Rejected:
    """Event: a request that cannot be read or breaks a limit: answer ``request`` (the one
    whose body was being read, or a new one with an empty method, for the access log) with
    ``status``, then close. ``message`` is for the log line and the error page."""

    __slots__ = ("message", "request", "status")

    def __init__(self, request: Request, status: int, message: str) -> None:
        self.request = request
        self.status = status
        self.message = message


class ParserFailed(Rejected):
    """Event: a parser callback raised ``error`` (a defect here, not the client's): log it
    with its traceback and answer 500."""

    __slots__ = ("error",)

    def __init__(self, request: Request, error: BaseException | None) -> None:
        super().__init__(request, 500, "internal error while reading the request")
        self.error = error


Event = Request | BodyStarted | BodyData | _BodyEnd | Rejected | _PausePipeline
"""What :meth:`HTTPConnection.receive_data` returns: a :class:`Request` is complete (no
body) and ready to dispatch (a request that must wait for an unsafe one ahead has no event:
:meth:`HTTPConnection.response_complete` releases it)."""


class Completion:
    """What the adapter does after :meth:`HTTPConnection.response_complete`.

    Attributes:
        done: the requests whose responses are complete, in order (for the access log).
        close: 0 keep the connection; 1 close once the output is written; 2 close
            gracefully (a lingering close: stop sending, read and discard for a while,
            because a request body may still be arriving, RFC 9112 §9.6).
        dropped: requests that will never be answered (their held output is released).
        current: the requests that became current, in order (their held output goes out
            in that order; all but the last were finished already).
        released: requests that waited for unsafe ones, to dispatch now, in order.
        resume_pipeline: reading paused for the pipeline may resume.
    """

    __slots__ = ("close", "current", "done", "dropped", "released", "resume_pipeline")

    def __init__(self) -> None:
        self.done: list[Request] = []
        self.close = 0
        self.dropped: list[Request] = []
        self.current: list[Request] = []
        self.released: list[Request] = []
        self.resume_pipeline = False
