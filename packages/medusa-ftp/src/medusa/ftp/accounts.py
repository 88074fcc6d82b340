"""Who is logged in: an :class:`Account` (name, root directory, permissions, and for a real
Unix user the persona taken around file operations), and the permission words and letters.

Permission letters are pyftpdlib's, so its users' configurations carry over: ``e`` change
directory, ``l`` list (and ``SIZE``, ``MDTM``, ``MLST``, ``STAT path``), ``r`` retrieve,
``a`` append, ``d`` delete (files and directories), ``f`` rename, ``m`` make directory,
``w`` store, ``M`` change mode (``SITE CHMOD``). Words group them: ``read`` (``elr``),
``write`` (``aw``), ``delete``, ``rename``, ``mkdir``, ``chmod``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medusa.ftp.persona import Persona

__all__ = ["LETTERS", "READ_ONLY", "WORDS", "Account", "parse_permissions"]

LETTERS = frozenset("elradfmwM")
"""Every permission letter understood (pyftpdlib's, without ``T``)."""

WORDS: dict[str, str] = {
    "read": "elr",
    "write": "aw",
    "delete": "d",
    "rename": "f",
    "mkdir": "m",
    "chmod": "M",
}
"""Permission words and the letters each stands for."""

READ_ONLY = frozenset("elr")
"""What anonymous users get: enter directories, list, retrieve."""


def parse_permissions(value: str | Iterable[str]) -> frozenset[str]:
    """Return the permission letters of a configuration value.

    Args:
        value: a string of letters (``"elradfmw"``, pyftpdlib's form) or a list of words
            (``["read", "write", "delete", "rename", "mkdir"]``) and letter strings.

    Returns:
        The set of letters.

    Raises:
        ValueError: for an unknown letter or word.
    """
    items = [value] if isinstance(value, str) else list(value)
    letters: set[str] = set()
    for item in items:
        if item in WORDS:
            letters.update(WORDS[item])
            continue
        unknown = set(item) - LETTERS
        if unknown or not item:
            known = ", ".join(WORDS)
            raise ValueError(
                f"unknown permission {item!r} (words: {known}; letters: {''.join(sorted(LETTERS))})"
            )
        letters.update(item)
    return frozenset(letters)


@dataclass(frozen=True, slots=True)
class Account:
    """A user who logged in.

    Attributes:
        name: the login name (``"anonymous"`` for every anonymous login).
        root: the real directory that is ``/`` for this user.
        perms: the permission letters (see the module documentation).
        anonymous: True for anonymous logins (the password is their e-mail, logged).
        persona: for a real Unix user, the uid and gids taken around each file operation;
            ``None`` otherwise.
        home: the virtual directory the session starts in.
    """

    name: str
    root: str
    perms: frozenset[str] = field(default=READ_ONLY)
    anonymous: bool = False
    persona: Persona | None = None
    home: str = "/"

    def may(self, letter: str) -> bool:
        """Return True when the account has permission ``letter``."""
        return letter in self.perms
