"""The sans-IO pieces: replies, command parsing, data-port and numeric arguments, MLSx
facts, TYPE A conversion, throttling, log lines and permissions. (Failed logins per
address: medusa-core's test_core_throttle.py; the names of temporary upload files:
test_core_uploads.py.)"""

from __future__ import annotations

import os
import stat
import time

import pytest

from medusa.ftp.accounts import parse_permissions
from medusa.ftp.arguments import MAX_OFFSET, parse_allo, parse_decimal
from medusa.ftp.commands import COMMANDS, CommandError, parse_command, strip_telnet
from medusa.ftp.dispatch import HANDLERS
from medusa.ftp.facts import DEFAULT_FACTS, feat_line, format_time, mlsx_line, parse_fact_names
from medusa.ftp.hostport import (
    AddressSyntaxError,
    canonical_host,
    epsv_reply,
    parse_eprt,
    parse_port,
    pasv_reply,
)
from medusa.ftp.linefeeds import FromNetwork, ToNetwork
from medusa.ftp.listings import split_list_arg
from medusa.ftp.replies import format_reply, quote_path
from medusa.ftp.throttle import Throttle
from medusa.ftp.xferlog import session_line, xferlog_line


def test_single_and_multi_line_replies() -> None:
    assert format_reply(200, "ok") == b"200 ok\r\n"
    assert format_reply(211, ["Features:", "EPSV", "200 End", "End"]) == (
        b"211-Features:\r\n EPSV\r\n 200 End\r\n211 End\r\n"
    )
    assert format_reply(250, "a\r\nb") == b"250-a\r\x00\r\n250 b\r\n"
    with pytest.raises(ValueError, match="reply code"):
        format_reply(42, "no")


def test_reply_text_keeps_undecodable_name_bytes() -> None:
    name = b"caf\xe9".decode("utf-8", "surrogateescape")
    assert format_reply(257, quote_path("/" + name)) == b'257 "/caf\xe9"\r\n'
    assert quote_path('/say "hi"') == '"/say ""hi"""'


def test_parse_command() -> None:
    assert parse_command(b"retr  a file \r") == parse_command(b"RETR  a file ")
    command = parse_command(b"RETR  a file ")
    assert (command.verb, command.arg) == ("RETR", " a file ")
    assert parse_command(b"noop").arg == ""
    assert parse_command("STOR héllo".encode()).arg == "héllo"
    assert parse_command(b"STOR \xe9\xfe").arg.encode("utf-8", "surrogateescape") == b"\xe9\xfe"
    for bad in (b"", b" RETR x", b"RE", b"RETRIEVE x", b"R3TR x", b"\xc3\xa9\xc3\xa9\xc3\xa9"):
        with pytest.raises(CommandError) as caught:
            parse_command(bad)
        assert caught.value.code == 500


def test_telnet_controls_are_removed() -> None:
    # IAC IP, IAC with its DM sent as urgent data (missing), then ABOR.
    assert strip_telnet(b"\xff\xf4\xffABOR") == b"ABOR"
    assert strip_telnet(b"\xff\xf4\xff\xf2ABOR") == b"ABOR"
    assert strip_telnet(b"\xff\xfb\x01NOOP") == b"NOOP"
    assert strip_telnet(b"a\xff\xffb") == b"a\xffb"
    assert parse_command(b"\xff\xf4\xffABOR").verb == "ABOR"


def test_every_command_has_a_handler() -> None:
    assert set(HANDLERS) == set(COMMANDS)
    for spec in COMMANDS.values():
        assert spec.syntax.startswith(spec.verb)


def test_port_and_eprt_arguments() -> None:
    assert parse_port("127,0,0,1,4,1") == ("127.0.0.1", 1025)
    assert parse_port(" 10,1,2,3,0,21") == ("10.1.2.3", 21)
    for bad in ("127,0,0,1,4", "127,0,0,1,4,256", "a,b,c,d,e,f", "", "1,2,3,4,5,-6"):
        with pytest.raises(AddressSyntaxError) as caught:
            parse_port(bad)
        assert caught.value.code == 501
    assert parse_eprt("|1|132.235.1.2|6275|") == ("132.235.1.2", 6275)
    assert parse_eprt("|2|1080::8:800:200C:417A|5282|") == ("1080::8:800:200c:417a", 5282)
    assert parse_eprt("!2!::ffff:127.0.0.1!5282!") == ("127.0.0.1", 5282)
    with pytest.raises(AddressSyntaxError) as caught:
        parse_eprt("|3|1.2.3.4|5000|")
    assert caught.value.code == 522
    for bad in ("|1|1.2.3.4|0|", "|1|::1|5000|", "|1|1.2.3.4|99999|", "|1|x|5|", "1.2.3.4"):
        with pytest.raises(AddressSyntaxError) as caught:
            parse_eprt(bad)
        assert caught.value.code == 501


def test_passive_replies() -> None:
    assert pasv_reply("127.0.0.1", 60001) == "Entering Passive Mode (127,0,0,1,234,97)."
    assert epsv_reply(60001) == "Entering Extended Passive Mode (|||60001|)"
    assert canonical_host("::ffff:10.0.0.1") == "10.0.0.1"
    assert canonical_host("fe80::1%eth0") == "fe80::1"
    with pytest.raises(ValueError, match="octets"):
        pasv_reply("::1", 21)


def _stat(mode: int, size: int = 10) -> os.stat_result:
    return os.stat_result((mode, 77, 5, 1, 1000, 100, size, 0, 1_700_000_000, 0))


def test_mlsx_facts() -> None:
    perms = parse_permissions("elradfmw")
    line = mlsx_line("a.txt", _stat(stat.S_IFREG | 0o644), DEFAULT_FACTS, perms)
    assert line == "type=file;size=10;modify=20231114221320;perm=adfrw;unique=5g4d; a.txt"
    every = parse_fact_names("type;unix.mode;UNIX.UID;bogus;")
    assert every == {"type", "unix.mode", "unix.uid"}
    line = mlsx_line("d", _stat(stat.S_IFDIR | 0o755), every, frozenset("el"))
    assert line == "type=dir;unix.mode=0755;unix.uid=1000; d"
    assert mlsx_line("d", _stat(stat.S_IFDIR), frozenset({"perm"}), frozenset("elr")) == (
        "perm=el; d"
    )
    assert feat_line(frozenset({"size"})).startswith("MLST type;size*;modify;")
    assert format_time(0) == "19700101000000"


def test_ascii_conversion_across_pieces() -> None:
    out = ToNetwork()
    assert out.convert(b"a\nb\r") + out.convert(b"\nc\n") == b"a\r\nb\r\nc\r\n"
    assert ToNetwork().convert(b"x\r\ny") == b"x\r\ny"
    back = FromNetwork()
    got = back.convert(b"a\r") + back.convert(b"\nb\r") + back.convert(b"c") + back.flush()
    assert got == b"a\nb\rc"
    back = FromNetwork()
    assert back.convert(b"end\r") + back.flush() == b"end\r"


def test_throttle() -> None:
    throttle = Throttle(1000)
    assert throttle.delay(100, 10.0) == pytest.approx(0.1)
    assert throttle.delay(100, 10.2) == 0.0
    assert throttle.delay(1000, 10.2) == pytest.approx(1.0)
    assert Throttle(10).chunk == 1024
    with pytest.raises(ValueError, match="greater than 0"):
        Throttle(0)


def test_log_lines() -> None:
    line = xferlog_line(
        when=time.time(),
        seconds=0.2,
        host="127.0.0.1",
        nbytes=12,
        path="/a b.txt",
        binary=True,
        direction="o",
        anonymous=True,
        user="guest@example.org",
        complete=False,
    )
    fields = line.split(" ")
    assert len(fields) == 18  # five of them the date
    assert fields[5:] == [
        "1",
        "127.0.0.1",
        "12",
        "/a_b.txt",
        "b",
        "_",
        "o",
        "a",
        "guest@example.org",
        "ftp",
        "0",
        "*",
        "i",
    ]
    assert session_line("1.2.3.4:5", None, "DELE /x\n") == "1.2.3.4:5 [-] DELE /x\\x0a"
    # A user name's blanks and controls of any kind become "_" (the usual name is kept).
    for user, field in [
        ("anonymous", "anonymous"),
        ("a b", "a_b"),
        ("a\tb\u00a0c\u2003d\u3000e", "a_b_c_d_e"),
        ("\x00x\x7f", "_x_"),
        ("", "-"),
        ("\u200bz", "_z"),
    ]:
        assert session_line("1.2.3.4:5", user, "quit") == f"1.2.3.4:5 [{field}] quit"


def test_permissions() -> None:
    assert parse_permissions(["read", "mkdir"]) == frozenset("elrm")
    assert parse_permissions("elradfmwM") == frozenset("elradfmwM")
    for bad in (["sudo"], "elrX", [""]):
        with pytest.raises(ValueError, match="unknown permission"):
            parse_permissions(bad)


def test_list_arguments() -> None:
    assert split_list_arg("-la") == ""
    assert split_list_arg("-l -a pub dir") == "pub dir"
    assert split_list_arg("pub") == "pub"


def test_decimal_arguments() -> None:
    assert parse_decimal("0", 255) == 0
    assert parse_decimal("255", 255) == 255
    assert parse_decimal("007", 255) == 7
    assert parse_decimal(str(MAX_OFFSET), MAX_OFFSET) == MAX_OFFSET
    for bad in ("", "256", "0007", "-1", "+1", " 1", "1 ", "1_0", "\u0661", "\u00b2", "\uff11"):
        assert parse_decimal(bad, 255) is None, bad
    assert parse_decimal(str(MAX_OFFSET + 1), MAX_OFFSET) is None
    assert parse_decimal("9" * 100_000, MAX_OFFSET) is None  # refused before int()
    assert parse_allo("100") == 100
    assert parse_allo("100 R 512") == 100
    assert parse_allo("100 r 512") == 100
    for bad in ("", "x", "100 R", "100 R x", "100 X 5", "1 2", "\u0661"):
        assert parse_allo(bad) is None, bad
