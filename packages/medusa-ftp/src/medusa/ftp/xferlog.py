"""Log lines, sans-IO: the transfer log in the ``xferlog`` format of wu-ftpd (and vsftpd,
ProFTPD), which log analysers read, and the session log's lines.

A transfer log line has fourteen fields separated by single spaces::

    Mon Nov 23 10:00:00 2026 1 127.0.0.1 1234 /pub/a.txt b _ o a anonymous ftp 0 * c

current time (local, ``ctime`` form), seconds taken, remote host, bytes, file name (blanks
and control characters replaced by ``_``), type (``a`` ASCII, ``b`` binary), special action
(``_`` none), direction (``o`` outgoing, ``i`` incoming, ``d`` deleted), access mode (``a``
anonymous, ``r`` real or virtual user), user name (the anonymous password for anonymous
users), service name, authentication method (``0`` none), authenticated user id (``*``),
completion (``c`` complete, ``i`` incomplete).
"""

from __future__ import annotations

import time

from medusa.core.log import printable

__all__ = ["session_line", "xferlog_line"]


def _field(text: str) -> str:
    """A field cannot hold blanks or control characters (they would shift the fields)."""
    if text and text.isprintable() and " " not in text:
        # The usual field: no other whitespace either, as every whitespace character but
        # the space is unprintable (str.isprintable: Unicode's separators and controls).
        return text
    cleaned = "".join("_" if ch.isspace() or not ch.isprintable() else ch for ch in text)
    return cleaned or "_"


def xferlog_line(
    *,
    when: float,
    seconds: float,
    host: str,
    nbytes: int,
    path: str,
    binary: bool,
    direction: str,
    anonymous: bool,
    user: str,
    complete: bool,
) -> str:
    """Return one transfer log line (see the module documentation).

    Args:
        when: the end of the transfer, seconds since the epoch.
        seconds: how long it took; written rounded to whole seconds, at least 1.
        host: the client's address.
        nbytes: bytes transferred.
        path: the file's virtual path.
        binary: ``TYPE I`` (else ASCII).
        direction: ``"o"`` (download), ``"i"`` (upload) or ``"d"`` (deleted).
        anonymous: an anonymous session.
        user: the user name (the anonymous password for anonymous users).
        complete: whether the transfer completed.

    Returns:
        The line, without an end of line.
    """
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(when))
    return " ".join(
        (
            stamp,
            str(max(1, round(seconds))),
            _field(host),
            str(nbytes),
            _field(path),
            "b" if binary else "a",
            "_",
            direction,
            "a" if anonymous else "r",
            _field(user),
            "ftp",
            "0",
            "*",
            "c" if complete else "i",
        )
    )


def session_line(peer: str, user: str | None, event: str) -> str:
    """Return a session log line: ``peer [user] event`` (``-`` before login).

    Args:
        peer: ``host:port`` of the client.
        user: the user name, or ``None`` before login.
        event: what happened (``"login ok"``, ``"login failed"``, ``"DELE /a"``...); control
            and other non-printable characters a client sent are escaped
            (:func:`medusa.core.log.printable`: ``\x0a``), so no line can be forged.
    """
    return f"{peer} [{_field(user) if user else '-'}] {printable(event)}"
