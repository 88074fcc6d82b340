"""medusa-dns as core's Resolver plugin: the entry point and the checked options."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

from medusa.core.options import ConfigError, validate_options
from medusa.core.resolver import Resolver, load_resolver, resolver_plugins
from medusa.dns.resolver import DNSResolver

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_the_entry_point_is_declared_and_importable() -> None:
    with PYPROJECT.open("rb") as f:
        project = tomllib.load(f)["project"]
    target = project["entry-points"]["medusa.resolvers"]["dns"]
    module, _, attribute = target.partition(":")
    assert getattr(importlib.import_module(module), attribute) is DNSResolver


def test_load_resolver_builds_a_checked_dns_resolver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "dns" not in {p.name for p in resolver_plugins()}:
        # Installed before the entry point existed: declare it in a distribution of our own,
        # found by importlib.metadata on sys.path like any installed one.
        info = tmp_path / "medusa_dns_probe-0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: medusa-dns-probe\n")
        (info / "entry_points.txt").write_text(
            "[medusa.resolvers]\ndns = medusa.dns.resolver:DNSResolver\n"
        )
        monkeypatch.syspath_prepend(str(tmp_path))
    resolver = load_resolver("dns", {"nameservers": ["127.0.0.1:5353"], "timeout": 0.5})
    assert isinstance(resolver, DNSResolver)
    assert resolver.nameservers == [("127.0.0.1", 5353)]
    assert resolver.timeout == 0.5
    with pytest.raises(ConfigError, match=r"medusa.toml: resolver\.timeout: expected a number"):
        load_resolver("dns", {"timeout": "soon"}, source="medusa.toml")


def test_unknown_resolver_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no resolver 'nope'"):
        load_resolver("nope", source="medusa.toml")


def test_options_are_checked() -> None:
    good = validate_options(
        {"nameservers": ["192.0.2.1", "[2001:db8::1]:53"], "cache_size": 5, "max_ttl": 60},
        DNSResolver.options,
        source="medusa.toml",
        prefix="resolver",
    )
    resolver = DNSResolver(**good)
    assert isinstance(resolver, Resolver)
    assert resolver.cache.max_entries == 5
    cases: list[tuple[dict[str, object], str]] = [
        ({"nameservers": ["ns.example.com"]}, "not an IP address"),
        ({"nameservers": []}, "non-empty list"),
        ({"attempts": 0}, "greater than 0"),
        ({"edns_payload": 100}, "512"),
        ({"retries": 3}, "unknown option"),
    ]
    for bad, match in cases:
        with pytest.raises(ConfigError, match=match):
            validate_options(bad, DNSResolver.options, source="medusa.toml", prefix="resolver")


def test_defaults_come_from_resolv_conf(tmp_path: Path) -> None:
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 192.0.2.53\noptions timeout:4 attempts:3\n", encoding="utf-8")
    resolver = DNSResolver(resolv_conf=str(conf))
    assert (resolver.nameservers, resolver.timeout, resolver.attempts) == (
        [("192.0.2.53", 53)],
        4.0,
        3,
    )
    empty = DNSResolver(resolv_conf=str(tmp_path / "absent"))
    assert (empty.nameservers, empty.timeout, empty.attempts) == ([("127.0.0.1", 53)], 2.0, 2)
    assert DNSResolver(["192.0.2.1"], timeout=1, resolv_conf=str(conf)).attempts == 3
