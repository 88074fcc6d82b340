"""``DNSResolver``: an asynchronous caching stub resolver that asks known name servers, on the
running event loop; medusa-core's :class:`~medusa.core.resolver.Resolver` (entry point ``dns``
in ``medusa.resolvers``).

Each lookup is, in order: the cache (answers for their TTL, negative answers per RFC 2308,
failures for a short while); an identical lookup already in flight, which it joins; else a
query to each name server in turn, over UDP with a timeout, ``attempts`` rounds, retried over
TCP when the reply is truncated (RFC 7766 §5), following CNAME chains (RFC 1034 §3.6.2).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import dns.exception
import dns.name
import dns.rdatatype

from medusa.core.log import error_logger
from medusa.core.options import Option, non_negative, positive
from medusa.core.resolver import NameNotFoundError, ResolutionError
from medusa.dns.cache import CacheEntry, DNSCache, EntryKind
from medusa.dns.counters import ResolverCounters
from medusa.dns.message import MAX_CNAME_CHAIN, Outcome, Status, interpret, make_query
from medusa.dns.resolvconf import ResolvConf, parse_nameserver, read_resolv_conf
from medusa.dns.transport import exchange_tcp, exchange_udp

__all__ = ["DNSResolver"]

A = dns.rdatatype.A
AAAA = dns.rdatatype.AAAA
PTR = dns.rdatatype.PTR


def _nameservers_problem(value: Any) -> str | None:
    if not value or not all(isinstance(v, str) for v in value):
        return 'must be a non-empty list of IP addresses ("IP", "IP:PORT", "[IPv6]:PORT")'
    for text in value:
        try:
            parse_nameserver(text)
        except ValueError as exc:
            return str(exc)
    return None


def _payload_problem(value: Any) -> str | None:
    return None if value == 0 or 512 <= value <= 65535 else "must be 0 or 512..65535"


class DNSResolver:
    """An asynchronous caching DNS resolver (A, AAAA, PTR) for one event loop at a time.

    Args:
        nameservers: name servers as ``"IP"``, ``"IP:PORT"`` or ``"[IPv6]:PORT"``, asked in
            this order; ``None`` reads them from ``resolv_conf`` (127.0.0.1 when it lists
            none, as the C library does).
        timeout: seconds to wait for one server's reply (default: ``resolv.conf``'s
            ``timeout:``, else 2).
        attempts: rounds over all the servers before a lookup fails (default:
            ``resolv.conf``'s ``attempts:``, else 2).
        cache_size: cached lookups at most (least recently used evicted); 0 disables the
            cache (lookups in flight are still coalesced).
        max_ttl: seconds an answer is kept at most, whatever its TTL.
        max_negative_ttl: seconds a negative answer is kept at most (RFC 2308 §5 suggests
            one to three hours).
        negative_ttl_without_soa: seconds to keep a negative answer that carries no SOA
            record (RFC 2308 §5 advises against caching those in servers that answer others,
            because of loops between servers; this cache answers only its own process). 0: not
            kept.
        failure_ttl: seconds a lookup that no server answered is remembered, so that a dead
            server is not asked again for every log line (RFC 2308 §7.1 allows up to five
            minutes); 0: not remembered.
        edns_payload: 0 to send plain RFC 1035 queries (answers over 512 bytes come over
            TCP), else the UDP payload size to announce with EDNS(0), 512..65535 bytes.
        resolv_conf: the file read for default servers, timeout and attempts.
        clock: the cache's time source, in seconds (tests move it forward).

    Raises:
        ValueError: a bad name server address or a number out of range.

    Attributes:
        counters: :class:`~medusa.dns.counters.ResolverCounters`.
        cache: the :class:`~medusa.dns.cache.DNSCache`.
        nameservers: ``(IP address, port)`` pairs.
    """

    options: ClassVar[Mapping[str, Option]] = {
        o.name: o
        for o in (
            Option("nameservers", (list,), "name servers to ask", _nameservers_problem),
            Option("timeout", (float,), "seconds to wait for one reply", positive),
            Option("attempts", (int,), "rounds over the name servers", positive),
            Option("cache_size", (int,), "lookups kept in the cache", non_negative),
            Option("max_ttl", (float,), "longest time an answer is kept", non_negative),
            Option("max_negative_ttl", (float,), "longest negative caching", non_negative),
            Option(
                "negative_ttl_without_soa",
                (float,),
                "negative caching without SOA",
                non_negative,
            ),
            Option("failure_ttl", (float,), "seconds a failed lookup is kept", non_negative),
            Option("edns_payload", (int,), "EDNS(0) UDP payload size, 0 = none", _payload_problem),
            Option("resolv_conf", (str,), "resolv.conf file for defaults"),
        )
    }

    def __init__(
        self,
        nameservers: Sequence[str] | None = None,
        *,
        timeout: float | None = None,
        attempts: int | None = None,
        cache_size: int = 10_000,
        max_ttl: float = 86_400.0,
        max_negative_ttl: float = 3_600.0,
        negative_ttl_without_soa: float = 5.0,
        failure_ttl: float = 30.0,
        edns_payload: int = 0,
        resolv_conf: str = "/etc/resolv.conf",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        conf = ResolvConf()
        if nameservers is None or timeout is None or attempts is None:
            conf = read_resolv_conf(resolv_conf)
        if nameservers is None:
            self.nameservers = conf.nameservers or [("127.0.0.1", 53)]
        else:
            self.nameservers = [parse_nameserver(text) for text in nameservers]
            if not self.nameservers:
                raise ValueError("nameservers is empty")
        self.timeout = float(timeout if timeout is not None else conf.timeout or 2.0)
        self.attempts = int(attempts if attempts is not None else conf.attempts or 2)
        if self.timeout <= 0 or self.attempts <= 0:
            raise ValueError("timeout and attempts must be greater than 0")
        if edns_payload and not 512 <= edns_payload <= 65535:
            raise ValueError("edns_payload must be 0 or 512..65535")
        self.max_ttl = max_ttl
        self.max_negative_ttl = max_negative_ttl
        self.negative_ttl_without_soa = negative_ttl_without_soa
        self.failure_ttl = failure_ttl
        self.edns_payload = edns_payload
        self.cache = DNSCache(cache_size, clock)
        self.counters = ResolverCounters()
        self._inflight: dict[tuple[str, int], asyncio.Task[CacheEntry]] = {}
        self._background: dict[asyncio.Task[None], Callable[[str | None], object]] = {}

    # -- the Resolver protocol -------------------------------------------------------------

    async def resolve(self, name: str, family: int = socket.AF_UNSPEC) -> list[str]:
        """Return the addresses of ``name``; see :meth:`medusa.core.resolver.Resolver.resolve`.

        With ``AF_UNSPEC`` the A and AAAA lookups run together; IPv4 addresses come first,
        and the lookup succeeds when either type has an address.

        Raises:
            NameNotFoundError: no address of that family (NXDOMAIN or NODATA).
            ResolutionError: no server answered (for AF_UNSPEC: neither lookup had an
                address and at least one failed).
            ValueError: a malformed name or an unsupported family.
        """
        if family == socket.AF_INET:
            types: tuple[dns.rdatatype.RdataType, ...] = (A,)
        elif family == socket.AF_INET6:
            types = (AAAA,)
        elif family == socket.AF_UNSPEC:
            types = (A, AAAA)
        else:
            raise ValueError(f"unsupported address family {family!r}")
        literal = _ip_literal(name)
        if literal is not None:
            if family != socket.AF_UNSPEC and (literal.version == 6) != (family == socket.AF_INET6):
                raise NameNotFoundError(f"{name} is not an address of that family")
            return [str(literal)]
        if len(types) == 1:
            return list(await self.lookup(name, types[0]))
        results = await asyncio.gather(
            *(self.lookup(name, t) for t in types), return_exceptions=True
        )
        addresses: list[str] = []
        failure: BaseException | None = None
        for result in results:
            if isinstance(result, tuple):
                addresses.extend(result)
            elif not isinstance(result, NameNotFoundError):
                failure = failure or result
        if addresses:
            return addresses
        if failure is not None:
            raise failure
        raise NameNotFoundError(f"{name} has no address")

    async def reverse(self, address: str) -> str | None:
        """Return the host name of ``address`` (PTR, the first one when there are several,
        without the final dot), or ``None`` when it has none. An IPv4-mapped IPv6 address
        (``::ffff:192.0.2.1``, from a dual-stack socket) is looked up as the IPv4 address.

        Raises:
            ResolutionError: no server answered.
            ValueError: ``address`` is not an IP address.
        """
        try:
            names = await self.lookup(_reverse_name(address), PTR)
        except NameNotFoundError:
            return None
        return names[0]

    def cached_reverse(self, address: str) -> str | None:
        """Return the cached host name of ``address``, or ``None``; no I/O, no counters."""
        try:
            key = (_reverse_name(address), int(PTR))
        except ValueError:
            return None
        entry = self.cache.get(key)
        if entry is None or entry.kind is not EntryKind.ANSWER:
            return None
        return entry.values[0]

    def reverse_soon(self, address: str, callback: Callable[[str | None], object]) -> None:
        """Call ``callback(name or None)`` once, now if ``address`` is cached, else from a
        background task when its lookup ends; see
        :meth:`medusa.core.resolver.Resolver.reverse_soon`. An exception from the callback
        is logged to ``medusa`` and goes no further.

        Raises:
            RuntimeError: no event loop is running in this thread (only when a lookup is
                needed).
        """
        try:
            key = (_reverse_name(address), int(PTR))
        except ValueError:
            _call(callback, None)
            return
        entry = self.cache.get(key)
        if entry is not None:
            self.counters.hits += 1
            _call(callback, entry.values[0] if entry.kind is EntryKind.ANSWER else None)
            return
        task = asyncio.get_running_loop().create_task(self._reverse_then(address, callback))
        self._background[task] = callback
        task.add_done_callback(self._forget_background)

    def close(self) -> None:
        """Cancel the lookups in flight (their waiters get :class:`asyncio.CancelledError`)
        and call each pending :meth:`reverse_soon` callback with ``None`` now, so that a log
        line waiting for a name is still written. The cache is kept; the resolver can still
        be used afterwards."""
        background, self._background = self._background, {}
        inflight, self._inflight = self._inflight, {}
        for task in [*background, *inflight.values()]:
            task.cancel()
        for callback in background.values():
            _call(callback, None)

    def _forget_background(self, task: asyncio.Task[None]) -> None:
        self._background.pop(task, None)

    # -- lookups ---------------------------------------------------------------------------

    async def lookup(self, name: str, rdtype: dns.rdatatype.RdataType) -> tuple[str, ...]:
        """Return the values of ``name``'s records of type ``rdtype`` (``A``, ``AAAA``:
        addresses; ``PTR``: host names without the final dot), from the cache, from an
        identical lookup in flight, or from the name servers.

        Args:
            name: an absolute domain name (a final dot is optional).
            rdtype: ``dns.rdatatype.A``, ``AAAA`` or ``PTR``.

        Raises:
            NameNotFoundError: NXDOMAIN or NODATA.
            ResolutionError: no server answered.
            ValueError: a malformed name.
        """
        key = (name.lower().rstrip("."), int(rdtype))
        entry = self.cache.get(key)
        if entry is not None:
            self.counters.hits += 1
        else:
            task = self._inflight.get(key)
            if task is None:
                qname = _qname(name)  # ValueError for a malformed name
                task = asyncio.get_running_loop().create_task(self._fetch(qname, rdtype, key))
                self._inflight[key] = task
                task.add_done_callback(lambda done: self._forget(key, done))
            else:
                self.counters.coalesced += 1
            self.counters.misses += 1
            entry = await asyncio.shield(task)
        if entry.kind is EntryKind.ANSWER:
            return entry.values
        if entry.kind is EntryKind.NEGATIVE:
            raise NameNotFoundError(f"{name}: no {dns.rdatatype.to_text(rdtype)} record")
        raise ResolutionError(f"{name}: no name server answered")

    def _forget(self, key: tuple[str, int], task: asyncio.Task[CacheEntry]) -> None:
        if self._inflight.get(key) is task:
            del self._inflight[key]

    async def _fetch(
        self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, key: tuple[str, int]
    ) -> CacheEntry:
        """Ask the servers, following CNAME targets they do not answer; cache the outcome."""
        chain_ttl: float | None = None
        name = qname
        for _ in range(MAX_CNAME_CHAIN):
            outcome = await self._ask(name, rdtype)
            if outcome is not None and outcome.ttl is not None:
                chain_ttl = outcome.ttl if chain_ttl is None else min(chain_ttl, outcome.ttl)
            if outcome is None or outcome.status is not Status.FOLLOW:
                break
            assert outcome.target is not None
            name = outcome.target
        else:
            outcome = None
        if outcome is None:
            self.counters.failures += 1
            return self._store(key, EntryKind.FAILURE, (), self.failure_ttl)
        if outcome.status is Status.ANSWER:
            ttl = min(chain_ttl if chain_ttl is not None else 0.0, self.max_ttl)
            return self._store(key, EntryKind.ANSWER, outcome.values, ttl)
        self.counters.negatives += 1
        if outcome.ttl is None:
            ttl = self.negative_ttl_without_soa
        else:
            ttl = min(chain_ttl if chain_ttl is not None else 0.0, self.max_negative_ttl)
        return self._store(key, EntryKind.NEGATIVE, (), ttl)

    def _store(
        self, key: tuple[str, int], kind: EntryKind, values: tuple[str, ...], ttl: float
    ) -> CacheEntry:
        self.cache.put(key, kind, values, ttl)
        return CacheEntry(kind, values, self.cache.clock() + max(ttl, 0.0))

    async def _ask(self, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType) -> Outcome | None:
        """One question to the servers in turn, ``attempts`` rounds: the first usable
        outcome, or ``None`` when every try timed out or failed."""
        counters = self.counters
        for _ in range(self.attempts):
            for server in self.nameservers:
                query = make_query(qname, rdtype, self.edns_payload)
                counters.queries += 1
                try:
                    reply = await exchange_udp(query, server, self.timeout, counters)
                    if reply.truncated:
                        counters.queries += 1
                        counters.tcp_queries += 1
                        reply = await exchange_tcp(query, server, self.timeout, counters)
                except TimeoutError:
                    counters.timeouts += 1
                    continue
                except OSError:
                    counters.server_errors += 1
                    continue
                assert reply.message is not None  # only a truncated reply may lack one
                outcome = interpret(reply.message, qname, rdtype)
                if outcome.status is Status.FAILURE:
                    counters.server_errors += 1
                    continue
                return outcome
        return None

    async def _reverse_then(self, address: str, callback: Callable[[str | None], object]) -> None:
        try:
            name = await self.reverse(address)
        except ResolutionError:
            name = None
        _call(callback, name)


def _call(callback: Callable[[str | None], object], name: str | None) -> None:
    try:
        callback(name)
    except Exception:
        error_logger.exception("resolver callback failed")


def _ip_literal(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not name or not (name[0].isdigit() or ":" in name):
        return None
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def _qname(name: str) -> dns.name.Name:
    if not name or name == ".":
        raise ValueError("empty host name")
    try:
        return dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        raise ValueError(f"bad domain name {name!r}: {exc}") from None


def _reverse_name(address: str) -> str:
    """The PTR name of ``address`` (``4.3.2.1.in-addr.arpa``), lower case without final dot.

    Raises:
        ValueError: not an IP address.
    """
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.reverse_pointer
