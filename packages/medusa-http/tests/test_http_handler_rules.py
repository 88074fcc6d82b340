"""What a handler's return says (medusa.http.handler), over real sockets with http.client:
a plain ``def`` that returns without answering is an error answered 500 (it used to leave
the client hanging), ``NOT_DONE_YET`` answers later, and ``request.hand_to`` is the public
way for a wrapper to pass a request to another handler."""

from __future__ import annotations

import asyncio
import http.client
import logging
from collections.abc import Iterator

import pytest

from medusa.core.testing import ServerThread
from medusa.http import NOT_DONE_YET, HTTPServer, Request
from medusa.http.handler import Handler, NotDoneYet


class Forgetful:
    """Takes /forget and returns without answering (the defect under test)."""

    def match(self, request: Request) -> bool:
        return request.path == "/forget"

    def handle_request(self, request: Request) -> None:
        request.set_header("X-Seen", "1")


class Later:
    """Takes /later and answers from a timer, after returning NOT_DONE_YET."""

    def match(self, request: Request) -> bool:
        return request.path == "/later"

    def handle_request(self, request: Request) -> NotDoneYet:
        asyncio.get_running_loop().call_soon(request.respond, 200, b"later")
        return NOT_DONE_YET


class AsyncInner:
    """An ``async def`` handler, reached only through :class:`Wrapper`."""

    def match(self, request: Request) -> bool:
        return False

    async def handle_request(self, request: Request) -> None:
        await asyncio.sleep(0)
        request.respond(200, b"inner " + request.path.encode())


class Wrapper:
    """A user's own wrapper: takes /wrapped, adds a field, hands the request on."""

    def __init__(self, inner: Handler) -> None:
        self.inner = inner

    def match(self, request: Request) -> bool:
        return request.path == "/wrapped"

    def handle_request(self, request: Request) -> NotDoneYet:
        request.set_header("X-Wrapped", "yes")
        return request.hand_to(self.inner)


@pytest.fixture(params=["asyncio", "uvloop"])
def port(request: pytest.FixtureRequest) -> Iterator[int]:
    server = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[Forgetful(), Later(), Wrapper(AsyncInner())],
        access_log=None,
    )
    with ServerThread([server], backend=request.param):
        yield server.port


def get(port: int, path: str) -> tuple[int, bytes, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read(), response
    finally:
        conn.close()


def test_returning_without_answering_is_a_logged_500(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="medusa"):
        status, _, _ = get(port, "/forget")
    assert status == 500
    [record] = [r for r in caplog.records if "returned without answering" in r.getMessage()]
    assert "GET /forget" in record.getMessage()
    assert record.exc_info is None  # a defect named in one line, not a traceback
    # The connection's server keeps answering others.
    assert get(port, "/later")[:2] == (200, b"later")


def test_not_done_yet_answers_later(port: int) -> None:
    assert get(port, "/later")[:2] == (200, b"later")


def test_hand_to_runs_another_handler_with_the_same_rules(port: int) -> None:
    status, body, response = get(port, "/wrapped")
    assert (status, body) == (200, b"inner /wrapped")
    assert response.getheader("X-Wrapped") == "yes"
