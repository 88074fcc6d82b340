"""A sans-IO parser of HAProxy's PROXY protocol, versions 1 and 2.

A load balancer that relays TCP connections (HAProxy's ``send-proxy`` and
``send-proxy-v2``, nginx's ``proxy_protocol on``, AWS NLB, ...) writes one header before
the client's bytes, giving the client's address and port as the balancer saw them. The
specification is HAProxy's ``doc/proxy-protocol.txt`` ("The PROXY protocol, Versions 1 &
2"); sections cited below are that document's:

* §2.1, version 1: one US-ASCII line ``PROXY TCP4|TCP6|UNKNOWN <src> <dst> <sport>
  <dport>\\r\\n``, at most 107 bytes with its CRLF;
* §2.2, version 2: the 12-byte signature, a version/command byte, a family/transport byte, a
  16-bit big-endian length, then an address block and TLVs (type-length-value vectors,
  §2.2.1 to §2.2.8: ALPN, AUTHORITY, CRC32C, NOOP, UNIQUE_ID, SSL, NETNS...).

Nothing here does I/O: :func:`parse_proxy_header` takes the bytes received so far and says
whether the header is complete, malformed, or needs more bytes.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass

__all__ = [
    "MAX_V1_LENGTH",
    "MAX_V2_LENGTH",
    "V2_SIGNATURE",
    "ProxyHeader",
    "ProxyProtocolError",
    "crc32c",
    "looks_like_proxy_header",
    "parse_proxy_header",
]

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
"""The 12 bytes that open a version 2 header (§2.2)."""

MAX_V1_LENGTH = 107
"""Bytes of the longest version 1 line, its CRLF included (§2.1)."""

MAX_V2_LENGTH = 4096
"""Bytes of address block and TLVs accepted after a version 2 header's first 16 bytes.
The format allows 65,535; an IPv6 address block with the usual TLVs (ALPN, AUTHORITY,
CRC32C, UNIQUE_ID up to 128 bytes, SSL with version, cipher and a certificate's CN) takes a
few hundred, so a larger length is refused as a malformed header instead of making a
connection buffer up to 64 KiB before it is served."""

_V1_PREFIX = b"PROXY "
_V2_FIXED = 16
PP2_TYPE_CRC32C = 0x03
"""The TLV type of the header's CRC32c checksum (§2.2.3)."""

_ADDRESS_LENGTHS = {0x0: 0, 0x1: 12, 0x2: 36, 0x3: 216}
"""Address block bytes by family (§2.2): AF_UNSPEC, AF_INET, AF_INET6, AF_UNIX."""


class ProxyProtocolError(ValueError):
    """A PROXY protocol header that cannot be accepted; the message is a short reason
    (``"bad signature"``, ``"version 1 line without CRLF within 107 bytes"``) for a log
    line. The connection that sent it must be closed."""


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """One parsed PROXY protocol header.

    Attributes:
        version: 1 or 2.
        command: ``"PROXY"`` (a relayed connection) or ``"LOCAL"`` (version 2 only: a
            connection the proxy made itself, a health check; the receiver uses the real
            connection's endpoints, §2.2).
        source: the client's ``(host, port)`` (host as text, ``"192.0.2.1"`` or
            ``"2001:db8::1"``), or None when the header gives no usable address (LOCAL,
            version 1 ``UNKNOWN``, version 2 AF_UNSPEC or AF_UNIX): then the real peer
            stays the client.
        destination: the address the client connected to, ``(host, port)``, or None
            (same cases as ``source``).
        tlvs: version 2 TLVs in the order received, ``(type, value)`` with ``type`` an int
            0-255 and ``value`` bytes; empty for version 1.
    """

    version: int
    command: str
    source: tuple[str, int] | None
    destination: tuple[str, int] | None
    tlvs: tuple[tuple[int, bytes], ...] = ()


def looks_like_proxy_header(data: bytes) -> bool:
    """Whether ``data`` (the first bytes of a connection, at least one) could open a PROXY
    header: a prefix of ``"PROXY "`` or of the version 2 signature, or bytes that start with
    either. Used to refuse a header from a peer that is not trusted to send one.

    Args:
        data: the bytes received first; non-empty.
    """
    if not data:
        return False
    head = data[:12]
    return _V1_PREFIX.startswith(head[:6]) or V2_SIGNATURE.startswith(head)


def parse_proxy_header(data: bytes) -> tuple[ProxyHeader, int] | None:
    """Parse a PROXY protocol header (version 1 or 2) at the start of ``data``.

    Args:
        data: the bytes received so far on the connection (possibly more than the header:
            the client's first bytes may follow in the same read).

    Returns:
        None when ``data`` is a valid beginning of a header that is not complete yet (read
        more, then call again with everything received); else the header and the number of
        bytes it took (the client's data starts there).

    Raises:
        ProxyProtocolError: for anything else: neither signature (§2.1, §2.2), a version 1
            line over :data:`MAX_V1_LENGTH` bytes or not ending in CRLF, an unknown
            protocol, a bad address or port, a version other than 2 or a command other than
            LOCAL/PROXY in version 2, an unknown family or transport, a length shorter than
            the family's address block or over :data:`MAX_V2_LENGTH`, a TLV running past
            the header, a CRC32c TLV that does not match (§2.2.3).
    """
    if data[:1] == b"P":
        if len(data) < len(_V1_PREFIX):
            if _V1_PREFIX.startswith(data):
                return None
            raise ProxyProtocolError("bad signature")
        if not data.startswith(_V1_PREFIX):
            raise ProxyProtocolError("bad signature")
        return _parse_v1(data)
    if data[:1] == b"\r":
        if len(data) < len(V2_SIGNATURE):
            if V2_SIGNATURE.startswith(data):
                return None
            raise ProxyProtocolError("bad signature")
        if not data.startswith(V2_SIGNATURE):
            raise ProxyProtocolError("bad signature")
        return _parse_v2(data)
    if not data:
        return None
    raise ProxyProtocolError("bad signature")


def _parse_v1(data: bytes) -> tuple[ProxyHeader, int] | None:
    """§2.1: ``PROXY <proto> <src> <dst> <sport> <dport>\\r\\n``, single spaces."""
    end = data.find(b"\r\n", 0, MAX_V1_LENGTH)
    if end < 0:
        if len(data) >= MAX_V1_LENGTH:
            raise ProxyProtocolError("version 1 line without CRLF within 107 bytes")
        if b"\n" in data or (b"\r" in data[:-1]):
            raise ProxyProtocolError("version 1 line with a bare CR or LF")
        return None
    line = data[:end]
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        raise ProxyProtocolError("version 1 line not in ASCII") from None
    if "\r" in text or "\n" in text:
        raise ProxyProtocolError("version 1 line with a bare CR or LF")
    fields = text.split(" ")
    protocol = fields[1] if len(fields) > 1 else ""
    if protocol == "UNKNOWN":
        # "the receiver must ignore anything presented before the CRLF is found" (§2.1).
        return ProxyHeader(1, "PROXY", None, None), end + 2
    if protocol not in ("TCP4", "TCP6"):
        raise ProxyProtocolError(f"unknown version 1 protocol {protocol[:8]!r}")
    if len(fields) != 6:
        raise ProxyProtocolError("version 1 line without exactly 4 address fields")
    version = 4 if protocol == "TCP4" else 6
    source = (_v1_host(fields[2], version), _v1_port(fields[4]))
    destination = (_v1_host(fields[3], version), _v1_port(fields[5]))
    return ProxyHeader(1, "PROXY", source, destination), end + 2


def _v1_host(text: str, version: int) -> str:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise ProxyProtocolError(f"bad version 1 address {text[:40]!r}") from None
    if address.version != version or "%" in text:
        raise ProxyProtocolError(f"bad version 1 address {text[:40]!r}")
    return _host_text(address)


def _host_text(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """An address as logs and per-address limits see it: an IPv4-mapped IPv6 address
    (``::ffff:192.0.2.1``, what a dual-stack proxy reports for an IPv4 client) is the IPv4
    client ``192.0.2.1``."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _v1_port(text: str) -> int:
    # §2.1: a decimal number 0-65535; leading zeros are refused (they would make one port
    # readable in several ways, and no sender writes them).
    if not text or len(text) > 5 or not text.isascii() or not text.isdigit():
        raise ProxyProtocolError(f"bad version 1 port {text[:8]!r}")
    if (text[0] == "0" and text != "0") or int(text) > 65535:
        raise ProxyProtocolError(f"bad version 1 port {text[:8]!r}")
    return int(text)


def _parse_v2(data: bytes) -> tuple[ProxyHeader, int] | None:
    """§2.2: signature, ver_cmd, fam, len (big-endian), address block, TLVs."""
    if len(data) < 13:
        return None
    version_command = data[12]
    if version_command >> 4 != 2:
        raise ProxyProtocolError(f"unknown version 2 version nibble {version_command >> 4}")
    command_nibble = version_command & 0x0F
    if command_nibble > 1:
        raise ProxyProtocolError(f"unknown version 2 command {command_nibble}")
    if len(data) < 14:
        return None
    family, transport = data[13] >> 4, data[13] & 0x0F
    if family not in _ADDRESS_LENGTHS:
        raise ProxyProtocolError(f"unknown version 2 address family {family}")
    if transport > 2:
        raise ProxyProtocolError(f"unknown version 2 transport protocol {transport}")
    if len(data) < _V2_FIXED:
        return None
    (length,) = struct.unpack_from("!H", data, 14)
    if length > MAX_V2_LENGTH:
        raise ProxyProtocolError(f"version 2 length {length} over {MAX_V2_LENGTH} bytes")
    address_length = _ADDRESS_LENGTHS[family]
    if command_nibble == 1 and length < address_length:
        raise ProxyProtocolError(f"version 2 length {length} shorter than its address block")
    total = _V2_FIXED + length
    if len(data) < total:
        return None
    block = data[_V2_FIXED:total]
    if command_nibble == 0 and length < address_length:
        address_length = 0  # LOCAL: the address block is ignored (§2.2)
    tlvs = _parse_tlvs(block[address_length:])
    for kind, value in tlvs:
        if kind == PP2_TYPE_CRC32C:
            _check_crc(data[:total], _V2_FIXED + _tlv_offset(block, address_length), value)
    command = "PROXY" if command_nibble == 1 else "LOCAL"
    source = destination = None
    if command == "PROXY" and transport != 0 and family in (0x1, 0x2):
        if family == 0x1:
            src, dst, sport, dport = struct.unpack_from("!4s4sHH", block)
        else:
            src, dst, sport, dport = struct.unpack_from("!16s16sHH", block)
        source = (_host_text(ipaddress.ip_address(src)), sport)
        destination = (_host_text(ipaddress.ip_address(dst)), dport)
    return ProxyHeader(2, command, source, destination, tlvs), total


def _parse_tlvs(data: bytes) -> tuple[tuple[int, bytes], ...]:
    """TLVs (§2.2): one type byte, a 16-bit big-endian length, the value."""
    out: list[tuple[int, bytes]] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < 3:
            raise ProxyProtocolError("version 2 TLV cut short")
        kind = data[offset]
        (size,) = struct.unpack_from("!H", data, offset + 1)
        start = offset + 3
        if start + size > len(data):
            raise ProxyProtocolError(f"version 2 TLV of type {kind:#04x} runs past the header")
        out.append((kind, data[start : start + size]))
        offset = start + size
    return tuple(out)


def _tlv_offset(block: bytes, address_length: int) -> int:
    """Offset in ``block`` of the CRC32c TLV's value (the TLVs were checked already)."""
    offset = address_length
    while True:
        kind = block[offset]
        (size,) = struct.unpack_from("!H", block, offset + 1)
        if kind == PP2_TYPE_CRC32C:
            return offset + 3
        offset += 3 + size


def _check_crc(header: bytes, value_at: int, value: bytes) -> None:
    """§2.2.3: the CRC32c (RFC 4960 Appendix B) of the whole header with the checksum's
    four bytes set to zero must equal them; else the connection is dropped."""
    if len(value) != 4:
        raise ProxyProtocolError("version 2 CRC32C TLV not 4 bytes long")
    zeroed = header[:value_at] + b"\0\0\0\0" + header[value_at + 4 :]
    if crc32c(zeroed) != int.from_bytes(value, "big"):
        raise ProxyProtocolError("version 2 CRC32C checksum does not match")


def _crc32c_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """The CRC32c (Castagnoli, reflected polynomial 0x82F63B78; RFC 4960 Appendix B) of
    ``data``, as an unsigned 32-bit int. Pure Python: meant for headers (at most a few
    KiB), not bulk data."""
    crc = 0xFFFFFFFF
    table = _CRC32C_TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF
