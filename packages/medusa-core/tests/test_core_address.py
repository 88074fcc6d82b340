"""Tests of :class:`medusa.core.address.Address`: every accepted form and every error."""

from __future__ import annotations

import pytest

from medusa.core.address import DEFAULT_HOST, Address, AddressError


@pytest.mark.parametrize(
    ("text", "expected", "shown"),
    [
        ("8080", Address("127.0.0.1", 8080), "127.0.0.1:8080"),
        (" 8080 ", Address("127.0.0.1", 8080), "127.0.0.1:8080"),
        ("0", Address("127.0.0.1", 0), "127.0.0.1:0"),
        ("65535", Address("127.0.0.1", 65535), "127.0.0.1:65535"),
        (8080, Address("127.0.0.1", 8080), "127.0.0.1:8080"),
        (0, Address("127.0.0.1", 0), "127.0.0.1:0"),
        ("127.0.0.1:80", Address("127.0.0.1", 80), "127.0.0.1:80"),
        ("0.0.0.0:80", Address("0.0.0.0", 80), "0.0.0.0:80"),
        ("localhost:8080", Address("localhost", 8080), "localhost:8080"),
        ("example.org:21", Address("example.org", 21), "example.org:21"),
        ("*:8080", Address(None, 8080), "*:8080"),
        ("[::1]:8080", Address("::1", 8080), "[::1]:8080"),
        ("[::]:0", Address("::", 0), "[::]:0"),
        ("[2001:db8::1]:443", Address("2001:db8::1", 443), "[2001:db8::1]:443"),
        ("[fe80::1%eth0]:80", Address("fe80::1%eth0", 80), "[fe80::1%eth0]:80"),
        ("[::ffff:127.0.0.1]:80", Address("::ffff:127.0.0.1", 80), "[::ffff:127.0.0.1]:80"),
        ("unix:/run/medusa.sock", Address(None, 0, "/run/medusa.sock"), "unix:/run/medusa.sock"),
        ("unix:relative.sock", Address(None, 0, "relative.sock"), "unix:relative.sock"),
        ("unix:/with space/s", Address(None, 0, "/with space/s"), "unix:/with space/s"),
    ],
)
def test_accepted_forms(text: str | int, expected: Address, shown: str) -> None:
    address = Address.parse(text)
    assert address == expected
    assert str(address) == shown
    assert Address.parse(shown) == address  # str() round-trips


def test_default_host() -> None:
    assert DEFAULT_HOST == "127.0.0.1"
    assert Address() == Address("127.0.0.1", 0, None)
    assert Address.parse("80", default_host="::1") == Address("::1", 80)
    assert Address.parse(81, default_host="0.0.0.0") == Address("0.0.0.0", 81)
    assert str(Address("::1", 80)) == "[::1]:80"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "expected PORT"),
        ("   ", "expected PORT"),
        ("http", "expected PORT"),
        (":8080", "expected PORT"),
        ("host:", "port must be"),
        ("host:http", "port must be"),
        ("host:65536", "port must be"),
        ("host:-1", "port must be"),
        ("host:+80", "port must be"),
        ("host:8 0", "port must be"),
        ("65536", "port must be"),
        ("99999999999999999999", "port must be"),
        ("-1", "expected PORT"),
        ("\u00b2", "expected PORT"),  # superscript two: str.isdigit() says yes
        ("\u0663\u0660", "expected PORT"),  # Arabic-Indic digits
        ("host:\u00b9\u00b2", "port must be"),
        ("::1:8080", "expected PORT"),
        ("a:b:c", "expected PORT"),
        ("[::1]", "expected \\[IPv6\\]:PORT"),
        ("[::1]8080", "expected \\[IPv6\\]:PORT"),
        ("[::1", "expected \\[IPv6\\]:PORT"),
        ("[::1]:", "port must be"),
        ("[::1]:x", "port must be"),
        ("[]:80", "not an IPv6 address"),
        ("[example.org]:80", "not an IPv6 address"),
        ("[127.0.0.1]:80", "not an IPv6 address"),
        ("unix:", "empty Unix socket path"),
        (70000, "port must be"),
        (-1, "port must be"),
        (True, "expected a port number"),
        (8080.0, "expected a port number"),
        (None, "expected a port number"),
    ],
)
def test_errors(text: object, reason: str) -> None:
    with pytest.raises(AddressError, match=reason) as info:
        Address.parse(text)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)  # callers may catch ValueError
    given = text.strip() if isinstance(text, str) else text
    assert repr(given) in str(info.value)  # the message quotes what was given


def test_address_is_immutable_and_hashable() -> None:
    address = Address.parse("[::1]:80")
    with pytest.raises(AttributeError):
        address.port = 81  # type: ignore[misc]
    assert {address, Address("::1", 80)} == {address}
