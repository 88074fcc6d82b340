"""Unit tests of :mod:`medusa.core.proxyprotocol` (HAProxy's proxy-protocol.txt §2.1, §2.2):
every valid form, every truncation (None until complete, never an error), garbage and
oversize headers."""

from __future__ import annotations

import socket
import struct

import pytest

from medusa.core.proxyprotocol import (
    MAX_V2_LENGTH,
    V2_SIGNATURE,
    ProxyHeader,
    ProxyProtocolError,
    crc32c,
    looks_like_proxy_header,
    parse_proxy_header,
)


def v2(
    command: int = 1,
    family: int = 1,
    transport: int = 1,
    addresses: bytes | None = None,
    tlvs: bytes = b"",
    length: int | None = None,
) -> bytes:
    """A version 2 header built by hand (§2.2)."""
    if addresses is None:
        addresses = {
            0: b"",
            1: socket.inet_aton("127.0.0.5") + socket.inet_aton("127.0.0.1") + b"\xd4\x31\x1f\x90",
            2: socket.inet_pton(socket.AF_INET6, "2001:db8::5")
            + socket.inet_pton(socket.AF_INET6, "::1")
            + struct.pack("!HH", 40000, 443),
            3: b"/src".ljust(108, b"\0") + b"/dst".ljust(108, b"\0"),
        }[family]
    body = addresses + tlvs
    size = len(body) if length is None else length
    return (
        V2_SIGNATURE
        + bytes([0x20 | command, family << 4 | transport])
        + struct.pack("!H", size)
        + body
    )


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack("!H", len(value)) + value


def with_crc(header_without_crc: bytes) -> bytes:
    """Append a CRC32C TLV (§2.2.3) to a version 2 header and fix its length and sum."""
    head = header_without_crc + tlv(0x03, b"\0\0\0\0")
    length = len(head) - 16
    head = head[:14] + struct.pack("!H", length) + head[16:]
    return head[:-4] + crc32c(head).to_bytes(4, "big")


VALID: list[tuple[bytes, ProxyHeader]] = [
    (
        b"PROXY TCP4 127.0.0.5 127.0.0.1 54321 8080\r\n",
        ProxyHeader(1, "PROXY", ("127.0.0.5", 54321), ("127.0.0.1", 8080)),
    ),
    (
        b"PROXY TCP6 2001:db8::5 ::1 65535 0\r\n",
        ProxyHeader(1, "PROXY", ("2001:db8::5", 65535), ("::1", 0)),
    ),
    (  # a dual-stack proxy's IPv4 client: the IPv4 address, as logs and limits want it
        b"PROXY TCP6 ::ffff:198.51.100.17 ::ffff:127.0.0.1 40000 80\r\n",
        ProxyHeader(1, "PROXY", ("198.51.100.17", 40000), ("127.0.0.1", 80)),
    ),
    (b"PROXY UNKNOWN\r\n", ProxyHeader(1, "PROXY", None, None)),
    (b"PROXY UNKNOWN ffff:: 1.2.3.4 1 2\r\n", ProxyHeader(1, "PROXY", None, None)),
    (v2(), ProxyHeader(2, "PROXY", ("127.0.0.5", 54321), ("127.0.0.1", 8080))),
    (v2(family=2), ProxyHeader(2, "PROXY", ("2001:db8::5", 40000), ("::1", 443))),
    (v2(command=0, family=0, transport=0), ProxyHeader(2, "LOCAL", None, None)),
    (v2(command=0), ProxyHeader(2, "LOCAL", None, None)),
    (v2(family=0, transport=0), ProxyHeader(2, "PROXY", None, None)),
    (v2(family=3), ProxyHeader(2, "PROXY", None, None)),
    (
        v2(tlvs=tlv(0x01, b"h2") + tlv(0x02, b"example.com") + tlv(0x04, b"")),
        ProxyHeader(
            2,
            "PROXY",
            ("127.0.0.5", 54321),
            ("127.0.0.1", 8080),
            ((0x01, b"h2"), (0x02, b"example.com"), (0x04, b"")),
        ),
    ),
    (
        # PP2_TYPE_SSL (§2.2.6): client flags, verify, then sub-TLVs (version, CN).
        v2(tlvs=tlv(0x20, b"\x07\0\0\0\0" + tlv(0x21, b"TLSv1.3") + tlv(0x22, b"client"))),
        ProxyHeader(
            2,
            "PROXY",
            ("127.0.0.5", 54321),
            ("127.0.0.1", 8080),
            ((0x20, b"\x07\0\0\0\0" + tlv(0x21, b"TLSv1.3") + tlv(0x22, b"client")),),
        ),
    ),
]


@pytest.mark.parametrize(("data", "expected"), VALID)
def test_valid_headers(data: bytes, expected: ProxyHeader) -> None:
    assert parse_proxy_header(data + b"GET / HTTP/1.1\r\n") == (expected, len(data))
    assert parse_proxy_header(data) == (expected, len(data))


@pytest.mark.parametrize(("data", "expected"), VALID)
def test_truncated_at_every_byte_needs_more(data: bytes, expected: ProxyHeader) -> None:
    for cut in range(len(data)):
        assert parse_proxy_header(data[:cut]) is None, cut
        assert looks_like_proxy_header(data[: max(cut, 1)])


def test_crc32c_known_value() -> None:
    # The check value of CRC-32C (Castagnoli) for "123456789".
    assert crc32c(b"123456789") == 0xE3069283


def test_crc32c_tlv_checked() -> None:
    good = with_crc(v2(tlvs=tlv(0x05, b"unique-id")))
    header, used = parse_proxy_header(good) or pytest.fail("incomplete")
    assert used == len(good)
    assert [kind for kind, _ in header.tlvs] == [0x05, 0x03]
    bad = good[:-1] + bytes([good[-1] ^ 1])
    with pytest.raises(ProxyProtocolError, match="CRC32C"):
        parse_proxy_header(bad)
    # A changed address is caught by the sum too.
    tampered = good[:19] + b"\x06" + good[20:]
    with pytest.raises(ProxyProtocolError, match="CRC32C"):
        parse_proxy_header(tampered)


BAD: list[tuple[bytes, str]] = [
    (b"GET / HTTP/1.1\r\n", "bad signature"),
    (b"\x16\x03\x01\x02\x00", "bad signature"),
    (b"PROXX TCP4", "bad signature"),
    (b"\r\n\r\n\x00\r\nQUIX\n", "bad signature"),
    (b"PROXY TCP5 1.2.3.4 1.2.3.5 1 2\r\n", "unknown version 1 protocol"),
    (b"PROXY TCP4 1.2.3.4 1.2.3.5 1\r\n", "exactly 4"),
    (b"PROXY TCP4  1.2.3.4 1.2.3.5 1 2\r\n", "exactly 4"),
    (b"PROXY TCP4 1.2.3.400 1.2.3.5 1 2\r\n", "bad version 1 address"),
    (b"PROXY TCP4 ::1 1.2.3.5 1 2\r\n", "bad version 1 address"),
    (b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "bad version 1 address"),
    (b"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n", "bad version 1 address"),
    (b"PROXY TCP4 1.2.3.4 1.2.3.5 65536 2\r\n", "bad version 1 port"),
    (b"PROXY TCP4 1.2.3.4 1.2.3.5 080 2\r\n", "bad version 1 port"),
    (b"PROXY TCP4 1.2.3.4 1.2.3.5 -1 2\r\n", "bad version 1 port"),
    (b"PROXY TCP4 1.2.3.4 1.2.3.5 \xd9\xa1 2\r\n", "ASCII"),
    (b"PROXY TCP4 1.2.3.4\n", "bare CR or LF"),
    (b"PROXY TCP4 1.2.3.4\r 1.2.3.5", "bare CR or LF"),
    (b"PROXY UNKNOWN " + b"x" * 200, "without CRLF within 107"),
    (b"PROXY TCP4 " + b"1" * 96 + b"\r\n", "without CRLF within 107"),
    (v2()[:12] + b"\x11" + v2()[13:], "version nibble"),
    (v2(command=2), "command"),
    (v2(family=4, addresses=b""), "address family"),
    (v2(transport=3), "transport"),
    (v2(length=MAX_V2_LENGTH + 1), "over 4096"),
    (v2(length=0xFFFF), "over 4096"),
    (v2(length=11), "shorter than its address block"),
    (v2(family=2, addresses=b"\0" * 35), "shorter than its address block"),
    (v2(tlvs=b"\x01\x00"), "TLV cut short"),
    (v2(tlvs=b"\x01\x00\x05ab"), "runs past the header"),
    (v2(tlvs=tlv(0x03, b"\0\0\0")), "not 4 bytes"),
]


@pytest.mark.parametrize(("data", "reason"), BAD)
def test_malformed_headers(data: bytes, reason: str) -> None:
    with pytest.raises(ProxyProtocolError, match=reason):
        parse_proxy_header(data)


def test_longest_v1_line_accepted() -> None:
    full = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
    longest = f"PROXY TCP6 {full} {full} 65535 65535\r\n".encode()
    assert len(longest) == 104
    header, used = parse_proxy_header(longest) or pytest.fail("incomplete")
    assert used == 104
    assert header.source == ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535)
    unknown = b"PROXY UNKNOWN " + b"x" * 91 + b"\r\n"
    assert len(unknown) == 107
    assert parse_proxy_header(unknown) == (ProxyHeader(1, "PROXY", None, None), 107)


def test_longest_v2_accepted() -> None:
    data = v2(tlvs=tlv(0x04, b"\0" * (MAX_V2_LENGTH - 12 - 3)))
    assert len(data) == 16 + MAX_V2_LENGTH
    _header, used = parse_proxy_header(data) or pytest.fail("incomplete")
    assert used == len(data)


def test_empty_input_needs_more() -> None:
    assert parse_proxy_header(b"") is None
    assert not looks_like_proxy_header(b"")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"P", True),
        (b"PROXY", True),
        (b"PROXY TCP4 1.2.3.4", True),
        (b"\r\n\r\n\x00", True),
        (V2_SIGNATURE + b"\x21", True),
        (b"PUT / HTTP/1.1\r\n", False),
        (b"USER anonymous\r\n", False),
        (b"\r\nGET / HTTP/1.1\r\n", False),
        (b"NICK alice\r\n", False),
    ],
)
def test_looks_like_proxy_header(data: bytes, expected: bool) -> None:
    assert looks_like_proxy_header(data) is expected
