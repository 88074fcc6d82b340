"""medusa.http.body.BodyReception in memory: each step returns the decision the channel
carries out (medusa.http.bodyflow), with no I/O and no call into the channel."""

from __future__ import annotations

from typing import Any

from medusa.http.body import BodyDecision, BodyReception
from medusa.http.request import Request


class ListSink:
    def __init__(self, fail_at: int | None = None) -> None:
        self.pieces: list[bytes] = []
        self.aborted: str | None = None
        self.fail_at = fail_at

    def write(self, data: bytes) -> None:
        if self.fail_at is not None and len(self.pieces) == self.fail_at:
            raise OSError("disk full")
        self.pieces.append(data)

    def abort(self, reason: str) -> None:
        self.aborted = reason


def reception(length: int | None = 10, expect: bool = False, limit: int = 100) -> BodyReception:
    no_channel: Any = None  # the reception never reaches the request's channel
    request = Request(no_channel, "POST", "/u", "/u", "", "1.1", {}, True, 0.0)
    request.current = True
    return BodyReception(request, "handler", length, expect, limit, 0.0, False)


def test_pieces_before_the_decision_are_kept_then_buffered() -> None:
    upload = reception()
    assert upload.feed(b"abc") is None
    assert not upload.request.keep_alive  # withheld until the body is read
    assert upload.take(None) is None
    assert upload.feed(b"defghij") is None
    assert upload.finish() is BodyDecision.DISPATCH
    assert upload.ready() == "handler"
    assert upload.request.body == b"abcdefghij"
    assert upload.request.keep_alive


def test_a_buffered_body_over_the_limit_is_too_large() -> None:
    assert reception(length=1000).take(None) is BodyDecision.TOO_LARGE
    chunked = reception(length=None, limit=5)
    assert chunked.take(None) is None
    assert chunked.feed(b"123456") is BodyDecision.TOO_LARGE


def test_a_sink_gets_the_kept_pieces_and_a_failing_one_is_aborted() -> None:
    upload = reception()
    upload.feed(b"ab")
    sink = ListSink()
    assert upload.take(sink) is None
    assert upload.feed(b"cd") is None
    assert sink.pieces == [b"ab", b"cd"]
    failing = reception()
    broken = ListSink(fail_at=1)
    assert failing.take(broken) is None
    failing.feed(b"ok")
    assert failing.feed(b"no") is BodyDecision.SINK_FAILED
    assert broken.aborted is not None


def test_expect_continue_is_promised_on_acceptance_and_sent_when_current() -> None:
    upload = reception(expect=True)
    assert upload.held  # the client waits: no body timeout runs
    upload.request.current = False
    assert upload.take(None) is BodyDecision.CONTINUE
    assert not upload.continue_now(1.0)  # a response before it is not sent yet
    upload.request.current = True
    assert upload.continue_now(2.0)
    assert not upload.held
    assert not upload.continue_now(3.0)  # once


def test_a_body_complete_before_the_decision_is_dispatched_without_100() -> None:
    upload = reception(expect=True)
    upload.feed(b"0123456789")
    assert upload.finish() is None  # the handler has not decided yet
    assert upload.take(None) is BodyDecision.DISPATCH


def test_lost_aborts_the_sink() -> None:
    upload = reception()
    sink = ListSink()
    upload.take(sink)
    upload.lost("connection closed")
    assert sink.aborted == "connection closed"
    assert upload.lost_reason == "connection closed"
