"""The syslog logger against a real rsyslogd on 127.0.0.1 (UDP and TCP inputs), which parses
every message (RFC 5424 or RFC 3164) and writes its fields to a file."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from medusa.core.testing import require_tool, wait_until
from medusa.logging import Entry, LoggingHandler, Severity, SyslogLogger
from medusa.logging.testing import Rsyslog


@pytest.fixture
def rsyslog(tmp_path: Path) -> Iterator[Rsyslog]:
    require_tool("rsyslogd", "apt-get install rsyslog")
    with Rsyslog(tmp_path) as daemon:
        yield daemon


def _port(rsyslog: Rsyslog, transport: str) -> int:
    return rsyslog.udp_port if transport == "udp" else rsyslog.tcp_port


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_every_message_arrives_parsed_as_rfc5424(rsyslog: Rsyslog, transport: str) -> None:
    logger = SyslogLogger(
        transport=transport,
        port=_port(rsyslog, transport),
        app_name="medusa-test",
        hostname="web1.example",
        procid="4242",
        facility="local3",
        msgid="access",
        sequence_id=True,
    )
    before = time.time()
    count = 300
    try:
        for n in range(count):
            logger.log(f'127.0.0.1 - - "GET /{n} HTTP/1.1" 200 13 é')
        logger.emit(
            Entry(
                "with data",
                Severity.ERR,
                msgid="auth",
                structured_data={"origin@32473": {"ip": "10.0.0.1", "note": 'a "q" ] \\ b'}},
            )
        )
        wait_until(
            lambda: len(rsyslog.records(app="medusa-test")) == count + 1,
            what=f"{count + 1} messages in rsyslog's output",
        )
    finally:
        logger.close()
    records = rsyslog.records(app="medusa-test")
    assert {r["input"] for r in records} == {transport}
    access = [r for r in records if r["msgid"] == "access"]
    assert [r["msg"] for r in access] == [
        f'127.0.0.1 - - "GET /{n} HTTP/1.1" 200 13 é' for n in range(count)
    ]
    assert [r["sd"] for r in access] == [f'[meta sequenceId="{n}"]' for n in range(1, count + 1)]
    for r in records:
        assert r["version"] == "1"
        assert (r["host"], r["procid"], r["facility"]) == ("web1.example", "4242", "19")
        stamp = dt.datetime.fromisoformat(r["time"]).timestamp()
        assert before - 1 <= stamp <= time.time() + 1
        assert "." in r["time"]  # fractions of a second survive the parse
    assert {r["severity"] for r in access} == {"6"}
    (special,) = [r for r in records if r["msgid"] == "auth"]
    assert special["severity"] == "3"
    assert special["sd"] == (
        f'[origin@32473 ip="10.0.0.1" note="a \\"q\\" \\] \\\\ b"][meta sequenceId="{count + 1}"]'
    )
    assert logger.counters.written == count + 1
    assert logger.counters.dropped == 0


def test_rfc3164_over_udp(rsyslog: Rsyslog) -> None:
    logger = SyslogLogger(
        transport="udp", port=rsyslog.udp_port, format="rfc3164", app_name="bsdtag"
    )
    try:
        logger.log("old style")
        wait_until(lambda: rsyslog.records(app="bsdtag"), what="the RFC 3164 message")
    finally:
        logger.close()
    (record,) = rsyslog.records(app="bsdtag")
    assert record["version"] == "0"  # parsed by the RFC 3164 parser
    assert record["msg"].strip() == "old style"
    assert record["facility"] == "3"  # daemon, the default


def test_stdlib_records_reach_rsyslog(rsyslog: Rsyslog) -> None:
    logger = SyslogLogger(transport="tcp", port=rsyslog.tcp_port, app_name="bridged")
    std = logging.getLogger("medusa.test.bridge")
    std.setLevel(logging.DEBUG)
    std.propagate = False
    handler = LoggingHandler(logger)
    std.addHandler(handler)
    try:
        std.debug("debugging")
        std.warning("careful %s", "now", extra={"structured_data": {"req@32473": {"id": "7"}}})
        try:
            raise ValueError("boom")
        except ValueError:
            std.exception("failed")
        wait_until(lambda: len(rsyslog.records(app="bridged")) == 3, what="3 bridged records")
    finally:
        std.removeHandler(handler)
        logger.close()
    records = rsyslog.records(app="bridged")
    assert [(r["severity"], r["msgid"]) for r in records] == [
        ("7", "medusa.test.bridge"),
        ("4", "medusa.test.bridge"),
        ("3", "medusa.test.bridge"),
    ]
    assert records[1]["msg"] == "careful now"
    assert records[1]["sd"] == '[req@32473 id="7"]'
    assert records[2]["msg"].startswith("failed#012Traceback")  # rsyslog escapes the newline
    assert "ValueError: boom" in records[2]["msg"]


def test_tcp_outage_queues_then_delivers(rsyslog: Rsyslog) -> None:
    logger = SyslogLogger(
        transport="tcp",
        port=rsyslog.tcp_port,
        app_name="outage",
        sequence_id=True,
        retry_min=0.02,
        retry_max=0.1,
    )
    try:
        for n in range(50):
            logger.log(f"before {n}")
        wait_until(lambda: len(rsyslog.records(app="outage")) == 50, what="the first 50")
        rsyslog.stop()
        for n in range(200):
            logger.log(f"during {n}")
        wait_until(lambda: logger.counters.errors > 0, what="the writer to notice the outage")
        assert logger.counters.written == 50
        rsyslog.start()
        wait_until(lambda: len(rsyslog.records(app="outage")) == 250, what="all 250 records")
        assert logger.flush(5)
    finally:
        logger.close()
    records = rsyslog.records(app="outage")
    assert [r["msg"] for r in records] == [f"before {n}" for n in range(50)] + [
        f"during {n}" for n in range(200)
    ]
    assert [r["sd"] for r in records] == [f'[meta sequenceId="{n}"]' for n in range(1, 251)]
    assert logger.counters.dropped == 0
    assert logger.counters.opens == 2


def test_tcp_outage_beyond_the_buffer_counts_and_reports_drops(rsyslog: Rsyslog) -> None:
    logger = SyslogLogger(
        transport="tcp",
        port=rsyslog.tcp_port,
        app_name="overflow",
        buffer=100,
        retry_min=0.02,
        retry_max=0.1,
    )
    try:
        logger.log("first")
        wait_until(lambda: rsyslog.records(app="overflow"), what="the first record")
        rsyslog.stop()
        logger.log("probe")  # the writer finds the connection closed and starts retrying
        wait_until(lambda: logger.counters.errors > 0, what="the writer to notice the outage")
        for n in range(350):
            logger.log(f"during {n}")
        assert logger.counters.dropped == 251  # 100 fit: the probe and 99 more
        rsyslog.start()
        wait_until(
            lambda: len(rsyslog.records(app="overflow")) == 1 + 100 + 1,
            what="the queued records and the drop notice",
        )
    finally:
        logger.close()
    records = rsyslog.records(app="overflow")
    texts = [r["msg"] for r in records]
    assert texts[0] == "first"
    notice = [r for r in records if r["msgid"] == "medusa.logging"]
    assert len(notice) == 1
    assert "251 records dropped" in notice[0]["msg"]
    assert notice[0]["severity"] == "4"
    delivered = [t for t in texts if t.startswith("during") or t == "probe"]
    assert delivered == ["probe"] + [f"during {n}" for n in range(99)]
    # Every record is accounted for: delivered or counted as dropped.
    assert logger.counters.written + logger.counters.dropped == 1 + 1 + 350
    assert logger.counters.notices == 1


def test_udp_delivers_after_a_restart(rsyslog: Rsyslog) -> None:
    logger = SyslogLogger(
        transport="udp", port=rsyslog.udp_port, app_name="udprestart", retry_min=0.02
    )
    try:
        logger.log("one")
        wait_until(lambda: rsyslog.records(app="udprestart"), what="the first datagram")
        rsyslog.stop()
        rsyslog.start()
        logger.log("two")
        wait_until(
            lambda: [r["msg"] for r in rsyslog.records(app="udprestart")] == ["one", "two"],
            what="the datagram after the restart",
        )
    finally:
        logger.close()
