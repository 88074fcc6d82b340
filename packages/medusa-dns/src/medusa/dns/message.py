"""DNS messages without I/O: queries to send, replies to accept or reject, and what a reply
says about the name asked for. dnspython reads replies and writes names (RFC 1035 §4).

:func:`make_query` gives each query a random ID (RFC 5452 §9.2); :func:`accept_reply` takes a
datagram or TCP message and returns it only when it is a reply to that very query (same ID,
QR set, opcode QUERY, the same single question), so a forged or stray packet is dropped
(RFC 5452 §3), reading only the header and question until then; :func:`interpret` follows
the CNAME chain in the answer section (RFC 1034 §3.6.2) and reads the time to live of the
answer, or of a negative answer from the SOA record of the authority section (RFC 2308 §5).
"""

from __future__ import annotations

import enum
import secrets
import struct
from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.PTR
import dns.rdtypes.ANY.SOA
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA

__all__ = [
    "MAX_CNAME_CHAIN",
    "Outcome",
    "Query",
    "Reply",
    "Status",
    "accept_reply",
    "interpret",
    "make_query",
]

MAX_CNAME_CHAIN = 16
"""The longest CNAME chain followed, in links, before the lookup is taken as a failure."""

SUPPORTED_TYPES = frozenset({dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.PTR})


_RD = 0x0100
_QR = 0x8000
_TC = 0x0200
_HEADER = struct.Struct("!HHHHHH")


@dataclass(frozen=True, slots=True)
class Query:
    """A query ready to send.

    Attributes:
        id: its random 16-bit ID.
        qname: the absolute name asked for.
        rdtype: the type asked for.
        wire: the message as sent (header, question, and the OPT record with EDNS).
        question: the question's name in wire form, lower-cased, then its type and class:
            what a reply must repeat.
    """

    id: int
    qname: dns.name.Name
    rdtype: dns.rdatatype.RdataType
    wire: bytes
    question: bytes


def make_query(
    qname: dns.name.Name, rdtype: dns.rdatatype.RdataType, edns_payload: int = 0
) -> Query:
    """Return a recursive query (RD set) for ``qname``/``rdtype``, class IN, with a random
    16-bit ID (RFC 1035 §4.1.1 header, §4.1.2 question; the name's wire form from
    dnspython).

    Args:
        qname: the absolute name asked for.
        rdtype: ``A``, ``AAAA`` or ``PTR``.
        edns_payload: 0 for a plain RFC 1035 query (replies over 512 bytes are truncated
            and asked again over TCP); else the UDP payload size, in bytes, announced in an
            EDNS(0) OPT record (RFC 6891 §6.1.2, §6.2.5).

    Raises:
        ValueError: ``qname`` is not absolute.
    """
    if not qname.is_absolute():
        raise ValueError(f"{qname} is not an absolute name")
    query_id = secrets.randbelow(65536)
    name = qname.to_wire()
    assert name is not None
    tail = struct.pack("!HH", rdtype, dns.rdataclass.IN)
    header = _HEADER.pack(query_id, _RD, 1, 0, 0, 1 if edns_payload else 0)
    wire = header + name + tail
    if edns_payload:
        # Root owner, type OPT (41), class = payload size, TTL 0 (version 0, no DO), no data.
        wire += b"\x00" + struct.pack("!HHIH", dns.rdatatype.OPT, edns_payload, 0, 0)
    return Query(query_id, qname, rdtype, wire, name.lower() + tail)


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply accepted for a query.

    Attributes:
        message: the parsed reply; ``None`` for a truncated reply that dnspython could not
            read (it is asked again over TCP anyway).
        truncated: the TC bit was set: the whole answer must be asked for over TCP
            (RFC 1035 §4.2.1, RFC 7766 §5).
    """

    message: dns.message.Message | None
    truncated: bool


def accept_reply(wire: bytes, query: Query) -> Reply | None:
    """Return ``wire`` parsed when it is a reply to ``query``, else ``None``.

    A reply is accepted only with the query's ID, the QR bit, opcode QUERY, one question,
    and that question equal to the query's (the name compared without regard to ASCII case,
    the type and class exactly). These checks read the header and question bytes before
    anything is parsed, so forged, stray or malformed datagrams cost little; anything that
    fails them gives ``None`` and the caller keeps waiting for the real reply. (The question
    is the first name of a message, so it cannot be compressed, RFC 1035 §4.1.4.)

    Args:
        wire: one DNS message (a UDP datagram, or a TCP message without its length prefix).
        query: the query that was sent.
    """
    question = query.question
    end = 12 + len(question)
    if len(wire) < end:
        return None
    reply_id, flags, qdcount, _an, _ns, _ar = _HEADER.unpack_from(wire)
    if (
        reply_id != query.id
        or not flags & _QR
        or (flags >> 11) & 0xF != dns.opcode.QUERY
        or qdcount != 1
        or wire[12 : end - 4].lower() != question[:-4]
        or wire[end - 4 : end] != question[-4:]
    ):
        return None
    truncated = bool(flags & _TC)
    try:
        message: dns.message.Message | None = dns.message.from_wire(wire)
    except dns.exception.DNSException:
        if not truncated:
            return None
        message = None  # cut inside a record: only the TC bit matters
    return Reply(message, truncated)


class Status(enum.Enum):
    """What a reply says about the name asked for."""

    ANSWER = "answer"
    """Records of the type asked for (after any CNAME chain)."""
    NXDOMAIN = "nxdomain"
    """The name (or the end of its CNAME chain) does not exist."""
    NODATA = "nodata"
    """The name exists but has no record of that type."""
    FOLLOW = "follow"
    """The reply ends at a CNAME whose target it does not answer: ask for ``target``."""
    FAILURE = "failure"
    """This server could not answer (SERVFAIL, REFUSED, NOTIMP, FORMERR, other codes):
    ask another."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """The meaning of one reply.

    Attributes:
        status: see :class:`Status`.
        values: for ``ANSWER``: the addresses as text, or the PTR host names without the
            final dot, in reply order.
        ttl: seconds the outcome may be cached: the smallest TTL of the CNAME chain and the
            answer; for a negative answer min(SOA TTL, SOA MINIMUM) (RFC 2308 §5), or
            ``None`` when the reply has no SOA record.
        target: for ``FOLLOW``: the name the chain points at.
        reason: for ``FAILURE``: the response code as text.
    """

    status: Status
    values: tuple[str, ...] = ()
    ttl: float | None = None
    target: dns.name.Name | None = None
    reason: str = ""


def _value(rdata: object) -> str | None:
    if isinstance(rdata, dns.rdtypes.IN.A.A | dns.rdtypes.IN.AAAA.AAAA):
        return str(rdata.address)
    if isinstance(rdata, dns.rdtypes.ANY.PTR.PTR):
        return str(rdata.target.to_text(omit_final_dot=True))
    return None


def _negative_ttl(message: dns.message.Message) -> float | None:
    for rrset in message.authority:
        if rrset.rdtype == dns.rdatatype.SOA and rrset:
            soa = rrset[0]
            if isinstance(soa, dns.rdtypes.ANY.SOA.SOA):
                return float(min(rrset.ttl, soa.minimum))
    return None


def interpret(
    message: dns.message.Message, qname: dns.name.Name, rdtype: dns.rdatatype.RdataType
) -> Outcome:
    """Say what a complete (not truncated) reply means for ``qname``/``rdtype``.

    Args:
        message: the reply, as :func:`accept_reply` returned it.
        qname: the name asked for.
        rdtype: the type asked for.
    """
    rcode = message.rcode()
    if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
        return Outcome(Status.FAILURE, reason=dns.rcode.to_text(rcode))
    name = qname
    ttl: float | None = None
    for _ in range(MAX_CNAME_CHAIN + 1):
        wanted = message.get_rrset(message.answer, name, dns.rdataclass.IN, rdtype)
        if wanted is not None and len(wanted) > 0:
            values = tuple(v for v in (_value(rd) for rd in wanted) if v is not None)
            if values:
                ttl = wanted.ttl if ttl is None else min(ttl, wanted.ttl)
                return Outcome(Status.ANSWER, values, float(ttl))
        alias = message.get_rrset(message.answer, name, dns.rdataclass.IN, dns.rdatatype.CNAME)
        if alias is None or len(alias) == 0:
            break
        cname = alias[0]
        if not isinstance(cname, dns.rdtypes.ANY.CNAME.CNAME):
            break
        ttl = alias.ttl if ttl is None else min(ttl, alias.ttl)
        name = cname.target
    else:
        return Outcome(Status.FAILURE, reason="CNAME chain too long")
    negative = _negative_ttl(message)
    if rcode == dns.rcode.NXDOMAIN:
        # RFC 6604 §3: with a CNAME chain, NXDOMAIN is about the chain's last name.
        return Outcome(Status.NXDOMAIN, ttl=_chain_min(negative, ttl))
    if name != qname and negative is None:
        return Outcome(Status.FOLLOW, ttl=ttl, target=name)
    return Outcome(Status.NODATA, ttl=_chain_min(negative, ttl))


def _chain_min(negative: float | None, chain: float | None) -> float | None:
    if negative is None:
        return None
    return negative if chain is None else min(negative, float(chain))
