"""Queries, reply acceptance and reply meaning, without I/O (replies built with dnspython)."""

from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from medusa.dns.message import Query, Status, accept_reply, interpret, make_query

HOST = dns.name.from_text("host.test")
A = dns.rdatatype.A


def parsed(query: Query) -> dns.message.Message:
    """The query as a name server reads it."""
    return dns.message.from_wire(query.wire)


def reply_to(
    query: Query | dns.message.Message, *answer: str, authority: str = ""
) -> dns.message.Message:
    """A reply to ``query`` with answer records given as zone-file text lines, as read
    from the wire."""
    reply = dns.message.make_response(parsed(query) if isinstance(query, Query) else query)
    for line in answer:
        name, ttl, _cls, rdtype, *data = line.split()
        reply.answer.append(dns.rrset.from_text(name, int(ttl), "IN", rdtype, " ".join(data)))
    if authority:
        name, ttl, _cls, rdtype, *data = authority.split()
        reply.authority.append(dns.rrset.from_text(name, int(ttl), "IN", rdtype, " ".join(data)))
    return dns.message.from_wire(reply.to_wire())


def test_queries_are_what_dnspython_reads() -> None:
    ids = {make_query(HOST, A).id for _ in range(64)}
    assert len(ids) > 48  # 64 draws from 65536 values: a few repeats at most
    query = make_query(dns.name.from_text("Host.TEST"), dns.rdatatype.AAAA)
    message = parsed(query)
    assert message.id == query.id
    assert message.flags == dns.flags.RD
    assert message.question[0].name == HOST
    assert message.question[0].rdtype == dns.rdatatype.AAAA
    assert message.edns < 0
    message = parsed(make_query(HOST, A, edns_payload=1232))
    assert message.edns == 0
    assert message.payload == 1232
    with pytest.raises(ValueError, match="absolute"):
        make_query(dns.name.from_text("host", origin=None), A)


def test_accepts_only_the_reply_to_the_query() -> None:
    query = make_query(HOST, A)
    good = reply_to(query, "host.test. 30 IN A 10.1.2.3")
    reply = accept_reply(good.to_wire(), query)
    assert reply is not None
    assert reply.message is not None
    assert not reply.truncated

    wrong_id = reply_to(query, "host.test. 30 IN A 6.6.6.6")
    wrong_id.id = (query.id + 1) % 65536
    assert accept_reply(wrong_id.to_wire(), query) is None

    other_name = dns.message.make_query("other.test", "A", id=query.id)
    assert accept_reply(reply_to(other_name).to_wire(), query) is None
    longer_name = dns.message.make_query("host.test.x", "A", id=query.id)
    assert accept_reply(reply_to(longer_name).to_wire(), query) is None
    other_type = dns.message.make_query(HOST, "AAAA", id=query.id)
    assert accept_reply(reply_to(other_type).to_wire(), query) is None
    other_class = dns.message.make_query(HOST, "A", "CH", id=query.id)
    assert accept_reply(reply_to(other_class).to_wire(), query) is None

    assert accept_reply(query.wire, query) is None  # the query echoed back (QR clear)
    assert accept_reply(b"\x00" * 11, query) is None
    assert accept_reply(good.to_wire()[:20], query) is None
    # Header and question right, the rest garbage, not truncated: not a usable reply.
    assert accept_reply(good.to_wire()[:-3], query) is None


def test_question_name_is_compared_without_case() -> None:
    query = make_query(HOST, A)
    upper = dns.message.make_query("HOST.Test", "A", id=query.id)
    assert accept_reply(reply_to(upper).to_wire(), query) is not None


def test_a_truncated_reply_cut_inside_a_record_is_still_recognised() -> None:
    query = make_query(HOST, A)
    reply = reply_to(query, *(f"host.test. 30 IN A 10.0.0.{i}" for i in range(40)))
    reply.flags |= dns.flags.TC
    wire = reply.to_wire()[:300]  # ends in the middle of the answer section
    accepted = accept_reply(wire, query)
    assert accepted is not None
    assert accepted.truncated


def test_interpret_answer_and_cname_chain_ttl() -> None:
    www = dns.name.from_text("www.test")
    reply = reply_to(
        make_query(www, A),
        "www.test. 300 IN CNAME web.test.",
        "web.test. 60 IN CNAME host.test.",
        "host.test. 120 IN A 10.1.2.3",
        "host.test. 120 IN A 10.1.2.4",
    )
    outcome = interpret(reply, www, A)
    assert outcome.status is Status.ANSWER
    assert outcome.values == ("10.1.2.3", "10.1.2.4")
    assert outcome.ttl == 60


def test_interpret_ptr_without_final_dot() -> None:
    name = dns.name.from_text("3.2.1.10.in-addr.arpa")
    reply = reply_to(make_query(name, dns.rdatatype.PTR), f"{name} 30 IN PTR host.test.")
    assert interpret(reply, name, dns.rdatatype.PTR).values == ("host.test",)


def test_interpret_negative_answers_take_the_soa_ttl() -> None:
    query = make_query(HOST, A)
    soa = "test. 900 IN SOA ns.test. hostmaster.test. 1 1200 120 1209600 300"
    nx = reply_to(query, authority=soa)
    nx.set_rcode(dns.rcode.NXDOMAIN)
    outcome = interpret(nx, HOST, A)
    assert outcome.status is Status.NXDOMAIN
    assert outcome.ttl == 300  # min(SOA TTL 900, MINIMUM 300), RFC 2308 §5
    nodata = reply_to(query, authority=soa.replace(" 900 ", " 100 "))
    outcome = interpret(nodata, HOST, A)
    assert outcome.status is Status.NODATA
    assert outcome.ttl == 100
    assert interpret(reply_to(query), HOST, A).ttl is None  # no SOA: no TTL


def test_interpret_a_dangling_cname_asks_to_follow() -> None:
    www = dns.name.from_text("www.test")
    reply = reply_to(make_query(www, A), "www.test. 50 IN CNAME elsewhere.example.")
    outcome = interpret(reply, www, A)
    assert outcome.status is Status.FOLLOW
    assert outcome.target == dns.name.from_text("elsewhere.example")
    assert outcome.ttl == 50


def test_interpret_failures_and_loops() -> None:
    query = make_query(HOST, A)
    for rcode in (dns.rcode.SERVFAIL, dns.rcode.REFUSED, dns.rcode.NOTIMP, dns.rcode.FORMERR):
        reply = dns.message.make_response(parsed(query))
        reply.set_rcode(rcode)
        outcome = interpret(reply, HOST, A)
        assert outcome.status is Status.FAILURE
        assert outcome.reason == dns.rcode.to_text(rcode)
    loop = reply_to(query, "host.test. 30 IN CNAME loop.test.", "loop.test. 30 IN CNAME host.test.")
    assert interpret(loop, HOST, A).status is Status.FAILURE
