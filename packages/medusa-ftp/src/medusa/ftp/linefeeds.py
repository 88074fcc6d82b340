"""``TYPE A`` transfers, sans-IO: the conversion between the server's line ends (LF) and
the network's (CRLF), RFC 959 §3.1.1.1. Both converters keep state across pieces, so a
CRLF split between two reads is handled."""

from __future__ import annotations

__all__ = ["FromNetwork", "ToNetwork"]


class ToNetwork:
    """Convert file data to network ASCII: every LF not already preceded by CR becomes
    CRLF."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = b""

    def convert(self, data: bytes) -> bytes:
        """Return ``data`` with bare LFs turned into CRLF."""
        if not data:
            return data
        out = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        # A CRLF in the file (now CRLF again) is unchanged; a LF that starts this piece
        # after a CR that ended the last piece was already a CRLF.
        if self._last == b"\r" and data.startswith(b"\n"):
            out = out[1:]
        self._last = data[-1:]
        return out


class FromNetwork:
    """Convert network ASCII to file data: every CRLF becomes LF (a lone CR is kept)."""

    __slots__ = ("_cr",)

    def __init__(self) -> None:
        self._cr = False

    def convert(self, data: bytes) -> bytes:
        """Return ``data`` with CRLF turned into LF; a CR at the end is held back until the
        next piece shows whether an LF follows."""
        if self._cr:
            data = b"\r" + data
            self._cr = False
        if data.endswith(b"\r"):
            self._cr = True
            data = data[:-1]
        return data.replace(b"\r\n", b"\n")

    def flush(self) -> bytes:
        """Return what is held back at the end of the transfer (a final lone CR)."""
        if self._cr:
            self._cr = False
            return b"\r"
        return b""
