"""In-memory tests of the asynchat input framing (:mod:`medusa.core.terminator`) and of the
channel's seam for it (:meth:`Channel.data_received` -> :meth:`Channel.handle_data`): no
sockets, no loop. Every way of cutting a stream into reads must give the same pieces."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from medusa.core.channel import Channel
from medusa.core.stats import Counters
from medusa.core.terminator import find_prefix_at_end, split_at_terminator


class Recorder:
    """A :class:`~medusa.core.terminator.TerminatorTarget` that records its pieces; the
    terminator may follow a script (``after``: terminators to set at each found)."""

    def __init__(self, terminator: bytes | int | None, after: list[Any] | None = None) -> None:
        self.terminator = terminator
        self.after = list(after or [])
        self.pieces: list[bytes] = []
        self.current = b""
        self.closed_after: int | None = None  # close after this many found terminators
        self.found = 0

    def collect_incoming_data(self, data: bytes) -> None:
        assert data, "collect_incoming_data must never get empty bytes"
        self.current += data

    def found_terminator(self) -> None:
        self.pieces.append(self.current)
        self.current = b""
        self.found += 1
        if self.after:
            self.terminator = self.after.pop(0)

    def input_closed(self) -> bool:
        return self.closed_after is not None and self.found >= self.closed_after


def feed(target: Recorder, reads: list[bytes]) -> bytes:
    """Feed ``reads`` as the channel does (the held bytes before the next read)."""
    held = b""
    for data in reads:
        held = split_at_terminator(target, held + data)
    return held


def cuts(stream: bytes, pieces: int) -> list[list[bytes]]:
    """Every way of cutting ``stream`` into ``pieces`` reads (some may be empty)."""
    out = []
    for points in itertools.combinations_with_replacement(range(len(stream) + 1), pieces - 1):
        bounds = [0, *points, len(stream)]
        out.append([stream[a:b] for a, b in itertools.pairwise(bounds)])
    return out


@pytest.mark.parametrize("terminator", [b"\n", b"\r\n", b"<END>", b"aab"])
def test_bytes_terminator_split_at_every_position(terminator: bytes) -> None:
    lines = [b"one", b"", b"a", b"aa", b"two words", b"aaa"]
    stream = b"".join(line + terminator for line in lines) + b"tail"
    for reads in cuts(stream, 3):
        target = Recorder(terminator)
        held = feed(target, reads)
        assert target.pieces == lines, reads
        # The tail is handed on or held, never lost or doubled.
        assert target.current + held == b"tail", reads
        assert len(held) < len(terminator)


def test_partial_terminator_held_until_the_next_read() -> None:
    target = Recorder(b"<END>")
    assert split_at_terminator(target, b"abc<EN") == b"<EN"
    assert target.current == b"abc"
    assert split_at_terminator(target, b"<ENxyz") == b""  # not a terminator after all
    assert target.current == b"abc<ENxyz"
    assert target.pieces == []


def test_count_terminator_across_reads() -> None:
    stream = b"0123456789" + b"rest"
    for reads in cuts(stream, 3):
        target = Recorder(10)
        feed(target, reads)
        assert target.pieces == [b"0123456789"], reads
        assert target.terminator == 0
        assert target.current == b"rest", reads  # a spent count takes everything after


def test_count_terminator_decremented_as_bytes_arrive() -> None:
    target = Recorder(10)
    split_at_terminator(target, b"abcd")
    assert target.terminator == 6
    split_at_terminator(target, b"efghij")
    assert target.terminator == 0
    assert target.pieces == [b"abcdefghij"]


def test_none_terminator_takes_everything() -> None:
    target = Recorder(None)
    assert split_at_terminator(target, b"a\r\nb\r\n") == b""
    assert target.current == b"a\r\nb\r\n"
    assert target.pieces == []


def test_terminator_changed_inside_found_terminator() -> None:
    """Lines, then a counted body, then lines again, then everything (an HTTP-like
    exchange), cut every way into reads."""
    stream = b"HEAD 5\r\nhelloNEXT\r\nraw bytes\r\n"
    for reads in cuts(stream, 3):
        target = Recorder(b"\r\n", after=[5, b"\r\n", None])
        feed(target, reads)
        assert target.pieces == [b"HEAD 5", b"hello", b"NEXT"], reads
        assert target.current == b"raw bytes\r\n", reads
        assert target.terminator is None


def test_closed_target_drops_the_rest() -> None:
    target = Recorder(b"\n")
    target.closed_after = 1
    assert split_at_terminator(target, b"QUIT\nmore\nlines\nand<") == b""
    assert target.pieces == [b"QUIT"]
    assert target.current == b""


def test_find_prefix_at_end() -> None:
    assert find_prefix_at_end(b"abc\r", b"\r\n") == 1
    assert find_prefix_at_end(b"x<EN", b"<END>") == 3
    assert find_prefix_at_end(b"", b"<END>") == 0


# -- the channel's seam ----------------------------------------------------------------------


class LineChannel(Channel):
    """The default handle_data with the default incoming buffer."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lines: list[bytes] = []
        self.overflows = 0

    def found_terminator(self) -> None:
        self.lines.append(self.get_incoming())

    def incoming_overflow(self) -> None:
        self.overflows += 1

    def input_closed(self) -> bool:
        return self.closing  # no transport in these tests


def test_channel_splits_reads_at_every_position() -> None:
    stream = b"alpha\r\nbeta\r\n\r\ngamma\r\n"
    for reads in cuts(stream, 3):
        channel = LineChannel()
        for data in reads:
            if data:
                channel.data_received(data)
        assert channel.lines == [b"alpha", b"beta", b"", b"gamma"], reads
        assert channel.bytes_in == len(stream)


def test_channel_max_incoming_overflow() -> None:
    """A line longer than ``max_incoming`` without its terminator calls
    ``incoming_overflow`` once and drops what was collected; lines after it still work."""
    channel = LineChannel(max_incoming=100)
    channel.data_received(b"x" * 60)
    channel.data_received(b"x" * 30)
    assert channel.overflows == 0
    channel.data_received(b"x" * 20 + b"\r")  # 110 bytes, the \r held back
    assert channel.overflows == 1
    channel.data_received(b"\nshort\r\n")
    assert channel.lines == [b"", b"short"]


class OwnParser(Channel):
    """A protocol with its own parser: it overrides handle_data only."""

    terminator = None

    def __init__(self, server: Any = None) -> None:
        super().__init__(server)
        self.received: list[bytes] = []

    def handle_data(self, data: bytes) -> None:
        self.received.append(data)


class CountingServer:
    """Just enough of a server for the bookkeeping of ``data_received``."""

    write_high_water = None
    write_low_water = None
    idle_timeout = 0.0

    def __init__(self) -> None:
        self.counters = Counters()


def test_data_received_counts_and_hands_on_through_handle_data() -> None:
    server = CountingServer()
    channel = OwnParser(server)
    channel.data_received(b"GET / HTTP/1.1\r\n")
    channel.data_received(b"\r\n")
    assert channel.received == [b"GET / HTTP/1.1\r\n", b"\r\n"]
    assert channel.bytes_in == 18
    assert server.counters.bytes_in == 18
    assert channel.last_activity > 0
    channel.close()
    channel.data_received(b"late")
    assert channel.received == [b"GET / HTTP/1.1\r\n", b"\r\n"]  # closing: not handed on
    assert channel.bytes_in == 22  # but counted
