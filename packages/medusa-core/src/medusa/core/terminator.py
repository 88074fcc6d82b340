"""The asynchat model's input framing, sans-IO: splitting received bytes at a terminator.

:func:`split_at_terminator` takes the bytes of one read and hands them to a
:class:`TerminatorTarget` (a :class:`~medusa.core.channel.Channel`, or any object with the
same three members): the bytes before each terminator go to
:meth:`~TerminatorTarget.collect_incoming_data`, and
:meth:`~TerminatorTarget.found_terminator` is called where the terminator ends. The
terminator is read again after every ``found_terminator``, so a protocol may switch from
lines to a byte count (a message body) and back between two pieces of one read. A
terminator is

* ``bytes`` — a delimiter such as ``b"\\r\\n"`` (never passed to ``collect_incoming_data``);
  a delimiter split across two reads is found: the trailing bytes that may begin it are
  returned, to be put in front of the next read's bytes;
* ``int`` — a byte count, decremented as bytes arrive; it is 0 when ``found_terminator``
  is called, and a count left at 0 then acts like ``None`` (asynchat's rule);
* ``None`` — no terminator: every byte goes to ``collect_incoming_data``.

Nothing here does I/O or keeps state between reads: the caller keeps the returned bytes.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["TerminatorTarget", "find_prefix_at_end", "split_at_terminator"]


class TerminatorTarget(Protocol):
    """What :func:`split_at_terminator` needs from the receiver of the pieces."""

    terminator: bytes | int | None
    """The current terminator (see the module's text); read before every piece."""

    def collect_incoming_data(self, data: bytes) -> None:
        """Take bytes that precede the terminator (never empty)."""

    def found_terminator(self) -> None:
        """The terminator was reached."""

    def input_closed(self) -> bool:
        """True when the rest of the read is to be dropped (checked after each
        ``found_terminator``: the receiver closed)."""


def find_prefix_at_end(data: bytes | bytearray, terminator: bytes) -> int:
    """Return the length of the longest suffix of ``data`` that is a proper prefix of
    ``terminator`` (0 when none), i.e. how many trailing bytes may begin a terminator
    that the next read completes."""
    n = min(len(terminator) - 1, len(data))
    while n > 0 and not data.endswith(terminator[:n]):
        n -= 1
    return n


def split_at_terminator(target: TerminatorTarget, data: bytes) -> bytes:
    """Hand ``data`` to ``target`` in pieces split at its terminator (asynchat's algorithm).

    Args:
        target: receives the pieces; its ``terminator`` is read before each piece and a
            count is decremented in it as bytes arrive.
        data: the bytes of one read, preceded by what the previous call returned.

    Returns:
        The trailing bytes that may begin a ``bytes`` terminator (fewer than its length),
        which were not handed on: the caller puts them in front of the next read's
        bytes. ``b""`` otherwise, also when ``target.input_closed()`` stopped the split
        (the rest of the read is dropped).

    Raises:
        Whatever ``target``'s methods raise; the pieces handed on before stay handed on.
    """
    while data:
        terminator = target.terminator
        if terminator is None:
            target.collect_incoming_data(data)
            return b""
        if isinstance(terminator, int):
            if not terminator:  # a spent count: everything (asynchat's rule)
                target.collect_incoming_data(data)
                return b""
            if len(data) < terminator:
                target.collect_incoming_data(data)
                target.terminator = terminator - len(data)
                return b""
            target.collect_incoming_data(data[:terminator])
            data = data[terminator:]
            target.terminator = 0
            target.found_terminator()
        else:
            index = data.find(terminator)
            if index != -1:
                if index:
                    target.collect_incoming_data(data[:index])
                data = data[index + len(terminator) :]
                target.found_terminator()
            else:
                keep = find_prefix_at_end(data, terminator)
                if not keep:
                    target.collect_incoming_data(data)
                    return b""
                if len(data) > keep:
                    target.collect_incoming_data(data[:-keep])
                return data[-keep:]
        if data and target.input_closed():
            return b""
    return b""
