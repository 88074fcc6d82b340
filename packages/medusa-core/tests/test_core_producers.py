"""Unit tests of every producer in :mod:`medusa.core.producers` (as the original Medusa had
one per producer): output, slicing bounds, end of output, closing, and the edge cases each
one exists for."""

from __future__ import annotations

import io
import itertools
import os
import random
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from medusa.core.producers import (
    ChunkedProducer,
    CompositeProducer,
    EscapingProducer,
    FileProducer,
    GlobbingProducer,
    HookedProducer,
    LinesProducer,
    Producer,
    SimpleProducer,
)

MAX_CALLS = 100_000


def pieces(producer: Producer, max_calls: int = MAX_CALLS) -> list[bytes]:
    """Pull ``producer`` until it returns ``b""``; return the non-empty pieces. Fails if
    it does not end within ``max_calls`` calls."""
    out: list[bytes] = []
    for _ in range(max_calls):
        data = producer.more()
        assert isinstance(data, bytes)
        if not data:
            return out
        out.append(data)
    pytest.fail(f"{producer!r} did not end within {max_calls} more() calls")


def drain(producer: Producer) -> bytes:
    return b"".join(pieces(producer))


class ListProducer:
    """Produces the given pieces in order; fails the test if pulled after its end."""

    def __init__(self, parts: Iterable[bytes]) -> None:
        self.parts = list(parts)
        self.ended = False
        self.closed = False

    def more(self) -> bytes:
        assert not self.ended, "pulled again after it returned b''"
        if self.parts:
            return self.parts.pop(0)
        self.ended = True
        return b""

    def close(self) -> None:
        self.closed = True


def byte_at_a_time(data: bytes) -> ListProducer:
    return ListProducer(data[i : i + 1] for i in range(len(data)))


# -- SimpleProducer --------------------------------------------------------------------------


def test_simple_producer_slices_and_ends() -> None:
    data = bytes(range(256)) * 10
    producer = SimpleProducer(data, buffer_size=100)
    parts = pieces(producer)
    assert b"".join(parts) == data
    assert [len(p) for p in parts] == [100] * 25 + [60]
    assert producer.more() == b""  # stays at the end


def test_simple_producer_empty_and_exact_multiple() -> None:
    assert pieces(SimpleProducer(b"")) == []
    assert pieces(SimpleProducer(b"abcdef", buffer_size=3)) == [b"abc", b"def"]


def test_simple_producer_copies_a_bytearray() -> None:
    data = bytearray(b"hello")
    producer = SimpleProducer(data)  # type: ignore[arg-type]
    data[:] = b"XXXXX"  # the caller may reuse its buffer
    assert drain(producer) == b"hello"


def test_simple_producer_rejects_bad_buffer_size() -> None:
    with pytest.raises(ValueError, match="buffer_size"):
        SimpleProducer(b"x", buffer_size=0)


# -- LinesProducer ---------------------------------------------------------------------------


def test_lines_producer_crlf_and_batches() -> None:
    lines = [f"line {i}" for i in range(10)]
    parts = pieces(LinesProducer(lines, lines_per_call=4))
    assert [p.count(b"\r\n") for p in parts] == [4, 4, 2]
    assert b"".join(parts) == b"".join(f"line {i}\r\n".encode() for i in range(10))
    assert all(p.endswith(b"\r\n") for p in parts)


def test_lines_producer_bytes_str_and_encoding() -> None:
    producer = LinesProducer(["caf\u00e9", b"raw\xff", ""], encoding="latin-1")
    assert drain(producer) == b"caf\xe9\r\nraw\xff\r\n\r\n"
    assert drain(LinesProducer(["\u00e9"])) == "\u00e9\r\n".encode()
    assert pieces(LinesProducer([])) == []


def test_lines_producer_is_lazy() -> None:
    pulled: list[int] = []

    def gen() -> Iterable[str]:
        for i in range(1000):
            pulled.append(i)
            yield str(i)

    producer = LinesProducer(gen(), lines_per_call=10)
    assert producer.more() == b"".join(f"{i}\r\n".encode() for i in range(10))
    assert len(pulled) == 10  # not the whole iterable at once


def test_lines_producer_rejects_bad_batch() -> None:
    with pytest.raises(ValueError, match="lines_per_call"):
        LinesProducer(["a"], lines_per_call=0)


# -- FileProducer ----------------------------------------------------------------------------


@pytest.fixture
def data_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = random.Random(1).randbytes(300_001)
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    return path, data


def test_file_producer_whole_file_bounded_reads(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    f = path.open("rb")
    producer = FileProducer(f, buffer_size=4096)
    assert producer.remaining == len(data)
    parts = pieces(producer)
    assert b"".join(parts) == data
    assert max(len(p) for p in parts) <= 4096
    assert len(parts) == -(-len(data) // 4096)
    assert f.closed
    assert producer.more() == b""


def test_file_producer_closes_with_its_last_bytes(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    f = path.open("rb")
    producer = FileProducer(f, offset=len(data) - 10, buffer_size=100)
    assert producer.more() == data[-10:]
    assert f.closed  # released with the last bytes, before the final b""
    assert producer.more() == b""


@pytest.mark.parametrize(
    ("offset", "count"),
    [(0, 0), (0, 1), (1, 99), (4095, 4097), (123_456, None), (300_000, None), (300_001, None)],
)
def test_file_producer_range(data_file: tuple[Path, bytes], offset: int, count: int | None) -> None:
    path, data = data_file
    with path.open("rb") as f:
        producer = FileProducer(f, offset=offset, count=count, buffer_size=1000)
        expected = data[offset:] if count is None else data[offset : offset + count]
        parts = pieces(producer)
        assert b"".join(parts) == expected
        assert all(0 < len(p) <= 1000 for p in parts)
        assert f.closed
        assert producer.remaining == 0


def test_file_producer_offset_past_end_is_empty(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    with path.open("rb") as f:
        producer = FileProducer(f, offset=len(data) + 100)
        assert producer.remaining == 0
        assert producer.more() == b""
        assert f.closed


def test_file_producer_ignores_the_file_position(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    with path.open("rb") as f:
        f.read(777)  # the position does not matter: offsets are explicit
        assert drain(FileProducer(f, offset=10, count=20)) == data[10:30]


def test_file_producer_shrinking_file_stops(tmp_path: Path) -> None:
    path = tmp_path / "shrinks.bin"
    path.write_bytes(b"a" * 100)
    f = path.open("rb")
    producer = FileProducer(f, buffer_size=10)
    assert producer.more() == b"a" * 10
    os.truncate(path, 25)
    rest = pieces(producer, max_calls=10)
    assert b"".join(rest) == b"a" * 15  # what is left, then the end rather than a loop
    assert f.closed
    assert producer.remaining == 0


def test_file_producer_without_descriptor() -> None:
    data = bytes(range(200))
    f = io.BytesIO(data)
    producer = FileProducer(f, offset=50, count=100, buffer_size=30)
    parts = pieces(producer)
    assert b"".join(parts) == data[50:150]
    assert [len(p) for p in parts] == [30, 30, 30, 10]
    assert f.closed


def test_file_producer_from_a_pipe() -> None:
    r, w = os.pipe()
    with os.fdopen(w, "wb") as wf:
        wf.write(b"0123456789" * 10)
    with os.fdopen(r, "rb") as rf:
        producer = FileProducer(rf, count=60, buffer_size=25)
        parts = pieces(producer)
        assert parts == [b"0123456789" * 2 + b"01234", b"56789" + b"0123456789" * 2, b"0123456789"]
        assert rf.closed


def test_file_producer_close_early_is_idempotent(data_file: tuple[Path, bytes]) -> None:
    path, _ = data_file
    f = path.open("rb")
    producer = FileProducer(f)
    producer.more()
    producer.close()
    producer.close()
    assert f.closed
    assert producer.more() == b""


def test_file_producer_advance(data_file: tuple[Path, bytes]) -> None:
    path, data = data_file
    f = path.open("rb")
    producer = FileProducer(f, offset=100, count=1000)
    producer.advance(400)  # the zero-copy path sent 400 bytes
    assert (producer.offset, producer.remaining) == (500, 600)
    assert not f.closed
    assert drain(producer) == data[500:1100]
    producer = FileProducer(path.open("rb"), count=10)
    producer.advance(10)
    assert producer.file.closed


@pytest.mark.parametrize(
    "kwargs", [{"offset": -1}, {"count": -1}, {"buffer_size": 0}, {"buffer_size": -5}]
)
def test_file_producer_rejects_bad_arguments(
    data_file: tuple[Path, bytes], kwargs: dict[str, int]
) -> None:
    path, _ = data_file
    with path.open("rb") as f, pytest.raises(ValueError, match="must be"):
        FileProducer(f, **kwargs)


# -- CompositeProducer -----------------------------------------------------------------------


def test_composite_producer_in_order_skipping_empty() -> None:
    producer = CompositeProducer(
        [
            SimpleProducer(b"abc", 2),
            SimpleProducer(b""),
            ListProducer([b"d", b"ef"]),
            LinesProducer(["g"]),
            ListProducer([]),
        ]
    )
    parts = pieces(producer)
    assert parts == [b"ab", b"c", b"d", b"ef", b"g\r\n"]
    assert producer.more() == b""
    assert pieces(CompositeProducer([])) == []


def test_composite_producer_close_closes_the_rest(data_file: tuple[Path, bytes]) -> None:
    path, _ = data_file
    f = path.open("rb")
    inner = ListProducer([b"x"])
    producer = CompositeProducer([SimpleProducer(b"a"), inner, FileProducer(f)])
    assert producer.more() == b"a"
    producer.close()
    assert inner.closed
    assert f.closed
    assert producer.more() == b""


# -- GlobbingProducer ------------------------------------------------------------------------


def test_globbing_producer_coalesces() -> None:
    data = bytes(range(256)) * 4
    inner = byte_at_a_time(data)
    parts = pieces(GlobbingProducer(inner, buffer_size=100))
    assert b"".join(parts) == data
    assert [len(p) for p in parts] == [100] * 10 + [24]


def test_globbing_producer_does_not_pull_after_the_end() -> None:
    inner = ListProducer([b"abc", b"de"])  # fails if pulled again after b""
    producer = GlobbingProducer(inner, buffer_size=1000)
    assert producer.more() == b"abcde"
    assert producer.more() == b""
    assert producer.more() == b""


def test_globbing_producer_large_pieces_pass_whole() -> None:
    producer = GlobbingProducer(ListProducer([b"x" * 500, b"y"]), buffer_size=100)
    assert pieces(producer) == [b"x" * 500, b"y"]


def test_globbing_producer_close_and_validation() -> None:
    inner = ListProducer([b"a"])
    GlobbingProducer(inner).close()
    assert inner.closed
    with pytest.raises(ValueError, match="buffer_size"):
        GlobbingProducer(inner, buffer_size=0)


# -- HookedProducer --------------------------------------------------------------------------


def test_hooked_producer_calls_hook_once_with_count() -> None:
    calls: list[int] = []
    producer = HookedProducer(ListProducer([b"abc", b"defgh"]), calls.append)
    assert producer.more() == b"abc"
    assert calls == []
    assert producer.more() == b"defgh"
    assert calls == []  # not before the end is seen
    assert producer.more() == b""
    assert calls == [8]
    assert producer.more() == b""
    assert calls == [8]
    assert producer.bytes_out == 8


def test_hooked_producer_empty_output() -> None:
    calls: list[int] = []
    assert pieces(HookedProducer(SimpleProducer(b""), calls.append)) == []
    assert calls == [0]


def test_hooked_producer_close_does_not_call_hook() -> None:
    calls: list[int] = []
    inner = ListProducer([b"abc"])
    producer = HookedProducer(inner, calls.append)
    producer.more()
    producer.close()
    assert inner.closed
    assert producer.more() == b""
    assert calls == []


# -- ChunkedProducer -------------------------------------------------------------------------


def parse_chunked(data: bytes) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
    """Decode HTTP/1.1 chunked coding (RFC 9112 §7.1); return body, trailers and what
    follows the message. Fails on any framing error."""
    body = b""
    pos = 0
    while True:
        eol = data.index(b"\r\n", pos)
        size_text = data[pos:eol]
        assert size_text, "empty chunk size"
        assert size_text == size_text.strip(), f"bad chunk size {size_text!r}"
        size = int(size_text, 16)
        pos = eol + 2
        if size == 0:
            break
        body += data[pos : pos + size]
        assert data[pos + size : pos + size + 2] == b"\r\n", "chunk not followed by CRLF"
        pos += size + 2
    trailers: list[tuple[bytes, bytes]] = []
    while True:
        eol = data.index(b"\r\n", pos)
        line = data[pos:eol]
        pos = eol + 2
        if not line:
            return body, trailers, data[pos:]
        name, sep, value = line.partition(b":")
        assert sep, f"bad trailer line {line!r}"
        trailers.append((name, value.strip()))


def test_chunked_producer_framing() -> None:
    producer = ChunkedProducer(ListProducer([b"hello", b"x" * 300]))
    assert producer.more() == b"5\r\nhello\r\n"
    assert producer.more() == b"12c\r\n" + b"x" * 300 + b"\r\n"
    assert producer.more() == b"0\r\n\r\n"
    assert producer.more() == b""
    assert producer.more() == b""


def test_chunked_producer_parses_back() -> None:
    rng = random.Random(7)
    parts = [rng.randbytes(rng.randrange(1, 5000)) for _ in range(50)]
    output = drain(ChunkedProducer(ListProducer(parts)))
    body, trailers, rest = parse_chunked(output)
    assert body == b"".join(parts)
    assert trailers == []
    assert rest == b""


def test_chunked_producer_trailers() -> None:
    producer = ChunkedProducer(
        SimpleProducer(b"body"), [("Content-MD5", "abc=="), ("X-Count", "  4 ")]
    )
    output = drain(producer)
    assert output.endswith(b"0\r\nContent-MD5: abc==\r\nX-Count: 4\r\n\r\n")
    body, trailers, rest = parse_chunked(output)
    assert (body, rest) == (b"body", b"")
    assert trailers == [(b"Content-MD5", b"abc=="), (b"X-Count", b"4")]


def test_chunked_producer_empty_body() -> None:
    assert pieces(ChunkedProducer(SimpleProducer(b""))) == [b"0\r\n\r\n"]


def test_chunked_producer_without_last_chunk() -> None:
    producer = ChunkedProducer(ListProducer([b"ab", b"c"]), [("X", "y")], last_chunk=False)
    assert pieces(producer) == [b"2\r\nab\r\n", b"1\r\nc\r\n"]
    assert producer.more() == b""
    # The caller ends the body later; together they parse as one message.
    body, _, rest = parse_chunked(b"2\r\nab\r\n1\r\nc\r\n" + b"0\r\n\r\n")
    assert (body, rest) == (b"abc", b"")


@pytest.mark.parametrize(
    "trailer",
    [
        ("Bad Name", "v"),
        ("", "v"),
        ("X:Y", "v"),
        ("X", "a\r\nInjected: 1"),
        ("X", "a\nb"),
        ("X", "nul\0"),
        ("X", "snow \u2603"),
        ("N\u00e4me", "v"),
    ],
)
def test_chunked_producer_rejects_bad_trailers(trailer: tuple[str, str]) -> None:
    with pytest.raises(ValueError, match="trailer"):
        ChunkedProducer(SimpleProducer(b""), [trailer])


def test_chunked_producer_close_forwards() -> None:
    inner = ListProducer([b"a"])
    ChunkedProducer(inner).close()
    assert inner.closed


# -- EscapingProducer ------------------------------------------------------------------------


def test_escaping_producer_dot_stuffing() -> None:
    data = b"line\r\n.hidden\r\n..two\r\nend"
    assert drain(EscapingProducer(SimpleProducer(data))) == data.replace(b"\r\n.", b"\r\n..")


def test_escaping_producer_occurrence_spanning_pieces() -> None:
    producer = EscapingProducer(byte_at_a_time(b"ab\r\n.cd"))
    parts = pieces(producer)
    assert b"".join(parts) == b"ab\r\n..cd"
    producer = EscapingProducer(ListProducer([b"ab\r", b"\n", b".cd"]))
    assert drain(producer) == b"ab\r\n..cd"


def test_escaping_producer_partial_match_at_the_end() -> None:
    assert drain(EscapingProducer(byte_at_a_time(b"abc\r\n"))) == b"abc\r\n"
    assert drain(EscapingProducer(ListProducer([b"x\r", b"\ny"]))) == b"x\r\ny"


def test_escaping_producer_never_returns_empty_before_the_end() -> None:
    producer = EscapingProducer(byte_at_a_time(b"\r\n\r\n\r\n"))
    parts = pieces(producer)  # b"" only once, at the end
    assert b"".join(parts) == b"\r\n\r\n\r\n"


CASES: list[tuple[bytes, bytes, bytes]] = [
    (b"\r\n.", b"\r\n..", b"\r\n.\r\n..\r\n\r\n.x.\r\n" * 3 + b"\r\n.\r"),
    (b"aa", b"X", b"aaaaaaa baa aaab a"),
    (b"aab", b"<>", b"aaab aab aaaab ab aa"),
    (b"abab", b"Z", b"abababab ababab aba"),
    (b"x", b"xx", b"xyxxyx"),
    (b"\n", b"\r\n", b"a\nb\n\nc"),
    (b"end", b"", b"the endend of the enend"),
]


@pytest.mark.parametrize(("frm", "to", "data"), CASES)
def test_escaping_producer_matches_bytes_replace_over_splits(
    frm: bytes, to: bytes, data: bytes
) -> None:
    """Property: however the input is split, the output is ``data.replace(frm, to)``."""
    expected = data.replace(frm, to)
    rng = random.Random(hash((frm, to, data)) & 0xFFFF)

    def check(split: Callable[[], list[bytes]]) -> None:
        parts = split()
        assert b"".join(parts) == data
        out = drain(EscapingProducer(ListProducer(parts), frm, to))
        assert out == expected, f"split {parts!r}"

    check(lambda: [data])
    check(lambda: [data[i : i + 1] for i in range(len(data))])
    for _ in range(300):

        def random_split() -> list[bytes]:
            cuts = sorted(rng.sample(range(1, len(data)), rng.randrange(0, len(data) - 1)))
            bounds = [0, *cuts, len(data)]
            return [data[a:b] for a, b in itertools.pairwise(bounds)]

        check(random_split)


def test_escaping_producer_random_data_property() -> None:
    rng = random.Random(42)
    for _ in range(200):
        frm = bytes(rng.choice(b"ab\r\n.") for _ in range(rng.randrange(1, 4)))
        to = bytes(rng.choice(b"ab.") for _ in range(rng.randrange(0, 4)))
        data = bytes(rng.choice(b"ab\r\n.") for _ in range(rng.randrange(0, 60)))
        parts: list[bytes] = []
        pos = 0
        while pos < len(data):
            step = rng.randrange(1, 6)
            parts.append(data[pos : pos + step])
            pos += step
        out = drain(EscapingProducer(ListProducer(parts), frm, to))
        assert out == data.replace(frm, to), (frm, to, parts)


def test_escaping_producer_rejects_empty_pattern_and_closes() -> None:
    with pytest.raises(ValueError, match="escape_from"):
        EscapingProducer(SimpleProducer(b""), b"", b"x")
    inner = ListProducer([b"a"])
    producer = EscapingProducer(inner)
    producer.close()
    assert inner.closed
    assert producer.more() == b""


def test_every_producer_satisfies_the_protocol(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"")
    with (tmp_path / "f").open("rb") as f:
        producers: list[object] = [
            SimpleProducer(b""),
            LinesProducer([]),
            FileProducer(f),
            CompositeProducer([]),
            GlobbingProducer(SimpleProducer(b"")),
            HookedProducer(SimpleProducer(b""), lambda n: None),
            ChunkedProducer(SimpleProducer(b"")),
            EscapingProducer(SimpleProducer(b"")),
        ]
        for producer in producers:
            assert isinstance(producer, Producer)
