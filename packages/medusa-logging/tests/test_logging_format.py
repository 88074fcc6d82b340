"""Syslog message formats without I/O: RFC 5424, RFC 3164, RFC 6587 framing; severities."""

from __future__ import annotations

import logging
import time

import pytest

from medusa.logging import Entry, Facility, Severity
from medusa.logging.bridge import severity_of
from medusa.logging.lines import LineFormatter
from medusa.logging.records import Record, as_entry, parse_facility, parse_severity
from medusa.logging.syslog_format import (
    SyslogFormatter,
    frame_octet_counting,
    header_field,
    rfc3339,
    structured_data,
)

T = 1_700_000_000.25  # 2023-11-14T22:13:20.25Z


def test_rfc5424_message() -> None:
    fmt = SyslogFormatter(
        "5424", facility=Facility.LOCAL4, hostname="mymachine.example.com", app_name="su",
        procid="77",
    )  # fmt: skip
    entry = Entry("'su root' failed", Severity.CRIT, T, "ID47")
    # RFC 5424 §6.5 example 1 shape: PRI = 20 * 8 + 2 = 162.
    assert fmt.format(entry) == (
        b"<162>1 2023-11-14T22:13:20.250000Z mymachine.example.com su 77 ID47 - 'su root' failed"
    )


def test_rfc5424_nil_values_and_bom() -> None:
    fmt = SyslogFormatter("5424", hostname="", app_name="", procid="", bom=True)
    assert fmt.format(Entry("é", Severity.INFO, T)) == (
        b"<30>1 2023-11-14T22:13:20.250000Z - - - - - \xef\xbb\xbf\xc3\xa9"
    )
    assert fmt.format(Entry("", Severity.INFO, T)).endswith(b" - - - - -")


def test_rfc5424_local_time_has_an_offset() -> None:
    stamp = rfc3339(T, utc=False)
    assert stamp[-6] in "+-"
    assert stamp[-3] == ":"
    assert ".250000" in stamp


def test_structured_data_escaping() -> None:
    data = {"exampleSDID@32473": {"iut": "3", "eventSource": 'Ap"p]\\x'}, "meta": {}}
    assert structured_data(data) == (
        '[exampleSDID@32473 iut="3" eventSource="Ap\\"p\\]\\\\x"][meta]'
    )
    assert structured_data(None) == "-"
    assert structured_data({"bad name=x": {"a b": "v"}}) == '[bad_name_x a_b="v"]'


def test_header_fields_are_printable_ascii() -> None:
    assert header_field("a b\tcé", 48) == "a_b_c_"
    assert header_field("x" * 40, 32) == "x" * 32
    assert header_field(None, 32) == "-"


def test_rfc3164_message() -> None:
    fmt = SyslogFormatter("3164", hostname="mymachine", app_name="su-app!", procid="123")
    out = fmt.format(Entry("'su root' failed", Severity.CRIT, T))
    month_day = time.strftime("%b %d", time.localtime(T))
    assert out.startswith(b"<26>")  # daemon.crit = 3 * 8 + 2
    assert out.endswith(b" mymachine suapp[123]: 'su root' failed")
    assert out[4:10].decode() == f"{month_day[:4]}{int(month_day[4:]):2d}"


def test_rfc3164_without_hostname_and_truncated_to_1024() -> None:
    fmt = SyslogFormatter("3164", hostname="", app_name="m", procid="1", max_message=9000)
    out = fmt.format(Entry("é" * 2000, Severity.INFO, T))
    assert len(out) <= 1024
    assert b" m[1]: " in out
    out.decode("utf-8")  # never cut inside a UTF-8 sequence


def test_truncation_keeps_utf8_whole() -> None:
    fmt = SyslogFormatter("5424", hostname="h", app_name="a", procid="1", max_message=100)
    out = fmt.format(Entry("€" * 100, Severity.INFO, T))
    assert len(out) <= 100
    out.decode("utf-8")


def test_octet_counting_frame() -> None:
    assert frame_octet_counting(b"<34>1 - - - - - - hi") == b"20 <34>1 - - - - - - hi"
    assert frame_octet_counting("é".encode()) == b"2 \xc3\xa9"


def test_severity_and_facility_names() -> None:
    assert parse_severity("error") is Severity.ERR
    assert parse_severity("WARN") is Severity.WARNING
    assert parse_severity(7) is Severity.DEBUG
    assert parse_facility("local7") is Facility.LOCAL7
    assert parse_facility(3) is Facility.DAEMON
    with pytest.raises(ValueError, match="unknown severity"):
        parse_severity("loud")
    with pytest.raises(ValueError, match="unknown facility"):
        parse_facility("local8")


def test_logging_levels_map_to_severities() -> None:
    assert [
        severity_of(level)
        for level in (logging.DEBUG, logging.INFO, 25, logging.WARNING, logging.ERROR, 60)
    ] == [
        Severity.DEBUG,
        Severity.INFO,
        Severity.INFO,
        Severity.WARNING,
        Severity.ERR,
        Severity.CRIT,
    ]


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown syslog format"):
        SyslogFormatter("5425")


@pytest.mark.parametrize("rfc", ["5424", "3164"])
@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("utc", [False, True])
def test_batches_of_plain_records_match_one_by_one(rfc: str, bom: bool, utc: bool) -> None:
    # The writer's fast path (plain (message, time) pairs of one second, assembled without
    # a per-record loop) must give exactly the bytes of format(Entry(...)).
    fmt = SyslogFormatter(rfc, hostname="h", procid="9", max_message=200, bom=bom, utc=utc)
    one_second: list[Record] = [("GET / 200", T), ("é ünïcode", T + 0.000001), ("x" * 300, T + 0.7)]
    one_second.append(("last", 1_700_000_000.9999998))  # the last microsecond
    mixed: list[Record] = [*one_second, ("", T), ("next second", T + 1.0)]
    for records in (one_second, mixed, [*one_second, Entry("e", Severity.ERR, T, "m")]):
        expected = [fmt.format(as_entry(r, Severity.NOTICE, "acc")) for r in records]
        assert fmt.messages(records, Severity.NOTICE, "acc") == expected
    assert len(fmt.messages(one_second, Severity.NOTICE, "acc")[2]) == min(200, 1024)


@pytest.mark.parametrize("one_line", [False, True])
def test_text_lines_in_one_piece_match_line_by_line(one_line: bool) -> None:
    fmt = LineFormatter("text", one_line=one_line)
    records: list[Record] = [("a", T), ("b\nc", T), Entry("d\ne", Severity.ERR, T), ("\udcff", T)]
    joined = fmt.encode(records, Severity.INFO, None)
    assert joined == b"".join(fmt.lines(records, Severity.INFO, None))
    assert joined.count(b"\n") == (4 if one_line else 6)
    assert fmt.encode([], Severity.INFO, None) == b""


@pytest.mark.parametrize("one_line", [False, True])
def test_text_lines_of_bare_messages(one_line: bool) -> None:
    # A text logger queues log() lines as bare messages (no clock read, no pair): a batch of
    # them is joined in one piece, and a batch mixing them with pairs and entries gives the
    # same lines as one by one.
    fmt = LineFormatter("text", one_line=one_line)
    bare: list[Record] = ["a", "b\nc", "\udcff"]
    for records in (bare, [*bare, ("d", T), Entry("e", Severity.ERR, T)]):
        joined = fmt.encode(records, Severity.INFO, None)
        assert joined == b"".join(fmt.lines(records, Severity.INFO, None))
    expected = b"a\nb\\nc\n?\n" if one_line else b"a\nb\nc\n?\n"
    assert fmt.encode(bare, Severity.INFO, None) == expected
    assert fmt.timed is False
    assert LineFormatter("json").timed is True
