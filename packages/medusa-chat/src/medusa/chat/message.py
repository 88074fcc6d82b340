"""IRC messages: parsing a received line and formatting one to send (sans-IO).

The grammar is RFC 2812 section 2.3.1 (and RFC 1459 section 2.3.1): an optional
``:prefix``, a command (letters or a three-digit numeric), up to 15 parameters separated by
spaces, the last of which may be a "trailing" parameter introduced by ``:`` that can hold
spaces. A line is at most 512 bytes counting the final CR LF (RFC 1459 section 2.3).
IRCv3 message tags (``@a=b;c ...``) sent by modern clients are accepted and ignored.

Text is handled as :class:`str` decoded from UTF-8 with ``surrogateescape``, so bytes that are
not UTF-8 (old clients in Latin-1) pass through unchanged when the line is encoded again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "MAX_LINE",
    "MAX_PARAMS",
    "Message",
    "decode_line",
    "encode_line",
    "format_line",
    "parse_message",
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
    """Decode one received line (without CR LF) as UTF-8, keeping undecodable bytes as
    surrogates so that :func:`encode_line` restores them exactly."""
    return line.decode("utf-8", "surrogateescape")


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
    holds a space or starts with ``:``; the others must be single words.

    Args:
        prefix: the origin (server name or ``nick!user@host``) or ``None``.
        command: the command or numeric.
        params: the parameters.
    """
    parts = [f":{prefix} {command}" if prefix else command]
    if params:
        parts.extend(params[:-1])
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
