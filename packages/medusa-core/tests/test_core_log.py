"""The log-line helpers of :mod:`medusa.core.log`: :func:`printable` escapes what could end
a line or hide in it (so a client cannot forge log lines), :func:`peer_text` writes a
client's address."""

from __future__ import annotations

from medusa.core.log import peer_text, printable


def test_printable_keeps_ordinary_text() -> None:
    for text in ("/index.html", "/a b/c?d=e", "/café/日本語", "", "'quoted'"):
        assert printable(text) is text


def test_printable_escapes_controls_and_backslash() -> None:
    assert printable("a\nb") == "a\\x0ab"
    assert printable("a\r\n2026-12-06 medusa WARNING x") == "a\\x0d\\x0a2026-12-06 medusa WARNING x"
    assert printable("\x00\x1b[31m\x7f") == "\\x00\\x1b[31m\\x7f"
    assert printable("\x85\u2028\u2029") == "\\x85\\u2028\\u2029"  # NEL, line and paragraph
    assert printable("\U000e0001") == "\\U000e0001"  # a format character
    assert printable("a\\x0ab") == "a\\\\x0ab"  # a literal backslash is not an escape
    assert printable("c\udcffd") == "c\\xffd"  # a byte kept by surrogateescape
    for text in ("a\nb", "\x00", "\u2028", "x\udc80"):
        assert printable(text).isprintable()


def test_peer_text() -> None:
    assert peer_text(("127.0.0.1", 8080)) == "127.0.0.1:8080"
    assert peer_text(("::1", 8080, 0, 0)) == "[::1]:8080"
    assert peer_text("/run/medusa.sock") == "/run/medusa.sock"
    assert peer_text("/tmp/a\nb") == "/tmp/a\\x0ab"
    assert peer_text(None) == "-"
    assert peer_text("") == "-"
