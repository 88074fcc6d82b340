"""Malformed numbers, request-targets and Host fields, sent as raw bytes on real sockets on
both event loops (issue 13, items 8, 9 and 10): each gets its RFC answer (a 400, or the
field ignored), never a 500, and no traceback reaches the log.

* Numbers are ASCII digits only (RFC 5234 B.1): ``Range: bytes=\\xb2-`` (a superscript two,
  which ``str.isdigit`` accepts) is a malformed Range, ignored (200, RFC 9110 §14.2); a
  position of thousands of digits is beyond the end (416) or clamped; Content-Length the
  same way (400, or 413 when huge).
* Request-targets (RFC 9112 §3.2): a malformed absolute-form (``http://[``) is 400, the
  asterisk-form is for OPTIONS only, the absolute-form's authority replaces Host.
* Host (RFC 9112 §3.2): missing in HTTP/1.1, repeated, or invalid: 400.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from medusa.core.testing import ServerThread
from medusa.http import FileHandler, HTTPServer, Request

BACKENDS = ["asyncio", "uvloop"]
SMALL = b"0123456789" * 10
BIG = bytes(range(256)) * 800  # 204,800 bytes: over the small-file size, not cached


class HostEcho:
    """Answers /host with the Host the request ended up with."""

    def match(self, request: Request) -> bool:
        return request.path == "/host"

    def handle_request(self, request: Request) -> None:
        host = request.get_header("Host")
        request.respond(200, (host if host is not None else "(none)").encode())


@pytest.fixture(params=BACKENDS)
def port(
    request: pytest.FixtureRequest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> Iterator[int]:
    (tmp_path / "small.txt").write_bytes(SMALL)
    (tmp_path / "big.bin").write_bytes(BIG)
    server = HTTPServer(
        ("127.0.0.1", 0), handlers=[HostEcho(), FileHandler(tmp_path)], access_log=False
    )
    with (
        caplog.at_level(logging.DEBUG, logger="medusa"),
        ServerThread([server], backend=request.param),
    ):
        yield server.port
        # The server still answers a normal request.
        assert exchange(server.port, b"GET /small.txt HTTP/1.1\r\nHost: a\r\n\r\n")[0] == 200
    records = caplog.get_records("call") + caplog.records  # the test's, then this teardown's
    bad = [r for r in records if r.exc_info or r.levelno >= logging.ERROR]
    assert not bad, [r.getMessage() for r in bad]


def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``raw`` on a new connection; return the first response's status, headers
    (lower-case names) and body (read by its Content-Length)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(raw)
        stream = sock.makefile("rb")
        status = int(stream.readline().split()[1])
        headers = {}
        while (line := stream.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        body = stream.read(int(headers.get("content-length", "0")))
    return status, headers, body


def get(port: int, target: bytes, *fields: bytes, version: bytes = b"1.1") -> tuple[int, bytes]:
    lines = [b"GET " + target + b" HTTP/" + version, *fields]
    status, _, body = exchange(port, b"\r\n".join(lines) + b"\r\n\r\n")
    return status, body


HUGE = b"9" * 5000  # more digits than int() converts


# -- numbers (item 8) ---------------------------------------------------------------------


@pytest.mark.parametrize("name", [b"/small.txt", b"/big.bin"])
@pytest.mark.parametrize(
    ("value", "status", "part"),
    [
        (b"bytes=\xb2-", 200, None),  # U+00B2, a digit to str.isdigit: malformed, ignored
        (b"bytes=0-\xb9", 200, None),
        (b"bytes=-\xb3", 200, None),
        (b"bytes=" + HUGE + b"-", 416, None),  # starts beyond the end
        (b"bytes=" + HUGE + b"-" + HUGE, 416, None),
        (b"bytes=0-" + HUGE, 206, slice(0, None)),  # clamped to the end
        (b"bytes=-" + HUGE, 206, slice(0, None)),  # a suffix longer than the file
        (b"bytes=" + b"0" * 5000 + b"1-2", 206, slice(1, 3)),  # leading zeros
        (b"bytes=1-2", 206, slice(1, 3)),
    ],
)
def test_range_numbers(
    port: int, name: bytes, value: bytes, status: int, part: slice | None
) -> None:
    got, body = get(port, name, b"Host: a", b"Range: " + value)
    assert got == status
    whole = SMALL if name == b"/small.txt" else BIG
    if status == 200:
        assert body == whole
    elif part is not None:
        assert body == whole[part]


@pytest.mark.parametrize("value", [b"\xb2", b"1\xb2", b"+1", b"1_0", b" 1 1", HUGE, b"0x10", b"-1"])
def test_content_length_numbers(port: int, value: bytes) -> None:
    status, _ = get(port, b"/small.txt", b"Host: a", b"Content-Length: " + value)
    assert status in (400, 413)


@pytest.mark.parametrize(
    "value",
    [b"\xb2", b'"\xb2"', b"Sun, 06 Nov \xb9\xb9\xb9\xb9 08:49:37 GMT", HUGE, b"W/" + HUGE],
)
def test_if_range_and_dates(port: int, value: bytes) -> None:
    status, body = get(port, b"/small.txt", b"Host: a", b"Range: bytes=0-1", b"If-Range: " + value)
    assert (status, body) == (200, SMALL)  # If-Range does not match: the whole file
    for field in (b"If-Modified-Since", b"If-Unmodified-Since"):
        assert get(port, b"/small.txt", b"Host: a", field + b": " + value) == (200, SMALL)


@pytest.mark.parametrize("value", [b"gzip;q=\xb9", b"gzip;q=nan", b"gzip;q=1e9", b"gzip;q=" + HUGE])
def test_accept_encoding_weights(port: int, value: bytes) -> None:
    assert get(port, b"/small.txt", b"Host: a", b"Accept-Encoding: " + value) == (200, SMALL)


# -- request-targets (item 9) -------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        b"http://[",
        b"http://[::1",
        b"http://a]/",
        b"http://[::1]x/",
        b"http://[zz]/",
        b"http:///small.txt",
        b"http://:80/small.txt",
        b"http://user@a/small.txt",
        b"ftp://a/small.txt",
        b"http://a:999999/",
        b"*",
        b"a.example:80",
    ],
)
def test_malformed_targets_are_400(port: int, target: bytes) -> None:
    assert get(port, target, b"Host: a")[0] == 400


def test_asterisk_form_is_for_options(port: int) -> None:
    status, _, _ = exchange(port, b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
    assert status != 400


def test_absolute_form_authority_replaces_host(port: int) -> None:
    """RFC 9112 §3.2.2: the target's authority is the request's host."""
    assert get(port, b"http://b.example:8080/host", b"Host: a") == (200, b"b.example:8080")
    assert get(port, b"HTTP://[::1]/small.txt?x=1", b"Host: a") == (200, SMALL)


# -- Host (item 10) -----------------------------------------------------------------------


def test_http11_without_host_is_400(port: int) -> None:
    assert get(port, b"/small.txt")[0] == 400
    assert get(port, b"/small.txt", b"Content-Length: 0")[0] == 400


def test_http10_may_omit_host(port: int) -> None:
    assert get(port, b"/small.txt", version=b"1.0") == (200, SMALL)


def test_two_host_fields_are_400(port: int) -> None:
    assert get(port, b"/small.txt", b"Host: a", b"Host: b")[0] == 400
    assert get(port, b"/small.txt", b"Host: a", b"Host: a")[0] == 400
    assert get(port, b"/small.txt", b"Host: a", b"host: a", version=b"1.0")[0] == 400


@pytest.mark.parametrize(
    "value",
    [b"a/b", b"a\\b", b"a b", b"caf\xe9", b"[::1", b"::1", b"a:80:80", b"a:999999", b"%zz", b"a@b"],
)
def test_invalid_host_is_400(port: int, value: bytes) -> None:
    assert get(port, b"/small.txt", b"Host: " + value)[0] == 400
    assert get(port, b"/small.txt", b"Host: " + value, version=b"1.0")[0] == 400


@pytest.mark.parametrize(
    "value",
    [b"", b"a", b"a.example:8080", b"127.0.0.1", b"[::1]:80", b"xn--caf-dma.example", b"a:"],
)
def test_valid_host(port: int, value: bytes) -> None:
    assert get(port, b"/host", b"Host: " + value) == (200, value or b"")
