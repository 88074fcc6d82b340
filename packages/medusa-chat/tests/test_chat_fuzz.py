"""A seeded, bounded fuzz of the line parser and the command handlers: valid IRC lines
mutated (random bytes, Unicode digits, NUL, CR, very long parameters, invalid UTF-8, odd
mode strings) and sent by one client, through the sans-IO :class:`Session` and then, fewer
of them, over a real socket.

Asserted: nothing is logged as an error or with a traceback, the sender is never dropped
(except by its own QUIT), and every line any client receives is a well-formed IRC line (at
most 512 bytes, CR LF only at its end, no NUL, valid UTF-8).

``MEDUSA_FUZZ_CASES`` sets the number of sans-IO cases (default 3000; the socket round
runs a tenth of them, at least 100); ``MEDUSA_FUZZ_SEED`` replays a run. The seed is
printed, and named in every failure.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import time
from collections.abc import Iterator

import pytest

from medusa.chat.message import MAX_LINE, command_name, has_forbidden
from medusa.chat.network import Network, NetworkConfig
from medusa.chat.server import ChatServer
from medusa.chat.session import LinkPolicy, Session
from medusa.core.testing import ServerThread

CASES = int(os.environ.get("MEDUSA_FUZZ_CASES", "3000"))
SEED = int(os.environ.get("MEDUSA_FUZZ_SEED", str(random.randrange(2**32))))
TIMEOUT = 10.0

CORPUS = [
    b"PRIVMSG #fuzz :hello there",
    b"PRIVMSG fz_peer,#fuzz :two targets",
    b"NOTICE #fuzz :a notice",
    b"NOTICE fz_op :\x01VERSION\x01",
    b"JOIN #fuzz",
    b"JOIN #new,#other key1,key2",
    b"JOIN 0",
    b"PART #fuzz :bye",
    b"TOPIC #fuzz :a new topic",
    b"TOPIC #fuzz",
    b"NAMES #fuzz,#other",
    b"NAMES",
    b"LIST",
    b"LIST #fuzz,#nope",
    b"MODE #fuzz",
    b"MODE #fuzz +l 10",
    b"MODE #fuzz +k key",
    b"MODE #fuzz -k key",
    b"MODE #fuzz +mikl key 5",
    b"MODE #fuzz +ov fz_peer fz_peer",
    b"MODE #fuzz +sp",
    b"MODE #fuzz b",
    b"MODE #new +ntsl 3",
    b"MODE fz +iw",
    b"MODE fz",
    b"WHO #fuzz",
    b"WHO fz_peer",
    b"WHO *a*?",
    b"WHO 0 o",
    b"WHOIS fz_op,fz_peer",
    b"WHOWAS someone 2",
    b"ISON fz_op fz_peer nobody",
    b"USERHOST fz_op fz_peer",
    b"KICK #new fz_peer :out",
    b"INVITE fz_peer #new",
    b"AWAY :gone",
    b"AWAY",
    b"NICK fz2",
    b"NICK fz",
    b"USER again 8 * :Real Name",
    b"PASS secret",
    b"CAP LS 302",
    b"CAP REQ :multi-prefix",
    b"CAP END",
    b"PING :token",
    b"PONG :token",
    b"VERSION",
    b"TIME medusa",
    b"LUSERS * medusa",
    b"ADMIN",
    b"INFO",
    b"MOTD",
    b"@time=2024-01-01T00:00:00Z;id=1 :fz!u@h PRIVMSG #fuzz :tagged",
    b"QUIT :leaving",
]

UNICODE_DIGITS = [
    "²",
    "١٢",
    "٣",
    "³⁴",
    "\U0001d7d9\U0001d7da",
    "\uff11\uff12",
    "߁",
    "৩",
    "Ⅻ",
    "½",
    "0²",
    "-1",
    "99999999999",
]
INVALID_UTF8 = [
    b"\xff",
    b"\xfe\xff",
    b"\xc3",
    b"\xe2\x82",
    b"\xed\xa0\x80",  # an encoded surrogate
    b"\xc0\xaf",  # overlong
    b"\xf8\x88\x80\x80\x80",
    b"\x80",
]
MODE_LETTERS = "imnpstklovbeIzqa+-²"


def _words(line: bytes) -> list[bytes]:
    return line.split(b" ")


def mutate(rng: random.Random, line: bytes) -> bytes:
    """One to three random changes to ``line``; never an LF (the line's end)."""
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(12)
        words = _words(line)
        index = rng.randrange(len(words))
        where = rng.randint(0, len(line))
        if kind == 0:  # random bytes
            line = line[:where] + rng.randbytes(rng.randint(1, 8)) + line[where:]
        elif kind == 1:  # a Unicode digit (or an out-of-range number) for a word
            words[index] = rng.choice(UNICODE_DIGITS).encode()
            line = b" ".join(words)
        elif kind == 2:
            line = line[:where] + b"\x00" + line[where:]
        elif kind == 3:
            line = line[:where] + b"\r" + line[where:]
        elif kind == 4:  # a very long parameter (the line may go past 512 bytes)
            words[index] = bytes([rng.randrange(33, 127)]) * rng.randint(50, 600)
            line = b" ".join(words)
        elif kind == 5:
            line = line[:where] + rng.choice(INVALID_UTF8) + line[where:]
        elif kind == 6:  # a random mode string
            modes = "".join(rng.choice(MODE_LETTERS) for _ in range(rng.randint(1, 12)))
            words[index] = modes.encode()
            line = b" ".join(words)
        elif kind == 7:  # a word dropped, doubled or emptied
            choice = rng.randrange(3)
            if choice == 0 and len(words) > 1:
                del words[index]
            elif choice == 1:
                words.insert(index, words[index])
            else:
                words[index] = b""
            line = b" ".join(words)
        elif kind == 8:  # a colon or a comma list
            words[index] = rng.choice([b":", b",", b"::", b",,,"]) + words[index]
            line = b" ".join(words)
        elif kind == 9:
            line = line[: rng.randint(0, len(line))]
        elif kind == 10:  # many parameters
            line += b" x" * rng.randint(1, 30)
        else:  # case
            line = line.swapcase() if rng.random() < 0.5 else line.lower()
    return line.replace(b"\n", b"")


def well_formed(data: bytes) -> str | None:
    """Why ``data`` (received lines, each with CR LF) is not well-formed, or None."""
    for line in data.split(b"\r\n")[:-1]:
        if len(line) + 2 > MAX_LINE:
            return f"a line of {len(line) + 2} bytes: {line[:80]!r}..."
        if b"\r" in line or b"\n" in line or b"\x00" in line:
            return f"CR, LF or NUL inside a line: {line!r}"
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            return f"not UTF-8: {line!r}"
    if not data.endswith(b"\r\n") and data:
        return f"a line without CR LF at the end: {data[-80:]!r}"
    return None


class Recorder(logging.Handler):
    """Log records at ERROR or above and records with a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)


@pytest.fixture
def logged() -> Iterator[Recorder]:
    recorder = Recorder()
    root = logging.getLogger()
    root.addHandler(recorder)
    try:
        yield recorder
    finally:
        root.removeHandler(recorder)


class Sink:
    def __init__(self) -> None:
        self.data: list[bytes] = []
        self.closed: str | None = None

    def send(self, data: bytes) -> None:
        self.data.append(data)

    def close(self, reason: str) -> None:
        self.closed = reason

    def take(self) -> bytes:
        out = b"".join(self.data)
        self.data.clear()
        return out


def client(net: Network, nick: str, *channels: str) -> tuple[Session, Sink]:
    sink = Sink()
    policy = LinkPolicy(flood_rate=0)
    session = Session(net, "10.0.0.1", sink.send, sink.close, policy, 0.0)
    session.receive_line(f"NICK {nick}".encode(), 0.0)
    session.receive_line(f"USER {nick} 0 * :{nick}".encode(), 0.0)
    for channel in channels:
        session.receive_line(f"JOIN {channel}".encode(), 0.0)
    assert session.user.registered
    return session, sink


def test_fuzz_sansio(logged: Recorder) -> None:
    print(f"MEDUSA_FUZZ_SEED={SEED} MEDUSA_FUZZ_CASES={CASES}")
    rng = random.Random(SEED)
    net = Network(NetworkConfig(motd=("fuzz",)))
    op, op_sink = client(net, "fz_op", "#fuzz", "#other")
    peer, peer_sink = client(net, "fz_peer", "#fuzz", "#other")
    fuzzer, sink = client(net, "fz", "#fuzz")
    line = b""

    def problem(text: str, case: int) -> str:
        return f"{text} (MEDUSA_FUZZ_SEED={SEED}, case {case}, line {line!r})"

    for case in range(CASES):
        line = mutate(rng, rng.choice(CORPUS))
        fuzzer.receive_line(line, float(case))
        for each in (sink, op_sink, peer_sink):
            bad = well_formed(each.take())
            assert bad is None, problem(bad or "", case)
        assert not logged.records, problem(logging.Formatter().format(logged.records[0]), case)
        if fuzzer.user.gone:
            reason = sink.closed or ""
            assert reason.startswith("Quit"), problem(f"dropped: {reason}", case)
            fuzzer, sink = client(net, "fz", "#fuzz")
        assert not op.user.gone, problem("an observer was dropped", case)
        assert not peer.user.gone, problem("an observer was dropped", case)


class Raw:
    """A raw IRC connection for the socket round."""

    def __init__(self, port: int, nick: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.received = b""
        self.sock.sendall(f"NICK {nick}\r\nUSER {nick} 0 * :{nick}\r\nJOIN #fuzz\r\n".encode())
        self.until(b" 366 ")

    def until(self, needle: bytes) -> bool:
        """Read until ``needle``; False when the server closed the connection first (a
        reset counts: lines sent after a QUIT may arrive once the server has closed)."""
        deadline = time.monotonic() + TIMEOUT
        while needle not in self.received:
            assert time.monotonic() < deadline, f"no {needle!r} in time"
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return False
            if not chunk:
                return False
            self.received += chunk
        return True

    def take(self) -> bytes:
        """The whole lines received so far."""
        end = self.received.rfind(b"\r\n") + 2
        data, self.received = self.received[:end], self.received[end:]
        return data


@pytest.fixture(params=["asyncio", "uvloop"])
def served(request: pytest.FixtureRequest) -> Iterator[ChatServer]:
    chat = ChatServer(("127.0.0.1", 0), flood_rate=0, max_clients_per_address=1000)
    with ServerThread([chat], backend=request.param):
        yield chat


def test_fuzz_over_a_socket(served: ChatServer, logged: Recorder) -> None:
    print(f"MEDUSA_FUZZ_SEED={SEED} MEDUSA_FUZZ_CASES={CASES}")
    rng = random.Random(SEED + 1)
    cases = max(100, CASES // 10)
    watcher = Raw(served.port, "fz_watch")
    joins = 0
    fuzzer = Raw(served.port, "fz_sock0")
    try:
        for start in range(0, cases, 20):
            batch = [mutate(rng, rng.choice(CORPUS)) for _ in range(min(20, cases - start))]
            token = f"batch{start}".encode()
            lines = b"".join(line + b"\r\n" for line in batch)
            fuzzer.sock.sendall(lines + b"PING " + token + b"\r\n")
            where = f"(MEDUSA_FUZZ_SEED={SEED}, socket batch {start}: {batch!r})"
            answered = fuzzer.until(b"PONG medusa :" + token)
            bad = well_formed(fuzzer.take())
            assert bad is None, f"{bad} {where}"
            if not answered:  # only a QUIT of its own may end the fuzzer's connection
                quits = [line for line in batch if not has_forbidden(line.decode("latin-1"))]
                assert any(command_name(line) == "QUIT" for line in quits), f"dropped {where}"
                assert b"ERROR :Closing Link: 127.0.0.1 (Excess" not in fuzzer.received, where
                fuzzer.sock.close()
                joins += 1
                fuzzer = Raw(served.port, f"fz_sock{joins}")
            watcher.sock.sendall(b"PING :" + token + b"\r\n")
            assert watcher.until(b"PONG medusa :" + token), f"watcher dropped {where}"
            bad = well_formed(watcher.take())
            assert bad is None, f"{bad} {where}"
            assert not logged.records, logging.Formatter().format(logged.records[0]) + where
    finally:
        fuzzer.sock.close()
        watcher.sock.close()
