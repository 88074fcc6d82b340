"""resolv.conf parsing and name-server addresses."""

from __future__ import annotations

from pathlib import Path

import pytest

from medusa.dns.resolvconf import parse_nameserver, parse_resolv_conf, read_resolv_conf


def test_resolv_conf_servers_and_options() -> None:
    conf = parse_resolv_conf(
        "# comment\n"
        "search example.com\n"
        "nameserver 192.0.2.53\n"
        "; another comment\n"
        "nameserver not-an-address\n"
        "nameserver 2001:db8::53\n"
        "nameserver fe80::1%eth0\n"
        "options ndots:2 timeout:3 attempts:4 rotate\n"
    )
    assert conf.nameservers == [("192.0.2.53", 53), ("2001:db8::53", 53), ("fe80::1%eth0", 53)]
    assert conf.timeout == 3.0
    assert conf.attempts == 4
    assert parse_resolv_conf("options timeout:0 attempts:x\n").timeout is None


def test_missing_resolv_conf_reads_as_empty(tmp_path: Path) -> None:
    assert read_resolv_conf(str(tmp_path / "absent")).nameservers == []
    path = tmp_path / "resolv.conf"
    path.write_text("nameserver 127.0.0.53\n", encoding="utf-8")
    assert read_resolv_conf(str(path)).nameservers == [("127.0.0.53", 53)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("192.0.2.1", ("192.0.2.1", 53)),
        ("192.0.2.1:5353", ("192.0.2.1", 5353)),
        ("2001:db8::1", ("2001:db8::1", 53)),
        ("[2001:db8::1]:5353", ("2001:db8::1", 5353)),
        ("[::1]", ("::1", 53)),
        (" 127.0.0.1 ", ("127.0.0.1", 53)),
    ],
)
def test_nameserver_forms(text: str, expected: tuple[str, int]) -> None:
    assert parse_nameserver(text) == expected


@pytest.mark.parametrize(
    "text", ["ns.example.com", "192.0.2.1:0", "192.0.2.1:70000", "[::1", "[::1]x", "1.2.3.4:p"]
)
def test_bad_nameservers(text: str) -> None:
    with pytest.raises(ValueError, match="name server"):
        parse_nameserver(text)
