"""The names of uploads in progress, sans-IO.

``STOR`` and ``STOU`` write a hidden temporary file beside their target,
``.NAME.XXXXXXXX.part`` (``XXXXXXXX``: eight random lower-case hexadecimal digits),
renamed over the target once complete. medusa-http's ``PUT`` does the same with
``.NAME.XXXXXXXX.upload`` (``XXXXXXXX``: eight characters of ``a-z``, ``0-9`` and ``_``,
from :func:`tempfile.mkstemp`). When one tree is served by both, neither kind may be
listed, downloaded or touched through FTP: a file of either pattern is treated as absent,
and a client may not create one (the name is reserved).
"""

from __future__ import annotations

import posixpath
import re
import secrets

__all__ = ["FTP_TEMPORARY", "is_upload_temporary", "temporary_name"]

FTP_TEMPORARY = re.compile(r"\..+\.[0-9a-f]{8}\.part\Z", re.DOTALL)
"""A base name of FTP's temporary upload files (``.NAME.XXXXXXXX.part``)."""

_HTTP_TEMPORARY = re.compile(r"\..+\.[a-z0-9_]{8}\.upload\Z", re.DOTALL)


def temporary_name(path: str) -> str:
    """Return a hidden name beside ``path`` for its upload in progress
    (``dir/.name.XXXXXXXX.part``, see :data:`FTP_TEMPORARY`)."""
    head, tail = posixpath.split(path)
    return posixpath.join(head, f".{tail}.{secrets.token_hex(4)}.part")


def is_upload_temporary(name: str) -> bool:
    """Return True when ``name`` (a base name, or a path: its last component counts) is
    the name of an upload in progress, FTP's (``.NAME.XXXXXXXX.part``) or HTTP's
    (``.NAME.XXXXXXXX.upload``)."""
    name = name[name.rfind("/") + 1 :]
    if not name.startswith("."):
        return False
    if name.endswith(".part"):
        return FTP_TEMPORARY.match(name) is not None
    return name.endswith(".upload") and _HTTP_TEMPORARY.match(name) is not None
