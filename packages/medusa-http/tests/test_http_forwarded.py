"""Unit tests of :mod:`medusa.http.forwarded`: RFC 7239 ``Forwarded`` parsing (§4 grammar,
§6 nodes), the walk from the right over trusted proxies (nginx's real_ip_recursive), the
scheme of the chosen hop, ``X-Forwarded-For``/``X-Forwarded-Proto``, and malformed values
(ignored: None, never an exception)."""

from __future__ import annotations

import pytest

from medusa.core.trusted import TrustedNetworks
from medusa.http.forwarded import ForwardedClient, forwarded_client, parse_forwarded, parse_node

TRUSTED = TrustedNetworks(["127.0.0.1/32", "10.0.0.0/8", "fd00::/8"])


def test_parse_forwarded_grammar() -> None:
    assert parse_forwarded('for=192.0.2.43;proto=https;by="[2001:db8::1]:80"') == [
        {"for": "192.0.2.43", "proto": "https", "by": "[2001:db8::1]:80"}
    ]
    assert parse_forwarded("For=a, for=b,for=c") == [{"for": "a"}, {"for": "b"}, {"for": "c"}]
    assert parse_forwarded('for="\\"quoted\\""') == [{"for": '"quoted"'}]
    assert parse_forwarded("for=a, , for=b") == [{"for": "a"}, {"for": "b"}]
    for bad in (
        "",
        "for",
        "for=",
        "for=a;for=b",
        "for=a b",
        'for="open',
        "for=a;",
        "=a",
        "for=a\x00",
    ):
        assert parse_forwarded(bad) is None, bad


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        ("192.0.2.43", ("192.0.2.43", 0)),
        ("192.0.2.43:47011", ("192.0.2.43", 47011)),
        ("[2001:db8:cafe::17]", ("2001:db8:cafe::17", 0)),
        ("[2001:db8:cafe::17]:4711", ("2001:db8:cafe::17", 4711)),
        ("2001:db8::17", ("2001:db8::17", 0)),
        ("unknown", None),
        ("_hidden", None),
        ("192.0.2.43:_port", None),
        ("::ffff:198.51.100.17", ("198.51.100.17", 0)),
        ("[::ffff:198.51.100.17]:80", ("198.51.100.17", 80)),
    ],
)
def test_parse_node(node: str, expected: tuple[str, int] | None) -> None:
    assert parse_node(node) == expected


@pytest.mark.parametrize(
    "node",
    [
        "example.com",
        "192.0.2.256",
        "[2001:db8::17",
        "[::1]x",
        "1.2.3.4:99999",
        "1.2.3.4:x",
        'fe80::1%" 200 99 "forged',  # a zone identifier is any text: a forged log line
        "[fe80::1%eth0]:80",
    ],
)
def test_parse_node_refuses(node: str) -> None:
    with pytest.raises(ValueError, match=r"address|bad|does not appear|zone"):
        parse_node(node)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        # One trusted proxy: its element is the right-most.
        ({"forwarded": "for=127.0.0.5;proto=https"}, ForwardedClient(("127.0.0.5", 0), "https")),
        # A client's own forged element on the left is not taken.
        (
            {"forwarded": 'for=6.6.6.6;proto=http, for="127.0.0.5:3456";proto=https'},
            ForwardedClient(("127.0.0.5", 3456), "https"),
        ),
        # Two trusted hops: skipped from the right; the scheme is the outer hop's.
        (
            {"forwarded": "for=192.0.2.9;proto=https, for=10.1.1.1;proto=http"},
            ForwardedClient(("192.0.2.9", 0), "https"),
        ),
        # Every hop trusted: the left-most.
        ({"forwarded": "for=10.0.0.9, for=10.0.0.8"}, ForwardedClient(("10.0.0.9", 0), None)),
        (
            {"forwarded": 'for="[fd00::5]", for="[2001:db8::5]:80"'},
            ForwardedClient(("2001:db8::5", 80), None),
        ),
        # unknown/obfuscated: no address, the scheme still applies.
        ({"forwarded": "for=unknown;proto=https"}, ForwardedClient(None, "https")),
        ({"forwarded": "proto=https"}, ForwardedClient(None, "https")),
        ({"forwarded": "for=1.2.3.4;proto=gopher"}, ForwardedClient(("1.2.3.4", 0), None)),
        # Forwarded wins over X-Forwarded-*.
        (
            {
                "forwarded": "for=1.2.3.4",
                "x-forwarded-for": "5.6.7.8",
                "x-forwarded-proto": "https",
            },
            ForwardedClient(("1.2.3.4", 0), None),
        ),
        ({"x-forwarded-for": "127.0.0.5"}, ForwardedClient(("127.0.0.5", 0), None)),
        (
            {"x-forwarded-for": "6.6.6.6, 127.0.0.5", "x-forwarded-proto": "https"},
            ForwardedClient(("127.0.0.5", 0), "https"),
        ),
        (
            {"x-forwarded-for": "192.0.2.1, 10.0.0.2", "x-forwarded-proto": "https, http"},
            ForwardedClient(("192.0.2.1", 0), "https"),
        ),
        ({"x-forwarded-for": " 2001:db8::1 "}, ForwardedClient(("2001:db8::1", 0), None)),
        ({"x-forwarded-proto": "HTTPS"}, ForwardedClient(None, "https")),
        (
            {"x-forwarded-for": "192.0.2.1, 10.0.0.2", "x-forwarded-proto": "https"},
            ForwardedClient(("192.0.2.1", 0), "https"),
        ),
        ({}, None),
        ({"host": "x"}, None),
    ],
)
def test_forwarded_client(headers: dict[str, str], expected: ForwardedClient | None) -> None:
    assert forwarded_client(headers, TRUSTED) == expected


@pytest.mark.parametrize(
    "headers",
    [
        {"forwarded": "for=example.com"},
        {"forwarded": "for=1.2.3.4;for=5.6.7.8"},
        {"forwarded": "garbage"},
        {"forwarded": 'for="1.2.3.4', "x-forwarded-for": "5.6.7.8"},
        {"x-forwarded-for": "not-an-address"},
        {"x-forwarded-for": "1.2.3.4, , 10.0.0.1"},
        {"x-forwarded-for": "1.2.3.4:99999"},
        {"x-forwarded-for": "\x00" * 100},
    ],
)
def test_malformed_values_are_ignored(headers: dict[str, str]) -> None:
    assert forwarded_client(headers, TRUSTED) is None
