"""Tests of :mod:`medusa.core.trusted`: networks, IPv4-mapped addresses, the option check
and the configuration rule (a proxy switch needs ``proxy_trusted``)."""

from __future__ import annotations

import ipaddress

import pytest

from medusa.core.options import ConfigError
from medusa.core.server import Server
from medusa.core.trusted import TrustedNetworks, check_proxy_settings, check_trusted_option


def test_membership() -> None:
    trusted = TrustedNetworks(["127.0.0.1/32", "10.0.0.0/8", "fd00::/8", "192.0.2.7"])
    assert "127.0.0.1" in trusted
    assert "127.0.0.5" not in trusted
    assert "10.200.3.4" in trusted
    assert "11.0.0.1" not in trusted
    assert "fd12::1" in trusted
    assert "fe80::1%eth0" not in trusted
    assert "192.0.2.7" in trusted
    assert ipaddress.ip_address("10.0.0.1") in trusted
    # What a dual-stack listener reports for an IPv4 client.
    assert "::ffff:10.1.2.3" in trusted
    assert "::ffff:11.1.2.3" not in trusted
    for other in ("", "localhost", "/run/medusa.sock", None, ("10.0.0.1", 1), 167772161):
        assert other not in trusted
    assert len(trusted) == 4
    assert trusted
    assert not TrustedNetworks([])


def test_scoped_link_local() -> None:
    assert "fe80::1%eth0" in TrustedNetworks(["fe80::/10"])


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("10.0.0.0/8", "expected a list"),
        (["10.0.0.1/8"], "host bits set"),
        (["example.com"], "not an address or network"),
        (["10.0.0.0/33"], "not an address or network"),
        ([10], "is not a network"),
    ],
)
def test_option_check_refuses(value: object, reason: str) -> None:
    problem = check_trusted_option(value)
    assert problem is not None
    assert reason in problem
    if isinstance(value, list):
        with pytest.raises(ValueError, match=reason):
            TrustedNetworks(value)


def test_option_check_accepts() -> None:
    assert check_trusted_option(["127.0.0.1/32", "::1", "10.0.0.0/8"]) is None
    assert check_trusted_option([]) is None


@pytest.mark.parametrize("switch", ["proxy_protocol", "proxy_headers"])
def test_switch_without_trusted_is_a_config_error(switch: str) -> None:
    for kwargs in ({switch: True}, {switch: True, "proxy_trusted": []}):
        with pytest.raises(ConfigError) as info:
            check_proxy_settings(kwargs, source="medusa.toml", prefix="server[0]")
        assert info.value.key == "server[0].proxy_trusted"
        assert switch in str(info.value)
    check_proxy_settings({switch: False}, source="medusa.toml", prefix="server[0]")
    check_proxy_settings(
        {switch: True, "proxy_trusted": ["127.0.0.1"]}, source="medusa.toml", prefix="server[0]"
    )


def test_server_constructor_rules() -> None:
    with pytest.raises(ValueError, match="proxy_trusted"):
        Server(0, proxy_protocol=True)
    with pytest.raises(ValueError, match="proxy_timeout"):
        Server(0, proxy_protocol=True, proxy_trusted=["127.0.0.1"], proxy_timeout=0)
    off = Server(0, proxy_trusted=["127.0.0.1"])
    assert off.proxy_trusted is None
    assert "127.0.0.1" in off.trusted_proxies
    on = Server(0, proxy_protocol=True, proxy_trusted=["127.0.0.1"])
    assert on.proxy_trusted is not None
    assert "127.0.0.1" in on.proxy_trusted
    assert on.proxy_timeout == 10.0
