"""Benchmark (not a test): lookups per second of medusa-dns's DNSResolver against dnspython's
asynchronous resolver and aiodns (c-ares), all asking the same dnsmasq on 127.0.0.1.

    hatch run bench:python bench/dns_bench.py [--names 2000] [--cached 20000] [--concurrency 32]

* uncached: each name asked once (distinct names, fresh resolver), one at a time and with
  ``--concurrency`` lookups in flight; this mostly measures each client's per-query cost,
  since dnsmasq answers from memory.
* cached: one name asked again and again after a first lookup, one at a time.

dnsmasq runs on CPU 0 and this process on CPU 1 when there are two CPUs. Every client runs on
the standard asyncio loop; medusa-dns is also measured on uvloop. The figures are printed with
the ratio of medusa-dns (asyncio loop) to each peer: above 1 means medusa-dns is faster.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import dns.asyncresolver
import dns.resolver

from medusa.core.loop import finish_loop, new_event_loop
from medusa.dns.dnsmasq import Dnsmasq, find_dnsmasq
from medusa.dns.resolver import DNSResolver

Lookup = Callable[[str], Awaitable[Any]]


class Client:
    """A resolver under test: ``make(cached)`` returns a lookup function for A records."""

    def __init__(self, name: str, make: Callable[[bool], Lookup], backend: str = "asyncio"):
        self.name = name
        self.make = make
        self.backend = backend


def medusa_client(port: int) -> Callable[[bool], Lookup]:
    def make(cached: bool) -> Lookup:
        resolver = DNSResolver([f"127.0.0.1:{port}"], timeout=2, attempts=2)

        async def lookup(name: str) -> Any:
            return await resolver.resolve(name, socket.AF_INET)

        return lookup

    return make


def dnspython_client(port: int) -> Callable[[bool], Lookup]:
    def make(cached: bool) -> Lookup:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = port
        resolver.timeout = 2
        resolver.lifetime = 4
        resolver.cache = dns.resolver.LRUCache(100_000) if cached else None

        async def lookup(name: str) -> Any:
            return await resolver.resolve(name, "A", search=False)

        return lookup

    return make


def aiodns_client(port: int) -> Callable[[bool], Lookup]:
    aiodns = importlib.import_module("aiodns")

    def make(cached: bool) -> Lookup:
        # c-ares keeps its own query cache (qcache); uncached runs use distinct names.
        resolver = aiodns.DNSResolver(
            nameservers=["127.0.0.1"], udp_port=port, tcp_port=port, timeout=2, tries=2
        )

        async def lookup(name: str) -> Any:
            return await resolver.query_dns(name, "A")

        return lookup

    return make


async def uncached(make: Callable[[bool], Lookup], names: Sequence[str], concurrency: int) -> float:
    """Lookups per second over ``names``, ``concurrency`` in flight (a new resolver)."""
    lookup = make(False)
    queue = iter(names)

    async def worker() -> None:
        for name in queue:
            await lookup(name)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(names) / (time.perf_counter() - start)


async def cached(make: Callable[[bool], Lookup], name: str, count: int) -> float:
    """Lookups per second of ``name`` asked ``count`` times after a first lookup."""
    lookup = make(True)
    await lookup(name)
    start = time.perf_counter()
    for _ in range(count):
        await lookup(name)
    return count / (time.perf_counter() - start)


def measure(client: Client, names: list[str], args: argparse.Namespace) -> dict[str, float]:
    loop = new_event_loop(client.backend)
    try:
        half = len(names) // 2
        return {
            "uncached, 1 at a time": loop.run_until_complete(
                uncached(client.make, names[:half], 1)
            ),
            f"uncached, {args.concurrency} in flight": loop.run_until_complete(
                uncached(client.make, names[half:], args.concurrency)
            ),
            "cached": loop.run_until_complete(cached(client.make, names[0], args.cached)),
        }
    finally:
        finish_loop(loop)
        loop.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--names", type=int, default=4000, help="distinct names (uncached)")
    parser.add_argument("--cached", type=int, default=20000, help="cached lookups")
    parser.add_argument("--concurrency", type=int, default=32, help="lookups in flight")
    args = parser.parse_args()
    if find_dnsmasq() is None:
        raise SystemExit("dnsmasq is not installed (apt-get install dnsmasq-base)")
    count = args.names
    hosts = {
        f"h{i}.bench.test": [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"] for i in range(count)
    }
    two_cpus = (os.cpu_count() or 1) >= 2
    with Dnsmasq(hosts, ttl=3600, log_queries=False, extra_args=["--cache-size=0"]) as server:
        if two_cpus and server.process is not None:
            os.sched_setaffinity(server.process.pid, {0})
            os.sched_setaffinity(0, {1})
        port = server.port
        clients = [
            Client("medusa-dns", medusa_client(port)),
            Client("medusa-dns (uvloop)", medusa_client(port), "uvloop"),
            Client("dnspython", dnspython_client(port)),
            Client("aiodns", aiodns_client(port)),
        ]
        results: dict[str, dict[str, float]] = {}
        names = list(hosts)
        for client in clients:  # each with new resolvers: nothing cached from the others
            results[client.name] = measure(client, names, args)
    scenarios = list(results["medusa-dns"])
    print(f"lookups per second (dnsmasq on 127.0.0.1, {count} names, CPUs pinned: {two_cpus})")
    print(f"{'client':<22}" + "".join(f"{s:>26}" for s in scenarios))
    for name, row in results.items():
        print(f"{name:<22}" + "".join(f"{row[s]:>26,.0f}" for s in scenarios))
    print("\nratio medusa-dns (asyncio loop) / peer, above 1 = medusa-dns faster")
    ours = results["medusa-dns"]
    for name in ("dnspython", "aiodns"):
        ratios = "".join(f"{ours[s] / results[name][s]:>26.2f}" for s in scenarios)
        print(f"{'vs ' + name:<22}" + ratios)


if __name__ == "__main__":
    main()
