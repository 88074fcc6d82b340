"""The sans-IO HTTP connection (medusa.http.connection) driven in memory, as h11's tests
drive theirs: bytes in, events out; responses in, bytes out. No sockets, no event loop:
every rule of the module's docstring (framing, persistence, pipelining order, limits) has
a case here; the socket tests elsewhere are the end-to-end proof."""

from __future__ import annotations

from typing import Any

import pytest

from medusa.http import HTTPServer
from medusa.http.connection import HTTPConnection
from medusa.http.events import (
    BODY_END,
    CONTINUE,
    PAUSE_PIPELINE,
    BodyData,
    BodyStarted,
    Completion,
    Rejected,
)
from medusa.http.request import Request


class MemoryChannel:
    """The adapter's side of a connection, in memory: what responses write lands in
    :attr:`out`; a completion's decisions are applied as the channel applies them."""

    pending = 0
    peer = ("127.0.0.1", 1)

    def __init__(self, **settings: Any) -> None:
        self.http = HTTPServer(("127.0.0.1", 0), access_log=None, **settings)
        self.connection = HTTPConnection(self.http, self)
        self.out = bytearray()
        self.close = 0
        self.released: list[Request] = []
        self.completions: list[Completion | None] = []

    def receive(self, data: bytes) -> list[Any]:
        return self.connection.receive_data(data, 0.0)

    def push(self, data: bytes) -> None:
        self.out += data

    def push_with_producer(self, producer: Any) -> None:
        while data := producer.more():
            self.out += data

    def response_finished(self, request: Request) -> None:
        completion = self.connection.response_complete(request)
        self.completions.append(completion)
        if completion is None:
            return
        for current in completion.current:
            current.release_output()
        self.close = completion.close
        self.released += completion.released

    def take(self) -> bytes:
        data = bytes(self.out)
        self.out.clear()
        return data


def requests_of(events: list[Any]) -> list[Request]:
    return [e for e in events if isinstance(e, Request)]


# -- framing and persistence -------------------------------------------------------------


def test_a_get_is_one_request_event_and_its_response_is_framed_by_length() -> None:
    channel = MemoryChannel()
    [request] = channel.receive(b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Two: 2\r\n\r\n")
    assert isinstance(request, Request)
    assert (request.method, request.path, request.query, request.version) == (
        "GET",
        "/a",
        "x=1",
        "1.1",
    )
    assert request.headers == {"host": "h", "x-two": "2"}
    assert request.keep_alive
    assert request.current
    request.respond(200, b"hello", content_type="text/plain")
    out = channel.take()
    assert out.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello" in out
    assert b"Connection:" not in out
    assert channel.completions == [None]  # the common case: nothing else to do
    assert channel.connection.requests == []
    [again] = channel.receive(b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n")
    assert again.path == "/b"


def test_connection_close_ends_reading_and_says_so() -> None:
    channel = MemoryChannel()
    events = channel.receive(
        b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\nGET /b HTTP/1.1\r\n\r\n"
    )
    [request] = events
    assert not request.keep_alive
    assert channel.connection.reading_done
    request.respond(200, b"x")
    assert b"Connection: close\r\n" in channel.take()
    assert channel.close == 1
    assert channel.receive(b"GET /c HTTP/1.1\r\nHost: h\r\n\r\n") == []


def test_http_1_0_persists_only_when_asked() -> None:
    channel = MemoryChannel()
    [request] = channel.receive(b"GET / HTTP/1.0\r\n\r\n")
    assert not request.keep_alive
    channel = MemoryChannel()
    [request] = channel.receive(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert request.keep_alive
    request.respond(200, b"x")
    assert b"Connection: keep-alive\r\n" in channel.take()


@pytest.mark.parametrize(
    ("head", "version", "keep_alive"),
    [
        (b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", "1.1", True),
        (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\n\r\n", "1.1", True),
        (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", "1.1", False),
        (b"GET / HTTP/1.0\r\n\r\n", "1.0", False),
        (b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "1.0", True),
        (b"GET / HTTP/1.0\r\nHost: h\r\nConnection: Keep-Alive, x\r\n\r\n", "1.0", True),
        (b"POST / HTTP/1.0\r\nContent-Length: 1\r\n\r\nx", "1.0", False),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx", "1.1", True),
    ],
)
def test_the_version_is_the_request_lines(head: bytes, version: str, keep_alive: bool) -> None:
    """The version is read from the parser only when the keep-alive rule and the
    Connection field leave it open (a persistent request without Connection is 1.1)."""
    channel = MemoryChannel()
    events = channel.receive(head)
    [request] = requests_of(events) or [e.request for e in events if isinstance(e, BodyStarted)]
    assert (request.version, request.keep_alive) == (version, keep_alive)


def test_other_versions_are_not_taken_for_1_1() -> None:
    """``HTTP/2.0`` (which llhttp accepts) persists only with ``Connection: keep-alive``,
    as 1.0 does: it is never taken for 1.1, and is refused with 505."""
    for head in (
        b"GET / HTTP/2.0\r\nHost: h\r\n\r\n",
        b"GET / HTTP/2.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n",
    ):
        channel = MemoryChannel()
        assert rejected(channel.receive(head))[0] == 505


def test_unknown_length_is_chunked_in_1_1_and_ends_with_a_close_in_1_0() -> None:
    channel = MemoryChannel()
    [request] = channel.receive(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    request.push(b"abc")
    request.push(b"de")
    request.done()
    out = channel.take()
    assert b"Transfer-Encoding: chunked\r\n" in out
    assert out.endswith(b"\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
    channel = MemoryChannel()
    [request] = channel.receive(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    request.push(b"abc")
    request.done()
    out = channel.take()
    assert b"Connection: close\r\n" in out
    assert b"chunked" not in out
    assert out.endswith(b"\r\n\r\nabc")
    assert channel.close == 1


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses_have_no_length(status: int) -> None:
    channel = MemoryChannel()
    [request] = channel.receive(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    request.respond(status, b"ignored")
    out = channel.take()
    assert b"Content-Length" not in out
    assert out.endswith(b"\r\n\r\n")


def test_head_gets_the_length_without_the_body() -> None:
    channel = MemoryChannel()
    [request] = channel.receive(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    request.respond(200, b"12345")
    out = channel.take()
    assert b"Content-Length: 5\r\n\r\n" in out
    assert out.endswith(b"\r\n\r\n")


# -- bodies ------------------------------------------------------------------------------


def test_a_chunked_body_is_announced_then_delivered_de_chunked() -> None:
    channel = MemoryChannel()
    events = channel.receive(
        b"POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n"
    )
    started, data = events
    assert isinstance(started, BodyStarted)
    assert started.length is None
    assert isinstance(data, BodyData)
    assert data.data == b"abc"
    assert channel.connection.linger  # an answer now would leave body bytes unread
    events = channel.receive(b"2\r\nde\r\n0\r\n\r\n")
    assert [e.data for e in events if isinstance(e, BodyData)] == [b"de"]
    assert events[-1] is BODY_END


def test_a_length_body_across_reads_and_expect_continue() -> None:
    channel = MemoryChannel()
    [started] = channel.receive(
        b"PUT /u HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
    )
    assert isinstance(started, BodyStarted)
    assert started.length == 4
    assert started.expect_continue
    assert CONTINUE == b"HTTP/1.1 100 Continue\r\n\r\n"
    (first,) = channel.receive(b"ab")
    assert first.data == b"ab"
    last, end = channel.receive(b"cd")
    assert last.data == b"cd"
    assert end is BODY_END


def test_transfer_encoding_in_http_1_0_closes_after_the_request() -> None:
    channel = MemoryChannel()
    started, *_ = channel.receive(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert isinstance(started, BodyStarted)
    assert not started.request.keep_alive


def test_an_answer_before_the_body_is_read_closes_gracefully() -> None:
    channel = MemoryChannel()
    [started] = channel.receive(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n")
    request = started.request
    request.keep_alive = False  # as medusa.http.body does until the body is read
    request.error(413)
    assert channel.close == 2  # lingering close (RFC 9112 §9.6)
    assert channel.receive(b"x" * 100) == []


# -- pipelining --------------------------------------------------------------------------


def test_pipelined_responses_leave_in_request_order() -> None:
    channel = MemoryChannel()
    first, second = channel.receive(
        b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    assert first.current
    assert not second.current
    second.respond(200, b"two")
    assert channel.take() == b""  # held until its turn
    first.respond(200, b"one")
    out = channel.take()
    assert out.index(b"one") < out.index(b"two")
    assert channel.connection.requests == []


def test_a_request_after_an_unsafe_one_waits_until_it_is_answered() -> None:
    channel = MemoryChannel()
    events = channel.receive(
        b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx"
        b"GET /g HTTP/1.1\r\nHost: h\r\n\r\n"
    )
    assert [type(e) for e in events] == [BodyStarted, BodyData, type(BODY_END)]
    waiting = channel.connection.requests[1]
    assert waiting.waiting
    assert waiting.path == "/g"
    events[0].request.respond(200, b"done")
    assert channel.released == [waiting]
    assert not waiting.waiting


def test_safe_requests_do_not_wait_for_each_other() -> None:
    channel = MemoryChannel()
    events = channel.receive(b"".join(b"GET /%d HTTP/1.1\r\nHost: h\r\n\r\n" % n for n in range(3)))
    assert len(requests_of(events)) == 3


def test_the_pipeline_pauses_at_its_limit_and_resumes_below_half() -> None:
    channel = MemoryChannel(max_pipeline=4)
    events = channel.receive(b"".join(b"GET /%d HTTP/1.1\r\nHost: h\r\n\r\n" % n for n in range(4)))
    assert events[-1] is PAUSE_PIPELINE
    requests = requests_of(events)
    requests[0].respond(200, b"0")
    assert channel.completions[-1] is not None
    assert not channel.completions[-1].resume_pipeline  # 3 left: not below half of 4
    requests[1].respond(200, b"1")
    assert channel.completions[-1] is not None
    assert not channel.completions[-1].resume_pipeline  # 2 left: half, not below
    requests[2].respond(200, b"2")
    assert channel.completions[-1] is not None
    assert channel.completions[-1].resume_pipeline


# -- limits ------------------------------------------------------------------------------


def rejected(events: list[Any]) -> tuple[int, str]:
    [event] = [e for e in events if isinstance(e, Rejected)]
    return event.status, event.message


def test_a_long_target_is_414() -> None:
    channel = MemoryChannel(max_request_line=64)
    status, _ = rejected(channel.receive(b"GET /" + b"a" * 100 + b" HTTP/1.1\r\n\r\n"))
    assert status == 414
    assert channel.connection.reading_done


def test_too_many_fields_is_431_in_one_read_and_across_reads() -> None:
    fields = b"".join(b"X-%d: v\r\n" % n for n in range(11))
    channel = MemoryChannel(max_header_fields=10)
    assert rejected(channel.receive(b"GET / HTTP/1.1\r\nHost: h\r\n" + fields + b"\r\n"))[0] == 431
    channel = MemoryChannel(max_header_fields=10)
    assert channel.receive(b"GET / HTTP/1.1\r\nHost: h\r\n" + fields[:40]) == []
    assert rejected(channel.receive(fields[40:] + b"\r\n"))[0] == 431


def test_repeated_fields_count_against_the_limit() -> None:
    channel = MemoryChannel(max_header_fields=3)
    head = b"GET / HTTP/1.1\r\nHost: h\r\n" + b"X: 1\r\n" * 3 + b"\r\n"
    assert rejected(channel.receive(head))[0] == 431


def test_a_large_header_block_is_431() -> None:
    channel = MemoryChannel(max_header_size=1024)
    head = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"v" * 2000 + b"\r\n\r\n"
    assert rejected(channel.receive(head))[0] == 431
    channel = MemoryChannel(max_header_size=1024)
    exact = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"v" * 900 + b"\r\n\r\n"
    assert len(requests_of(channel.receive(exact))) == 1


def test_a_head_growing_across_reads_is_bounded() -> None:
    channel = MemoryChannel(max_request_line=100, max_header_size=200)
    assert channel.receive(b"GET / HTTP/1.1\r\nHost: h\r\nX-Slow: ") == []
    assert rejected(channel.receive(b"v" * 400))[0] == 431
    channel = MemoryChannel(max_request_line=100, max_header_size=200)
    assert channel.receive(b"GET /") == []
    assert rejected(channel.receive(b"a" * 400))[0] in (414, 431)


@pytest.mark.parametrize(
    ("head", "status"),
    [
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nExpect: magic\r\n\r\n", 417),
        (b"\x00\x01garbage\r\n\r\n", 400),
    ],
)
def test_bad_heads_are_rejected_with_their_status(head: bytes, status: int) -> None:
    channel = MemoryChannel()
    events = channel.receive(head)
    assert rejected(events)[0] == status
    event = next(e for e in events if isinstance(e, Rejected))
    event.request.error(event.status, event.message)
    assert channel.take().startswith(b"HTTP/1.1 %d " % status)
    assert channel.close == 2  # what follows is read and discarded for a while


def test_an_upgrade_is_answered_as_a_plain_request_and_the_connection_ends() -> None:
    channel = MemoryChannel()
    [request] = channel.receive(
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nxx"
    )
    assert not request.keep_alive
    assert channel.connection.input_closed


def test_a_timeout_rejects_the_head_being_read_and_ends_reading() -> None:
    """408 needs the clock, so the adapter decides it (medusa.http.lifecycle); the
    connection answers it as any other limit."""
    channel = MemoryChannel()
    assert channel.receive(b"GET /slow HTTP/1.1\r\nHost: h\r\n") == []
    assert channel.connection.in_head
    event = channel.connection.reject(408, "request header timeout")
    assert event.status == 408
    assert not channel.connection.in_head
    event.request.error(event.status, event.message)
    assert channel.take().startswith(b"HTTP/1.1 408 ")
    assert channel.close == 2
    assert channel.receive(b"\r\n") == []
