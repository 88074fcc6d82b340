"""Unix-domain sockets as an access boundary: a private directory, mode 0600, and the
peer's credentials.

A monitor socket lives in a directory that only its owner can enter (no group or other
permission bits), so nobody else can reach it even in the instant between ``bind`` and
``chmod``; the socket itself is then made mode 0600. On Linux the kernel also tells the
server who connected (``SO_PEERCRED``, socket(7)): the pid, uid and gid of the peer.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import struct
from dataclasses import dataclass
from typing import Any

__all__ = ["HAVE_PEERCRED", "PeerCredentials", "peer_credentials", "prepare_socket_directory"]

HAVE_PEERCRED = hasattr(socket, "SO_PEERCRED")
"""True where the kernel reports a Unix-socket peer's credentials (Linux)."""

_UCRED = struct.Struct("3i")


@dataclass(frozen=True, slots=True)
class PeerCredentials:
    """The process at the other end of a Unix-domain socket (from ``SO_PEERCRED``)."""

    pid: int
    uid: int
    gid: int


def peer_credentials(sock: Any) -> PeerCredentials | None:
    """Return the peer's credentials of a connected Unix-domain socket, or ``None`` where
    the platform cannot tell (or ``sock`` is not a Unix socket).

    Args:
        sock: a socket, or the socket-like object a transport gives
            (``transport.get_extra_info("socket")``).
    """
    if not HAVE_PEERCRED or sock is None:
        return None
    try:
        if sock.family != socket.AF_UNIX:
            return None
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    except (OSError, AttributeError):
        return None
    pid, uid, gid = _UCRED.unpack(raw)
    return PeerCredentials(pid, uid, gid)


def prepare_socket_directory(path: str) -> None:
    """Make sure the directory of socket ``path`` is private to this process's user.

    A missing directory (the last component only) is created with mode 0700. An existing
    one must be owned by this user (the effective uid) and have no group or other
    permission bits.

    Raises:
        PermissionError: the directory is another user's, or others may enter it.
        OSError: it cannot be created or examined.
    """
    directory = os.path.dirname(os.path.abspath(path))
    with contextlib.suppress(FileExistsError):
        os.mkdir(directory, 0o700)
    info = os.stat(directory)
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(f"{directory}: not a directory")
    if info.st_uid != os.geteuid():
        raise PermissionError(
            f"{directory}: the monitor's socket directory belongs to uid {info.st_uid}, "
            f"not to this process's uid {os.geteuid()}"
        )
    if info.st_mode & 0o077:
        raise PermissionError(
            f"{directory}: other users may enter the monitor's socket directory "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); use a private one (chmod 700)"
        )
