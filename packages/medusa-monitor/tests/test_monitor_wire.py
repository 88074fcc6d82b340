"""The wire protocol's messages, encoded and parsed without sockets."""

from __future__ import annotations

import pytest

from medusa.monitor import wire


def test_requests_parse() -> None:
    assert wire.parse_request(b"LINE  x = 1\r", max_length=10) == wire.Request("LINE", " x = 1\r")
    assert wire.parse_request(b"LINE", max_length=10) == wire.Request("LINE", "")
    assert wire.parse_request(b"EXEC 10\r", max_length=10) == wire.Request("EXEC", length=10)
    assert wire.parse_request(b"RESET", max_length=0) == wire.Request("RESET")
    assert wire.parse_request(b"CANCEL\r", max_length=0) == wire.Request("CANCEL")
    answer = "ab" * 32
    assert wire.parse_request(f"AUTH {answer}".encode(), max_length=0).text == answer


@pytest.mark.parametrize(
    "raw",
    [
        b"EXEC 11",
        b"EXEC -1",
        b"EXEC x",
        b"AUTH 12",
        b"AUTH " + b"AB" * 32,
        b"HELLO",
        b"\xff",
        b"RESET now",
        b"",
    ],
)
def test_bad_requests(raw: bytes) -> None:
    with pytest.raises(wire.ProtocolError):
        wire.parse_request(raw, max_length=10)


def test_request_encoding_round_trips() -> None:
    assert wire.line("print('é')") == "LINE print('é')\n".encode()
    assert wire.exec_block("é\n") == b"EXEC 3\n" + "é\n".encode()
    assert wire.auth(bytes(32)) == b"AUTH " + b"00" * 32 + b"\n"
    with pytest.raises(ValueError, match="newline"):
        wire.line("a\nb")


def test_hello_round_trips() -> None:
    nonce = bytes(range(32))
    assert wire.parse_hello(wire.hello(nonce).rstrip(b"\n")) == wire.Hello("hmac-sha256", nonce)
    assert wire.parse_hello(wire.hello(None).rstrip(b"\n")) == wire.Hello("peercred")
    with pytest.raises(wire.ProtocolError, match="locked"):
        wire.parse_hello(wire.denied("locked").rstrip(b"\n"))
    with pytest.raises(wire.ProtocolError, match="not a Medusa monitor"):
        wire.parse_hello(b"SSH-2.0-OpenSSH")


def test_replies() -> None:
    data = wire.result(False, "é\n")
    head, _, body = data.partition(b"\n")
    assert wire.parse_reply_head(head) == ("RESULT", ["error"], len(body))
    assert body.decode() == "é\n"
    assert wire.parse_reply_head(wire.more().rstrip(b"\n")) == ("MORE", [], 0)
    head, _, body = wire.ok("banner").partition(b"\n")
    assert wire.parse_reply_head(head) == ("OK", [], 6)
    # A length of Unicode digits, or too many for int() (over 4,300): a protocol error too.
    for bad in (b"RESULT maybe 3", b"OK x", b"WHAT", b"", "OK ²".encode(), b"OK " + b"9" * 5000):
        with pytest.raises(wire.ProtocolError):
            wire.parse_reply_head(bad)
