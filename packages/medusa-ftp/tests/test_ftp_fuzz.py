"""A seeded, bounded fuzz test of FTP command lines over a real control connection, on both
loops: mutations of valid commands (Unicode digits, huge numbers, NUL, long lines, bad
UTF-8, Telnet bytes, stray blanks and signs, random bytes) must each get a well-formed
reply (RFC 959 §4.2), never the 451 of an exception; the session stays usable (a NOOP
now and then, a real download at the end) and no traceback reaches the log.

``MEDUSA_FUZZ_CASES`` sets the number of command lines per loop (2000 by default);
``MEDUSA_FUZZ_SEED`` replays a run (the seed of each run is printed, and named in every
failure message).
"""

from __future__ import annotations

import logging
import os
import random
import re
import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from medusa.core.passwords import hash_password
from medusa.core.testing import ServerThread
from medusa.ftp import FTPServer, VirtualUser, parse_permissions

CASES = int(os.environ.get("MEDUSA_FUZZ_CASES", "2000"))
HASH = hash_password("secret")
REPLY = re.compile(rb"([1-5][0-9][0-9])([ -])")

VALID = [
    "NOOP",
    "SYST",
    "FEAT",
    "PWD",
    "CDUP",
    "CWD d",
    "CWD /",
    "HELP RETR",
    "STAT",
    "STAT f.txt",
    "TYPE I",
    "TYPE A",
    "TYPE L 8",
    "MODE S",
    "STRU F",
    "ALLO 1024",
    "ALLO 1024 R 128",
    "REST 100",
    "PORT 127,0,0,1,195,80",
    "EPRT |1|127.0.0.1|50000|",
    "EPRT |2|::1|50000|",
    "PASV",
    "EPSV",
    "EPSV 1",
    "RETR f.txt",
    "STOR up.txt",
    "APPE up.txt",
    "STOU",
    "LIST -la d",
    "NLST *.txt",
    "MLSD d",
    "MLST f.txt",
    "SIZE f.txt",
    "MDTM f.txt",
    "MKD new",
    "RMD new",
    "DELE gone.txt",
    "RNFR f.txt",
    "RNTO f.txt",
    "SITE CHMOD 644 f.txt",
    "SITE HELP",
    "SITE DIRSTYLE",
    "OPTS UTF8 ON",
    "OPTS MLST type;size;modify;",
    "PBSZ 0",
    "PROT P",
    "AUTH TLS",
    "ABOR",
    "USER u",
    "PASS secret",
    "ACCT x",
]

_DIGITS = ["\u0661", "\u0969", "\uff15", "\u00b2", "\u2467", "\U0001d7dc", "\u0e53"]
_TELNET = [b"\xff\xf4\xff\xf2", b"\xff\xfb\x01", b"\xff", b"\xff\xff", b"\xff\xfd", b"\xff\xf0"]
_BAD_UTF8 = [b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80", b"\xc0"]
_NOISE = [b"\x00", b"\r", b"\t", b" ", b"-", b"+", b"|", b",", b"..", b"/", b"*", b"%", b"\x1b"]


def mutate(rng: random.Random, command: str) -> bytes:
    """One mutation (sometimes two) of a valid command line; never a bare LF (a line
    terminator would make two commands of one)."""
    line = command.encode()
    for _ in range(rng.choice((1, 1, 1, 2))):
        line = _MUTATIONS[rng.randrange(len(_MUTATIONS))](rng, line)
    return line.replace(b"\n", b"")


def _unicode_digits(rng: random.Random, line: bytes) -> bytes:
    text = line.decode("utf-8", "surrogateescape")
    return re.sub(r"[0-9]", lambda _: rng.choice(_DIGITS), text).encode("utf-8", "surrogateescape")


def _huge_number(rng: random.Random, line: bytes) -> bytes:
    digits = (
        str(rng.choice((10**19, 2**63, 2**64)))
        if rng.random() < 0.3
        else "9" * rng.randint(20, 6000)
    )
    if re.search(rb"[0-9]+", line):
        return re.sub(rb"[0-9]+", digits.encode(), line, count=rng.randint(1, 3))
    return line + b" " + digits.encode()


def _insert(pieces: list[bytes]) -> Callable[[random.Random, bytes], bytes]:
    def insert(rng: random.Random, line: bytes) -> bytes:
        at = rng.randint(0, len(line))
        return line[:at] + rng.choice(pieces) + line[at:]

    return insert


def _long_line(rng: random.Random, line: bytes) -> bytes:
    return line + b" " + b"A" * rng.choice((100, 4000, 8200, 9000, 70_000))


def _random_bytes(rng: random.Random, line: bytes) -> bytes:
    data = bytearray(line)
    for _ in range(rng.randint(1, 4)):
        at = rng.randint(0, len(data))
        byte = rng.randrange(256)
        if byte == 0x0A:
            continue
        if data and rng.random() < 0.5 and at < len(data):
            data[at] = byte
        else:
            data.insert(at, byte)
    return bytes(data)


def _verb_case_and_cuts(rng: random.Random, line: bytes) -> bytes:
    choice = rng.randrange(4)
    if choice == 0:
        return line.lower()
    if choice == 1:
        return line[: rng.randint(0, len(line))]
    if choice == 2:
        return line.replace(b" ", b"  ", 1)
    return b" " + line


def _signs(rng: random.Random, line: bytes) -> bytes:
    return re.sub(rb"(?<![0-9])([0-9])", rng.choice((b"-\\1", b"+\\1", b" \\1", b"0x\\1")), line)


_MUTATIONS = [
    _unicode_digits,
    _huge_number,
    _insert([b"\x00"]),
    _insert(_TELNET),
    _insert(_BAD_UTF8),
    _insert(_NOISE),
    _insert(["\u00a0".encode(), "\u2028".encode(), "\ufeff".encode()]),
    _long_line,
    _random_bytes,
    _verb_case_and_cuts,
    _signs,
]


class Control:
    """A raw control connection: send any bytes as one line, read whole replies."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def close(self) -> None:
        self.sock.close()

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the control connection")
            self.buffer += data
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def reply(self) -> bytes:
        """Read one reply (all its lines); fail on a malformed one."""
        first = self._line()
        match = REPLY.match(first)
        assert match is not None, f"malformed reply {first[:80]!r}"
        code = match.group(1)
        if match.group(2) == b"-":
            while True:
                line = self._line()
                if line.startswith(code + b" "):
                    break
        return first

    def command(self, line: bytes) -> bytes:
        """Send ``line`` and return the first line of its final reply."""
        self.sock.sendall(line + b"\r\n")
        reply = self.reply()
        while reply[:1] == b"1":  # a transfer began: its end follows
            reply = self.reply()
        return reply


def login(control: Control) -> None:
    assert control.command(b"USER u").startswith(b"331")
    assert control.command(b"PASS secret").startswith(b"230")


@pytest.mark.parametrize("backend", ["asyncio", "uvloop"])
def test_mutated_command_lines(
    tmp_path: Path, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    seed = int(os.environ.get("MEDUSA_FUZZ_SEED", random.randrange(2**32)))
    print(f"MEDUSA_FUZZ_SEED={seed} MEDUSA_FUZZ_CASES={CASES}")
    rng = random.Random(seed)
    (tmp_path / "f.txt").write_bytes(b"fuzz\n")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "g.txt").write_bytes(b"g\n")
    (tmp_path / "keep.bin").write_bytes(bytes(range(256)) * 64)
    caplog.set_level(logging.WARNING, logger="medusa")
    users = [VirtualUser("u", str(tmp_path), parse_permissions("elradfmwM"), HASH)]
    server = FTPServer(
        ("127.0.0.1", 0),
        users=users,
        data_timeout=0.2,
        login_failure_delay=0,
        max_login_attempts=1_000_000,
        max_login_failures_per_ip=0,
        xferlog=False,
        session_log=False,
    )
    with ServerThread([server], backend=backend):
        control = Control(server.port)
        try:
            assert control.reply().startswith(b"220")
            login(control)
            for case in range(CASES):
                command = rng.choice(VALID)
                line = mutate(rng, command)
                where = f"seed={seed} case={case} line={line[:200]!r}"
                try:
                    reply = control.command(line)
                except (AssertionError, ConnectionError, OSError) as exc:
                    pytest.fail(f"{where}: {exc}")
                assert not reply.startswith(b"451"), f"{where}: {reply!r}"
                if reply.startswith(b"530 Please log in"):
                    login(control)  # a mutated USER/PASS may have changed the login
                verb = line.split(b" ", 1)[0].upper()
                port_set = reply[:3] == b"200" and verb in (b"PORT", b"EPRT")
                if reply[:3] in (b"227", b"229") or port_set:
                    # Drop the data port, so that a later transfer does not wait for it.
                    assert control.command(b"ABOR")[:3] in (b"225", b"226"), where
                if case % 100 == 99:
                    assert control.command(b"NOOP").startswith(b"200"), where
            # Still a working session: log in again and download a file.
            control.command(b"REIN")
            login(control)
            assert control.command(b"TYPE I").startswith(b"200")
            assert control.command(b"CWD /").startswith(b"250")
            control.sock.sendall(b"PASV\r\n")
            pasv = control.reply()
            numbers = [int(n) for n in re.findall(rb"\d+", pasv.split(b"(", 1)[1])]
            with socket.create_connection(
                ("127.0.0.1", numbers[4] * 256 + numbers[5]), timeout=10
            ) as data:
                control.sock.sendall(b"RETR keep.bin\r\n")
                assert control.reply()[:3] in (b"125", b"150")
                received = b""
                while chunk := data.recv(65536):
                    received += chunk
            assert control.reply().startswith(b"226")
            assert received == (tmp_path / "keep.bin").read_bytes()
        finally:
            control.close()
    problems = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not problems, f"seed={seed}: {[r.getMessage() for r in problems][:5]}"
