"""IRC messages: parsing a received line and formatting one to send (sans-IO).

The grammar is RFC 2812 section 2.3.1 (and RFC 1459 section 2.3.1): an optional
``:prefix``, a command (letters or a three-digit numeric), up to 15 parameters separated by
spaces, the last of which may be a "trailing" parameter introduced by ``:`` that can hold
spaces. A line is at most 512 bytes counting the final CR LF (RFC 1459 section 2.3).
IRCv3 message tags (``@a=b;c ...``) sent by modern clients are accepted and ignored.

The server accepts UTF-8 only (``UTF8ONLY`` in ``RPL_ISUPPORT``, IRCv3's UTF8ONLY
specification; the second choice of modern.ircdocs.horse's "Character Encodings"): a line
that is not valid UTF-8 is refused (:func:`decode_line` raises), never relayed as it came.
A line holding NUL or CR is refused too: neither may appear in a parameter (RFC 2812
section 2.3.1, ``nospcrlfcl``), and a CR relayed to other clients would split the line.
Numbers in parameters are read with :func:`parse_number`: ASCII digits only (``str.isdigit``
also accepts ``'²'``, which ``int`` then refuses), and a bounded count of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "MAX_LINE",
    "MAX_PARAMS",
    "Message",
    "command_name",
    "decode_line",
    "encode_line",
    "format_line",
    "has_forbidden",
    "parse_message",
    "parse_number",
]

MAX_LINE = 512
"""Bytes of one line, CR LF included (RFC 1459 section 2.3)."""

MAX_PARAMS = 15
"""Parameters of one message (RFC 2812 section 2.3.1)."""


@dataclass(slots=True)
class Message:
    """One parsed IRC message.

    Attributes:
        command: the command, upper-cased (``"PRIVMSG"``), or a numeric (``"001"``).
        params: the parameters in order, the trailing one (if any) last, without its ``:``.
        prefix: the origin (``nick!user@host`` or a server name), or ``None``.
    """

    command: str
    params: list[str] = field(default_factory=list)
    prefix: str | None = None

    def param(self, index: int, default: str = "") -> str:
        """Return parameter ``index`` or ``default`` when there are fewer."""
        params = self.params
        return params[index] if index < len(params) else default


def decode_line(line: bytes) -> str:
    """Decode one received line (without CR LF) as UTF-8.

    Raises:
        UnicodeDecodeError: when the line is not valid UTF-8 (the server answers
            ``FAIL <command> INVALID_UTF8``; see :func:`command_name`).
    """
    return line.decode("utf-8")


def has_forbidden(text: str) -> bool:
    """True when a decoded line holds NUL or CR, which no part of a message may hold
    (RFC 2812 section 2.3.1; LF ends the line before it gets here)."""
    return "\x00" in text or "\r" in text


def command_name(line: bytes | str) -> str:
    """The command of a line that is refused whole, for the reply that says so: the first
    word after the optional tags and prefix when it is a command (1 to 20 ASCII letters or
    digits, RFC 2812 section 2.3.1), upper-cased, else ``"*"``.

    Args:
        line: the received line (bytes not yet decoded, or text).
    """
    text = line.decode("latin-1") if isinstance(line, bytes) else line
    words = text.split(" ")
    index = 0
    while index < len(words) and (not words[index] or words[index][0] in "@:"):
        index += 1
    word = words[index] if index < len(words) else ""
    if 0 < len(word) <= 20 and word.isascii() and word.isalnum():
        return word.upper()
    return "*"


def parse_number(text: str, max_digits: int = 9) -> int | None:
    """Read a non-negative decimal number sent by a client.

    Only ASCII digits count (``str.isdigit`` also accepts ``'²'`` and other Unicode digits,
    which ``int`` refuses or reads as digits); at most ``max_digits`` of them, so the value
    is bounded (below 10**9 by default).

    Args:
        text: the parameter.
        max_digits: the longest number accepted, in digits.

    Returns:
        the value, or ``None`` when ``text`` is empty, longer than ``max_digits`` or holds
        anything but ASCII digits (no sign, no spaces).
    """
    if not 0 < len(text) <= max_digits or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def parse_message(line: str) -> Message | None:
    """Parse one line (CR LF already removed) into a :class:`Message`.

    Args:
        line: the decoded line.

    Returns:
        the message, or ``None`` for a line with no command (empty, spaces, only a prefix or
        tags), which RFC 2812 says to ignore silently.
    """
    pos = 0
    end = len(line)
    if line.startswith("@"):  # IRCv3 tags: ignored
        space = line.find(" ")
        if space < 0:
            return None
        pos = space + 1
    while pos < end and line[pos] == " ":
        pos += 1
    prefix: str | None = None
    if pos < end and line[pos] == ":":
        space = line.find(" ", pos)
        if space < 0:
            return None
        prefix = line[pos + 1 : space]
        pos = space + 1
    params: list[str] = []
    command = ""
    while pos < end:
        if line[pos] == " ":
            pos += 1
            continue
        if command and (line[pos] == ":" or len(params) == MAX_PARAMS - 1):
            params.append(line[pos + 1 :] if line[pos] == ":" else line[pos:])
            break
        space = line.find(" ", pos)
        if space < 0:
            space = end
        word = line[pos:space]
        if command:
            params.append(word)
        else:
            command = word.upper()
        pos = space
    if not command:
        return None
    return Message(command, params, prefix)


def format_line(prefix: str | None, command: str, *params: str) -> str:
    """Format a message as text without CR LF.

    The last parameter is written as a trailing parameter (``:text``) when it is empty,
    holds a space or starts with ``:``; the others must be single words, and one that is
    not (empty, holding a space, starting with ``:``: a client's text echoed in an error
    reply) is written as ``*`` so that the line keeps its shape (RFC 2812 section 2.3.1).

    Args:
        prefix: the origin (server name or ``nick!user@host``) or ``None``.
        command: the command or numeric.
        params: the parameters.
    """
    parts = [f":{prefix} {command}" if prefix else command]
    if params:
        for middle in params[:-1]:
            if not middle or " " in middle or middle[0] == ":":
                middle = "*"
            parts.append(middle)
        last = params[-1]
        if not last or " " in last or last[0] == ":":
            last = ":" + last
        parts.append(last)
    return " ".join(parts)


def encode_line(text: str) -> bytes:
    """Encode a formatted line for the wire: UTF-8 (surrogates back to their bytes), cut
    to 510 bytes so that with the CR LF added it is at most :data:`MAX_LINE` bytes.

    Args:
        text: a line from :func:`format_line`, without CR LF.

    Returns:
        the bytes with CR LF at the end.
    """
    data = text.encode("utf-8", "surrogateescape")
    if len(data) > MAX_LINE - 2:
        data = data[: MAX_LINE - 2]
        # do not leave half of a UTF-8 sequence at the end
        cut = len(data)
        while cut > 0 and data[cut - 1] & 0xC0 == 0x80:
            cut -= 1
        if cut > 0 and data[cut - 1] >= 0xC0:
            need = 2 if data[cut - 1] < 0xE0 else 3 if data[cut - 1] < 0xF0 else 4
            if len(data) - (cut - 1) < need:
                data = data[: cut - 1]
    return data + b"\r\n"
