"""The Common Log Format line (``medusa.http.accesslog``): escaping, and the cheap path of a
plain request target seen before (issue 15: the default access log's cost)."""

from __future__ import annotations

from typing import Any, cast

from medusa.http.accesslog import PLAIN_TARGETS, common_log_line
from medusa.http.request import Request

STAMP = ' [06/Dec/2026:10:30:18 +0000] "'


def finished(target: str, *, status: int = 200, size: int = 13, user: str | None = None) -> Request:
    """A finished request, as :func:`common_log_line` reads it (no channel: not needed)."""
    request = Request(cast(Any, None), "GET", target, target, "", "1.1", {}, True, 0.0)
    request.status = status
    request.bytes_out = size
    request.user = user
    return request


def test_a_plain_target_seen_before_is_not_scanned_again() -> None:
    request = finished("/accesslog-test/hello.txt")
    first = common_log_line(request, "127.0.0.1", STAMP)
    expected = f'127.0.0.1 - -{STAMP}GET /accesslog-test/hello.txt HTTP/1.1" 200 13'
    assert first == expected
    # Remembered: the second time, one set lookup instead of the isascii/isprintable scans.
    assert request.target in PLAIN_TARGETS
    assert common_log_line(request, "127.0.0.1", STAMP) == first


def test_targets_that_need_escaping_are_escaped_every_time() -> None:
    for target, logged in [
        ('/a"b', '/a\\"b'),
        ("/a\\b", "/a\\\\b"),
        ("/\u00e9", "/\\xe9"),
        ("/a\x7fb", "/a\\x7fb"),
    ]:
        for _ in range(2):  # the second time too: only plain targets are remembered
            line = common_log_line(finished(target), "h", STAMP)
            assert line == f'h - -{STAMP}GET {logged} HTTP/1.1" 200 13'


def test_sizes_statuses_and_users() -> None:
    assert common_log_line(finished("/", size=0), "h", STAMP).endswith('" 200 -')
    for size in (1, 1024, 10**12, 1, 7):
        assert common_log_line(finished("/", size=size), "h", STAMP).endswith(f'" 200 {size}')
    assert common_log_line(finished("/", status=1234), "h", STAMP).endswith('" 1234 13')
    assert common_log_line(finished("/", user='a"b'), "h", STAMP).startswith('h - a\\"b [')


def test_many_distinct_targets_and_sizes_are_all_logged_right() -> None:
    """The caches of plain targets and sizes are bounded (emptied when full): every line
    stays right however many distinct ones come."""
    for number in range(5000):
        line = common_log_line(finished(f"/t{number}", size=number + 1), "h", STAMP)
        assert line == f'h - -{STAMP}GET /t{number} HTTP/1.1" 200 {number + 1}'
    long_target = "/" + "x" * 5000  # longer than any remembered
    assert long_target in common_log_line(finished(long_target), "h", STAMP)
