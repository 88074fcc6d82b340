"""DNSResolver against a real dnsmasq on 127.0.0.1 (started by the tests, own hosts file),
on both event loops."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import dns.message
import dns.query
import pytest

from medusa.core.loop import finish_loop, new_event_loop
from medusa.core.resolver import NameNotFoundError, ResolutionError, Resolver
from medusa.core.testing import require_tool, wait_until
from medusa.dns.dnsmasq import Dnsmasq
from medusa.dns.resolver import DNSResolver

T = TypeVar("T")
BACKENDS = ["asyncio", "uvloop"]
TTL = 30
HOSTS = {
    "host.test": ["10.1.2.3", "fd00::5"],
    "v4only.test": ["10.1.2.4"],
    "client.test": ["127.0.0.1"],
    "big.test": [f"10.9.0.{i}" for i in range(1, 61)],  # about 1000 bytes: over 512
    "moving.test": ["10.7.0.1"],
    **{f"n{i}.test": [f"10.8.0.{i}"] for i in range(1, 4)},
}


class Clock:
    """A monotonic clock the test moves by hand (the cache's time source)."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def dnsmasq() -> Iterator[Dnsmasq]:
    require_tool("dnsmasq", "apt-get install dnsmasq-base")
    with Dnsmasq(HOSTS, ttl=TTL, extra_args=["--cname=cn.test,host.test"]) as server:
        yield server


@pytest.fixture
def silent() -> Iterator[str]:
    """A name server that never answers: a UDP socket that is bound and never read."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def run(backend: str, main: Callable[[], Awaitable[T]]) -> T:
    loop = new_event_loop(backend)
    try:

        async def wrapper() -> T:
            return await main()

        return loop.run_until_complete(wrapper())
    finally:
        finish_loop(loop)
        loop.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_lookups(dnsmasq: Dnsmasq, backend: str) -> None:
    resolver = DNSResolver([dnsmasq.nameserver], timeout=2, attempts=1)
    assert isinstance(resolver, Resolver)

    async def main() -> None:
        assert await resolver.resolve("host.test", socket.AF_INET) == ["10.1.2.3"]
        assert await resolver.resolve("host.test", socket.AF_INET6) == ["fd00::5"]
        assert await resolver.resolve("HOST.test.") == ["10.1.2.3", "fd00::5"]
        assert await resolver.resolve("cn.test", socket.AF_INET) == ["10.1.2.3"]  # CNAME
        assert await resolver.resolve("v4only.test") == ["10.1.2.4"]  # AAAA: NODATA
        with pytest.raises(NameNotFoundError):
            await resolver.resolve("v4only.test", socket.AF_INET6)
        assert await resolver.resolve("192.0.2.7") == ["192.0.2.7"]
        with pytest.raises(ValueError, match="family"):
            await resolver.resolve("host.test", socket.AF_UNIX)
        with pytest.raises(ValueError, match="bad domain name"):
            await resolver.resolve("a" * 64 + ".test")

    run(backend, main)
    counters = resolver.counters
    # host A and AAAA, cn A, v4only A and AAAA; HOST.test. twice and v4only AAAA from the cache
    assert (counters.queries, counters.hits, counters.misses) == (5, 3, 5)
    assert (counters.failures, counters.negatives) == (0, 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_reverse_lookups(dnsmasq: Dnsmasq, backend: str) -> None:
    resolver = DNSResolver([dnsmasq.nameserver], timeout=2, attempts=1)

    async def main() -> None:
        assert await resolver.reverse("10.1.2.3") == "host.test"
        assert await resolver.reverse("fd00::5") == "host.test"
        assert await resolver.reverse("::ffff:127.0.0.1") == "client.test"
        assert await resolver.reverse("10.99.99.99") is None  # NXDOMAIN in the reverse zone
        with pytest.raises(ValueError, match="does not appear to be"):
            await resolver.reverse("not-an-address")

    run(backend, main)
    assert resolver.cached_reverse("10.1.2.3") == "host.test"
    assert resolver.cached_reverse("127.0.0.1") == "client.test"
    assert resolver.cached_reverse("10.99.99.99") is None
    assert resolver.cached_reverse("junk") is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_nxdomain_is_cached_for_the_soa_ttl(dnsmasq: Dnsmasq, backend: str) -> None:
    clock = Clock()
    resolver = DNSResolver([dnsmasq.nameserver], timeout=2, attempts=1, clock=clock)

    async def lookup() -> None:
        with pytest.raises(NameNotFoundError):
            await resolver.resolve("nope.test", socket.AF_INET)

    run(backend, lookup)
    assert (resolver.counters.queries, resolver.counters.negatives) == (1, 1)
    clock.now += TTL - 1
    run(backend, lookup)
    assert (resolver.counters.queries, resolver.counters.hits) == (1, 1)
    clock.now += 1  # the SOA's MINIMUM (the zone's TTL) has passed
    run(backend, lookup)
    assert resolver.counters.queries == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_answers_are_kept_for_their_ttl_then_asked_again(dnsmasq: Dnsmasq, backend: str) -> None:
    clock = Clock()
    resolver = DNSResolver([dnsmasq.nameserver], timeout=2, attempts=1, clock=clock)

    def lookup() -> list[str]:
        return run(backend, lambda: resolver.resolve("moving.test", socket.AF_INET))

    before = lookup()
    new = "10.7.0.2" if before == ["10.7.0.1"] else "10.7.0.1"
    dnsmasq.hosts["moving.test"] = [new]
    dnsmasq.reload()
    query = dns.message.make_query("moving.test", "A")

    def served() -> bool:
        reply = dns.query.udp(query, "127.0.0.1", port=dnsmasq.port, timeout=2)
        return [str(rd) for rrset in reply.answer for rd in rrset] == [new]

    wait_until(served, what="dnsmasq to read its new hosts file")
    clock.now += TTL - 0.5
    assert lookup() == before  # still cached
    assert resolver.counters.queries == 1
    clock.now += 0.5
    assert lookup() == [new]
    assert resolver.counters.queries == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_truncated_answers_are_asked_again_over_tcp(dnsmasq: Dnsmasq, backend: str) -> None:
    plain = DNSResolver([dnsmasq.nameserver], timeout=2, attempts=1)
    edns = DNSResolver([dnsmasq.nameserver], timeout=2, attempts=1, edns_payload=4096)
    expected = sorted(HOSTS["big.test"])
    assert sorted(run(backend, lambda: plain.resolve("big.test", socket.AF_INET))) == expected
    assert plain.counters.tcp_queries == 1
    assert plain.counters.queries == 2
    assert sorted(run(backend, lambda: edns.resolve("big.test", socket.AF_INET))) == expected
    assert edns.counters.tcp_queries == 0  # a 4096-byte EDNS payload holds the answer


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_server_that_never_answers(silent: str, backend: str) -> None:
    clock = Clock()
    resolver = DNSResolver([silent], timeout=0.1, attempts=2, clock=clock, failure_ttl=10)

    async def lookup() -> None:
        with pytest.raises(ResolutionError) as info:
            await resolver.resolve("host.test", socket.AF_INET)
        assert not isinstance(info.value, NameNotFoundError)

    run(backend, lookup)
    counters = resolver.counters
    assert (counters.queries, counters.timeouts, counters.failures) == (2, 2, 1)
    run(backend, lookup)  # the failure is remembered for failure_ttl
    assert counters.queries == 2
    clock.now += 10
    run(backend, lookup)
    assert counters.queries == 4
    with pytest.raises(ResolutionError):
        run(backend, lambda: resolver.reverse("10.1.2.3"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_next_server_is_asked_when_one_fails(
    dnsmasq: Dnsmasq, silent: str, backend: str
) -> None:
    resolver = DNSResolver([silent, dnsmasq.nameserver], timeout=0.1, attempts=1)
    assert run(backend, lambda: resolver.resolve("host.test", socket.AF_INET)) == ["10.1.2.3"]
    assert (resolver.counters.timeouts, resolver.counters.queries) == (1, 2)
    # Nothing listening: ICMP port unreachable moves on at once, without the timeout.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{sock.getsockname()[1]}"
    refused = DNSResolver([closed, dnsmasq.nameserver], timeout=30, attempts=1)
    assert run(backend, lambda: refused.resolve("host.test", socket.AF_INET)) == ["10.1.2.3"]
    assert (refused.counters.server_errors, refused.counters.timeouts) == (1, 0)
    # REFUSED (outside dnsmasq's zones) from every server, every round: a failure.
    refusing = DNSResolver([dnsmasq.nameserver, dnsmasq.nameserver], timeout=2, attempts=2)
    with pytest.raises(ResolutionError):
        run(backend, lambda: refusing.resolve("example.com", socket.AF_INET))
    assert (refusing.counters.server_errors, refusing.counters.failures) == (4, 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_identical_lookups_in_flight_share_one_query(dnsmasq: Dnsmasq, backend: str) -> None:
    resolver = DNSResolver([dnsmasq.nameserver], timeout=2, attempts=1, cache_size=0)

    async def main() -> list[list[str]]:
        same = [resolver.resolve("n1.test", socket.AF_INET) for _ in range(20)]
        other = [resolver.resolve("n2.test", socket.AF_INET)]
        return await asyncio.gather(*same, *other)

    results = run(backend, main)
    assert results == [["10.8.0.1"]] * 20 + [["10.8.0.2"]]
    assert (resolver.counters.queries, resolver.counters.coalesced) == (2, 19)
    assert len(resolver.cache) == 0


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_cache_is_bounded(dnsmasq: Dnsmasq, backend: str) -> None:
    resolver = DNSResolver([dnsmasq.nameserver], timeout=2, attempts=1, cache_size=2)

    async def main() -> None:
        for name in ("n1.test", "n2.test", "n3.test", "n2.test", "n3.test"):
            await resolver.resolve(name, socket.AF_INET)

    run(backend, main)
    counters = resolver.counters
    assert (counters.queries, counters.hits, counters.misses) == (3, 2, 3)
    assert len(resolver.cache) == 2
    assert resolver.cache.evictions == 1
    run(backend, lambda: resolver.resolve("n1.test", socket.AF_INET))  # n1 was evicted
    assert counters.queries == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_reverse_soon_never_waits(dnsmasq: Dnsmasq, backend: str) -> None:
    resolver = DNSResolver([dnsmasq.nameserver], timeout=2, attempts=1)
    names: list[str | None] = []

    def failing(name: str | None) -> None:
        raise RuntimeError("a broken callback")

    async def main() -> None:
        done = asyncio.Event()

        def got(name: str | None) -> None:
            names.append(name)
            if len(names) == 2:
                done.set()

        resolver.reverse_soon("10.1.2.3", got)
        resolver.reverse_soon("10.99.0.1", got)
        assert names == []  # looked up in the background
        assert resolver.cached_reverse("10.1.2.3") is None
        await asyncio.wait_for(done.wait(), 10)
        assert set(names) == {"host.test", None}
        resolver.reverse_soon("10.1.2.3", names.append)  # cached: called at once
        resolver.reverse_soon("10.99.0.1", names.append)  # negative answer cached too
        resolver.reverse_soon("bogus", names.append)
        assert names[2:] == ["host.test", None, None]
        resolver.reverse_soon("10.1.2.3", failing)  # logged, not raised

    run(backend, main)
    assert resolver.cached_reverse("10.1.2.3") == "host.test"
    assert resolver.counters.queries == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_close_cancels_lookups_and_answers_pending_callbacks(silent: str, backend: str) -> None:
    resolver = DNSResolver([silent], timeout=30, attempts=1)
    called: list[str | None] = []

    async def main() -> None:
        resolver.reverse_soon("10.1.2.3", called.append)
        pending = asyncio.ensure_future(resolver.resolve("host.test", socket.AF_INET))
        for _ in range(3):
            await asyncio.sleep(0)  # let both lookups start
        assert not pending.done()
        resolver.close()
        with pytest.raises(asyncio.CancelledError):
            await pending

    run(backend, main)
    assert called == [None]  # called once, by close(), not again by the cancelled lookup
