"""A seeded, bounded mutation fuzz of HTTP requests against a real server on both event loops
(issue 13): valid requests (GET with Range and If-*, PUT with Content-Length or chunked
bodies behind Basic authentication, absolute-form targets, Host variants, Expect, OPTIONS *,
the listing and the status page) mutated byte-wise (other scripts' digits, huge numbers, NUL,
CR and LF injections, truncation, repeated and dropped fields, bad percent-encodings,
non-ASCII bytes, odd methods and versions), sent several to a connection among valid ones.

Asserted: no response has a 5xx status (but 501 for a transfer coding other than a lone
``chunked`` and 505 for a version other than 1.0 and 1.1, the RFC answers to those
requests), nothing is logged at ERROR or with a traceback, no medusa log record holds a
control character (a client cannot forge log lines), and the server still answers a normal
request at the end.

``MEDUSA_FUZZ_CASES`` sets the number of mutated requests (default 3000, half on each event
loop); ``MEDUSA_FUZZ_SEED`` replays a run. The seed is printed, and named in every failure
with the bytes of the batch that failed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import random
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from medusa.core.testing import ServerThread
from medusa.http import FileHandler, HTTPServer
from medusa.http.auth import BasicAuthHandler
from medusa.http.listing import DirectoryListingHandler
from medusa.http.put import PutHandler
from medusa.http.status_page import StatusHandler

CASES = int(os.environ.get("MEDUSA_FUZZ_CASES", "3000"))
SEED = int(os.environ.get("MEDUSA_FUZZ_SEED", str(random.randrange(2**32))))
BATCH = 4
_CLIENT_5XX = frozenset({501, 505})
"""5xx statuses that answer what the client sent: 501 for a transfer coding other than a
lone ``chunked`` (RFC 9112 §6.1), 505 for an HTTP version other than 1.0 and 1.1 (RFC 9110
§15.6.6)."""
"""Requests sent on one connection, each mutated or not at even odds (then the connection is
half-closed and read to its end): valid requests around a mutated one show that the
connection is still in step, or was closed."""
TIMEOUT = 15.0

SMALL = b"abcdefghij" * 20
LARGE = b"0123456789abcdef" * 8192  # 128 KiB: over the small-file size
AUTH = "Basic " + base64.b64encode(b"alice:wonder land").decode()

CORPUS: list[bytes] = [
    b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\nRange: bytes=0-9\r\n\r\n",
    b"GET /large.bin HTTP/1.1\r\nHost: localhost:8080\r\nRange: bytes=-100\r\n"
    b'If-Range: "0-0"\r\n\r\n',
    b"GET /large.bin HTTP/1.1\r\nHost: localhost\r\nRange: bytes=100-\r\n"
    b"If-Range: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n",
    b'GET /small.txt HTTP/1.1\r\nHost: localhost\r\nIf-None-Match: "x", W/"y"\r\n'
    b"If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n",
    b"GET /small.txt HTTP/1.1\r\nHost: localhost\r\nIf-Match: *\r\n"
    b"If-Unmodified-Since: Sunday, 06-Nov-94 08:49:37 GMT\r\n\r\n",
    b"HEAD /dir/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /dir/ HTTP/1.1\r\nHost: [::1]:8080\r\nAccept-Encoding: gzip;q=0.5, br\r\n\r\n",
    b"GET /status?format=json HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"GET /status HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: gzip\r\n\r\n",
    b"PUT /up/a.txt HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + AUTH.encode() + b"\r\n"
    b"Content-Length: 5\r\n\r\nhello",
    b"PUT /up/b.txt HTTP/1.1\r\nHost: localhost\r\nAuthorization: " + AUTH.encode() + b"\r\n"
    b"Transfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"PUT /up/c.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 3\r\n\r\nabc",
    b"DELETE /up/a.txt HTTP/1.1\r\nHost: localhost\r\nAuthorization: "
    + AUTH.encode()
    + b"\r\n\r\n",
    b"GET http://localhost:8080/small.txt?x=1 HTTP/1.1\r\nHost: other\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"GET /%73mall.txt?q=%41%zz HTTP/1.1\r\nHost: localhost\r\n\r\n",
    b"GET /small.txt HTTP/1.0\r\n\r\n",
    b"GET /small.txt HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST /small.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\r\nbody",
    b"GET /dir HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
]

DIGITS = [b"\xb2", b"\xb3", b"\xb9", b"\xd9\xa3", b"9" * 5000, b"0" * 300 + b"1", b"-1", b"+5"]
DIGITS += [b"18446744073709551616", b"0x10", b"1_0", b" 1", b"1e3"]
INJECTIONS = [b"\x00", b"\r", b"\n", b"\r\n", b"\r\n\r\n", b" ", b"\t", b":", b",", b";"]
NON_ASCII = [b"\xff", b"\x80", b"\xc3\xa9", b"\xe2\x98\x83", b"\xc3\x28", b"\xf0\x9f\x92\xa9"]
PERCENT = [b"%", b"%z", b"%zz", b"%00", b"%c3%28", b"%2e%2e/", b"%%", b"%ff"]
HOSTS = [b"", b"[::1", b"a/b", b"a b", b"caf\xc3\xa9", b"a:99999999", b"[::1]:80", b"a:"]
TARGETS = [b"http://[", b"http://[::1", b"http://a]/", b"*", b"ftp://a/", b"http://u@a/"]
TARGETS += [b"a.example:80", b"http:///x", b"//x", b"/" + b"a" * 9000, b"http://a/%zz"]
METHODS = [b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE", b"PATCH", b"CONNECT"]
METHODS += [b"BREW", b"get", b"G\xc3\x89T"]
VERSIONS = [b"HTTP/1.0", b"HTTP/1.1", b"HTTP/2.0", b"HTTP/0.9", b"HTTP/1.12", b"HTTX/1.1"]

_STATUS = re.compile(rb"HTTP/1\.[01] (\d{3}) ")


def _digit_runs(data: bytes) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(rb"[0-9]+", data)]


def _lines(data: bytes) -> list[tuple[int, int]]:
    """Spans of the head's field lines (without the request line), CRLF included."""
    head_end = data.find(b"\r\n\r\n")
    first = data.find(b"\r\n")
    if head_end == -1 or first == -1 or first >= head_end:
        return []
    spans = []
    start = first + 2
    while start < head_end + 2:
        end = data.find(b"\r\n", start) + 2
        spans.append((start, end))
        start = end
    return spans


def mutate(rng: random.Random, data: bytes) -> bytes:
    """Return ``data`` with one to three mutations."""
    for _ in range(rng.randint(1, 3)):
        data = rng.choice(MUTATIONS)(rng, data)
    return data


def _replace_digits(rng: random.Random, data: bytes) -> bytes:
    runs = _digit_runs(data)
    if not runs:
        return data
    start, end = rng.choice(runs)
    return data[:start] + rng.choice(DIGITS) + data[end:]


def _insert(pool: list[bytes]) -> Callable[[random.Random, bytes], bytes]:
    def insert(rng: random.Random, data: bytes) -> bytes:
        at = rng.randrange(len(data) + 1)
        return data[:at] + rng.choice(pool) + data[at:]

    return insert


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def _duplicate_field(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    if not lines:
        return data
    start, end = rng.choice(lines)
    return data[:end] + data[start:end] + data[end:]


def _drop_field(rng: random.Random, data: bytes) -> bytes:
    lines = _lines(data)
    if not lines:
        return data
    start, end = rng.choice(lines)
    return data[:start] + data[end:]


def _bad_percent(rng: random.Random, data: bytes) -> bytes:
    space = data.find(b" ")
    second = data.find(b" ", space + 1)
    if space == -1 or second == -1:
        return data
    at = rng.randrange(space + 1, second + 1)
    return data[:at] + rng.choice(PERCENT) + data[at:]


def _flip_byte(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    return data[:at] + bytes([rng.randrange(256)]) + data[at + 1 :]


def _host(rng: random.Random, data: bytes) -> bytes:
    value = rng.choice(HOSTS)
    match = re.search(rb"\r\nHost: [^\r]*", data)
    if match is None or rng.random() < 0.3:
        end = data.find(b"\r\n")
        return data[: end + 2] + b"Host: " + value + b"\r\n" + data[end + 2 :]
    return data[: match.start()] + b"\r\nHost: " + value + data[match.end() :]


def _part(index: int) -> Callable[[random.Random, bytes], bytes]:
    """Replace part ``index`` of the request line (method, target, version)."""
    pools = [METHODS, TARGETS, VERSIONS]

    def replace(rng: random.Random, data: bytes) -> bytes:
        end = data.find(b"\r\n")
        if end == -1:
            return data
        parts = data[:end].split(b" ")
        if len(parts) != 3:
            return data
        parts[index] = rng.choice(pools[index])
        return b" ".join(parts) + data[end:]

    return replace


def _long_field(rng: random.Random, data: bytes) -> bytes:
    end = data.find(b"\r\n")
    if end == -1:
        return data
    field = b"X-Long: " + b"a" * rng.choice([100, 9000, 70000]) + b"\r\n"
    return data[: end + 2] + field * rng.choice([1, 2, 150]) + data[end + 2 :]


def _lf_only(rng: random.Random, data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


MUTATIONS: list[Callable[[random.Random, bytes], bytes]] = [
    _replace_digits,
    _replace_digits,
    _insert(INJECTIONS),
    _insert(NON_ASCII),
    _truncate,
    _duplicate_field,
    _drop_field,
    _bad_percent,
    _flip_byte,
    _host,
    _part(0),
    _part(1),
    _part(2),
    _long_field,
    _lf_only,
]


@contextlib.contextmanager
def fuzz_server(tmp_path: Path, backend: str) -> Iterator[HTTPServer]:
    """An HTTP server with files, a listing, the status page and PUT behind Basic
    authentication, on ``backend``."""
    root = tmp_path / "site"
    (root / "dir" / "sub").mkdir(parents=True)
    (root / "small.txt").write_bytes(SMALL)
    (root / "large.bin").write_bytes(LARGE)
    (root / "dir" / "x.txt").write_bytes(b"x")
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    # A cheap scrypt entry (n=2): wrong passwords are checked many times here.
    salt = b"0123456789abcdef"
    key = hashlib.scrypt(b"wonder land", salt=salt, n=2, r=1, p=1, dklen=32)
    passwords = tmp_path / "passwords"
    passwords.write_text(
        f"alice:$scrypt$n=2,r=1,p=1${base64.b64encode(salt).decode()}$"
        f"{base64.b64encode(key).decode()}\n"
    )
    put = PutHandler(uploads, prefix="/up", delete=True)
    http = HTTPServer(
        ("127.0.0.1", 0),
        handlers=[
            StatusHandler("/status"),
            BasicAuthHandler(put, str(passwords), max_failures=0, failure_delay=0),
            DirectoryListingHandler(root),
            FileHandler(root, gzip=True),
        ],
        access_log=False,
        max_body_size=65536,
    )
    with ServerThread([http], backend=backend):
        yield http


@pytest.fixture(params=["asyncio", "uvloop"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[HTTPServer]:
    with fuzz_server(tmp_path, request.param) as http:
        yield http


def exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` on a new connection, half-close it, and return all the server sent
    until it closed."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server closed first (a refused request): read what it answered
        received = []
        try:
            while chunk := sock.recv(65536):
                received.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(received)


def test_fuzz_http(server: HTTPServer, request: pytest.FixtureRequest) -> None:
    backend = request.node.callspec.params["server"]
    seed = SEED + (backend == "uvloop")
    print(f"MEDUSA_FUZZ_SEED={SEED} ({backend}: {seed}), {CASES // 2} cases")
    rng = random.Random(seed)
    failures: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR or record.exc_info:
                failures.append(record)
            elif record.name.startswith("medusa") and not record.getMessage().isprintable():
                failures.append(record)  # a forged line

    collect = Collect()
    logger = logging.getLogger()  # the root: medusa's loggers, and asyncio's for the loop
    logger.addHandler(collect)
    try:
        done = 0
        while done < CASES // 2:
            batch = []
            for _ in range(BATCH):
                request_bytes = rng.choice(CORPUS)
                if rng.random() < 0.5 and done < CASES // 2:
                    request_bytes = mutate(rng, request_bytes)
                    done += 1
                batch.append(request_bytes)
            data = b"".join(batch)
            answer = exchange(server.port, data)
            statuses = [int(s) for s in _STATUS.findall(answer)]
            where = f"seed {SEED} ({backend}), batch {data[:3000]!r}"
            refused = [s for s in statuses if s >= 500 and s not in _CLIENT_5XX]
            assert not refused, f"5xx {statuses}: {where}"
            assert not failures, f"logged {[r.getMessage() for r in failures]}: {where}"
        normal = exchange(
            server.port, CORPUS[0].replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
        )
        assert normal.startswith(b"HTTP/1.1 206 "), normal[:200]
    finally:
        logger.removeHandler(collect)
