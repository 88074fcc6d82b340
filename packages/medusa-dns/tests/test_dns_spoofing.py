"""DNSResolver against a scripted name server on 127.0.0.1 (a real UDP socket in a thread that
answers each query as the test says): forged and stray replies, CNAME targets left to the
client, negative answers without SOA, source ports and IDs."""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
from collections.abc import Callable
from types import TracebackType

import dns.message
import dns.rcode
import dns.rrset
import pytest

from medusa.core.loop import finish_loop, new_event_loop
from medusa.core.resolver import NameNotFoundError
from medusa.dns.resolver import DNSResolver

BACKENDS = ["asyncio", "uvloop"]

# What to send for one query: (wire bytes, send it from the server's own socket?) pairs.
Script = Callable[[dns.message.Message], list[tuple[bytes, bool]]]


class ScriptedServer:
    """A UDP name server whose replies ``script`` decides; records the queries it got and
    the client ports they came from."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.stranger = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.stranger.bind(("127.0.0.1", 0))
        self.queries: list[dns.message.Message] = []
        self.ports: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def nameserver(self) -> str:
        return f"127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            query = dns.message.from_wire(data)
            self.queries.append(query)
            self.ports.append(addr[1])
            for wire, own in self.script(query):
                (self.sock if own else self.stranger).sendto(wire, addr)

    def __enter__(self) -> ScriptedServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        self.stranger.close()


def answer(query: dns.message.Message, *records: str) -> dns.message.Message:
    """A reply to ``query`` carrying zone-file lines ``NAME TTL IN TYPE DATA``."""
    reply = dns.message.make_response(query)
    for line in records:
        name, ttl, _cls, rdtype, *data = line.split()
        reply.answer.append(dns.rrset.from_text(name, int(ttl), "IN", rdtype, " ".join(data)))
    return reply


def run_lookup(backend: str, resolver: DNSResolver, name: str) -> list[str]:
    loop = new_event_loop(backend)
    try:
        return loop.run_until_complete(resolver.resolve(name, socket.AF_INET))
    finally:
        finish_loop(loop)
        loop.close()


@pytest.mark.parametrize("backend", BACKENDS)
def test_forged_and_stray_replies_are_ignored(backend: str) -> None:
    def script(query: dns.message.Message) -> list[tuple[bytes, bool]]:
        real = answer(query, "host.test. 60 IN A 10.1.2.3")
        wrong_id = answer(query, "host.test. 60 IN A 6.6.6.1")
        wrong_id.id = (query.id + 1) % 65536
        other = dns.message.make_query("evil.test", "A", id=query.id)
        wrong_question = answer(other, "evil.test. 60 IN A 6.6.6.2")
        from_elsewhere = answer(query, "host.test. 60 IN A 6.6.6.3")
        return [
            (wrong_id.to_wire(), True),
            (wrong_question.to_wire(), True),
            (b"\xde\xad" + bytes(30), True),
            (from_elsewhere.to_wire(), False),  # right ID and question, wrong source port
            (real.to_wire(), True),
        ]

    with ScriptedServer(script) as server:
        resolver = DNSResolver([server.nameserver], timeout=5, attempts=1)
        assert run_lookup(backend, resolver, "host.test") == ["10.1.2.3"]
    # The wrong source port never reaches the connected socket; the rest is dropped by us.
    assert resolver.counters.ignored_replies >= 3
    assert resolver.counters.queries == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_cname_target_left_to_the_client_is_followed(backend: str) -> None:
    def script(query: dns.message.Message) -> list[tuple[bytes, bool]]:
        name = query.question[0].name.to_text()
        if name == "www.test.":
            return [(answer(query, "www.test. 40 IN CNAME far.example.").to_wire(), True)]
        return [(answer(query, "far.example. 300 IN A 192.0.2.9").to_wire(), True)]

    with ScriptedServer(script) as server:
        resolver = DNSResolver([server.nameserver], timeout=5, attempts=1)
        assert run_lookup(backend, resolver, "www.test") == ["192.0.2.9"]
        assert [q.question[0].name.to_text() for q in server.queries] == [
            "www.test.",
            "far.example.",
        ]
    entry = resolver.cache.get(("www.test", 1))
    assert entry is not None
    assert entry.expires == pytest.approx(resolver.cache.clock() + 40, abs=5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_negative_answers_without_soa_are_kept_briefly(backend: str) -> None:
    now = [100.0]

    def script(query: dns.message.Message) -> list[tuple[bytes, bool]]:
        reply = dns.message.make_response(query)
        reply.set_rcode(dns.rcode.NXDOMAIN)
        return [(reply.to_wire(), True)]

    with ScriptedServer(script) as server:
        resolver = DNSResolver(
            [server.nameserver],
            timeout=5,
            attempts=1,
            negative_ttl_without_soa=3,
            clock=lambda: now[0],
        )
        for _ in range(2):
            with pytest.raises(NameNotFoundError):
                run_lookup(backend, resolver, "gone.test")
        assert len(server.queries) == 1
        now[0] += 3
        with pytest.raises(NameNotFoundError):
            run_lookup(backend, resolver, "gone.test")
        assert len(server.queries) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_servfail_moves_on_to_the_next_server(backend: str) -> None:
    def failing(query: dns.message.Message) -> list[tuple[bytes, bool]]:
        reply = dns.message.make_response(query)
        reply.set_rcode(dns.rcode.SERVFAIL)
        return [(reply.to_wire(), True)]

    def working(query: dns.message.Message) -> list[tuple[bytes, bool]]:
        return [(answer(query, "host.test. 60 IN A 10.1.2.3").to_wire(), True)]

    with ScriptedServer(failing) as bad, ScriptedServer(working) as good:
        resolver = DNSResolver([bad.nameserver, good.nameserver], timeout=5, attempts=1)
        assert run_lookup(backend, resolver, "host.test") == ["10.1.2.3"]
        assert (len(bad.queries), len(good.queries)) == (1, 1)
    assert resolver.counters.server_errors == 1


def test_each_query_has_its_own_source_port_and_id() -> None:
    def script(query: dns.message.Message) -> list[tuple[bytes, bool]]:
        return [(answer(query, f"{query.question[0].name} 60 IN A 10.0.0.1").to_wire(), True)]

    with ScriptedServer(script) as server:
        resolver = DNSResolver([server.nameserver], timeout=5, attempts=1)

        async def main() -> None:
            await asyncio.gather(
                *(resolver.resolve(f"n{i}.test", socket.AF_INET) for i in range(20))
            )

        loop = new_event_loop("asyncio")
        try:
            loop.run_until_complete(main())
        finally:
            finish_loop(loop)
            loop.close()
        assert len(server.queries) == 20
        assert len(set(server.ports)) >= 18
        # Chosen at random by the kernel, not one after the other (RFC 5452 §9.2).
        ports = server.ports
        assert sum(abs(b - a) == 1 for a, b in itertools.pairwise(ports)) < 5
        assert len({q.id for q in server.queries}) >= 18
