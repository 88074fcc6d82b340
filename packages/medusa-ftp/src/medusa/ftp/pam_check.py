"""A PAM password check in a process of its own: ``python -m medusa.ftp.pam_check SERVICE``
reads ``user NUL password`` on standard input and exits 0 when PAM accepts them, 1 when it
refuses them (PAM's reason on standard error), 2 when PAM (the ``pamela`` binding) is not
available or the input is bad, 3 when the check itself failed (the error on standard
error).

The server runs it as a child process rather than in a thread: PAM modules may sleep for
seconds after a failure, and the server's effective uid, which a session changes around its
file operations, is shared by every thread of the process.
"""

from __future__ import annotations

import importlib
import sys

__all__ = ["main"]


def main() -> int:
    """Check the credentials on standard input against PAM service ``argv[1]``; return the
    exit status (0 accepted, 1 refused, 2 PAM unavailable or bad input, 3 error)."""
    if len(sys.argv) != 2:
        return 2
    try:
        pamela = importlib.import_module("pamela")
    except ImportError:
        return 2
    raw = sys.stdin.buffer.read(65536)
    user_bytes, sep, password_bytes = raw.partition(b"\0")
    if not sep or not user_bytes:
        return 2
    user = user_bytes.decode("utf-8", "surrogateescape")
    password = password_bytes.decode("utf-8", "surrogateescape")
    try:
        pamela.authenticate(user, password, service=sys.argv[1])
    except pamela.PAMError as exc:
        print(f"PAM refused {user!r}: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"PAM check of {user!r} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
