"""Validators and preconditions (RFC 9110 §13.2.2), sans-IO."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from medusa.http.conditional import entity_tag, evaluate_preconditions, if_range_allows
from medusa.http.dates import http_date, parse_http_date

MTIME = 1_700_000_000
ETAG = '"abc-10"'
LAST_MODIFIED = http_date(MTIME)
EARLIER = http_date(MTIME - 60)
LATER = http_date(MTIME + 60)


def test_entity_tag_changes_with_size_and_mtime(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_bytes(b"12345")
    os.utime(f, (MTIME, MTIME))
    first = entity_tag(os.stat(f))
    assert first == f'"{MTIME:x}-5"'
    f.write_bytes(b"123456")
    os.utime(f, (MTIME, MTIME))
    assert entity_tag(os.stat(f)) != first


def test_dates_round_trip() -> None:
    assert parse_http_date(LAST_MODIFIED) == MTIME
    # RFC 850 and asctime forms must be accepted (RFC 9110 §5.6.7).
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == 784111777
    assert parse_http_date("Sun Nov  6 08:49:37 1994") == 784111777
    assert parse_http_date("yesterday") is None


@pytest.mark.parametrize(
    ("method", "headers", "expected"),
    [
        ("GET", {}, None),
        ("GET", {"if-none-match": ETAG}, 304),
        ("HEAD", {"if-none-match": f'"x", {ETAG}'}, 304),
        ("GET", {"if-none-match": f"W/{ETAG}"}, 304),
        ("GET", {"if-none-match": "*"}, 304),
        ("GET", {"if-none-match": '"other"'}, None),
        # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2 step 3 before 4).
        ("GET", {"if-none-match": '"other"', "if-modified-since": LATER}, None),
        ("GET", {"if-modified-since": LAST_MODIFIED}, 304),
        ("GET", {"if-modified-since": LATER}, 304),
        ("GET", {"if-modified-since": EARLIER}, None),
        ("GET", {"if-modified-since": "not a date"}, None),
        ("GET", {"if-match": ETAG}, None),
        ("GET", {"if-match": '"other"'}, 412),
        ("GET", {"if-match": f"W/{ETAG}"}, 412),
        ("GET", {"if-match": "*"}, None),
        ("GET", {"if-unmodified-since": EARLIER}, 412),
        ("GET", {"if-unmodified-since": LAST_MODIFIED}, None),
        ("PUT", {"if-none-match": "*"}, 412),
    ],
)
def test_preconditions(method: str, headers: dict[str, str], expected: int | None) -> None:
    assert evaluate_preconditions(method, headers, ETAG, MTIME) == expected


def test_if_range() -> None:
    assert if_range_allows(ETAG, ETAG, LAST_MODIFIED)
    assert not if_range_allows('"other"', ETAG, LAST_MODIFIED)
    assert not if_range_allows(f"W/{ETAG}", ETAG, LAST_MODIFIED)
    assert if_range_allows(LAST_MODIFIED, ETAG, LAST_MODIFIED)
    assert not if_range_allows(EARLIER, ETAG, LAST_MODIFIED)
