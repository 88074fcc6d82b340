"""Byte-range parsing (RFC 9110 §14.1.2), sans-IO."""

from __future__ import annotations

import pytest

from medusa.http.ranges import UNSATISFIABLE, parse_range


@pytest.mark.parametrize(
    ("value", "size", "expected"),
    [
        ("bytes=0-499", 1000, (0, 499)),
        ("bytes=500-999", 1000, (500, 999)),
        ("bytes=500-", 1000, (500, 999)),
        ("bytes=-500", 1000, (500, 999)),
        ("bytes=-5000", 1000, (0, 999)),
        ("bytes=0-5000", 1000, (0, 999)),
        ("bytes=999-999", 1000, (999, 999)),
        (" BYTES = 1-2 ", 1000, (1, 2)),
        ("bytes=1000-", 1000, UNSATISFIABLE),
        ("bytes=1000-2000", 1000, UNSATISFIABLE),
        ("bytes=-0", 1000, UNSATISFIABLE),
        ("bytes=0-", 0, UNSATISFIABLE),
        ("bytes=-1", 0, UNSATISFIABLE),
        ("items=0-1", 1000, None),
        ("bytes=5-1", 1000, None),
        ("bytes=a-b", 1000, None),
        ("bytes=-", 1000, None),
        ("bytes=1", 1000, None),
        ("bytes=0-1,5-6", 1000, None),
        ("bytes 0-1", 1000, None),
        ("bytes=+1-2", 1000, None),
    ],
)
def test_parse_range(value: str, size: int, expected: tuple[int, int] | None) -> None:
    assert parse_range(value, size) == expected
