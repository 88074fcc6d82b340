"""Taking a Unix user's persona for the length of one file-system operation, as the
original Medusa did: the server runs as root, and around each operation of a real user's
session sets the supplementary groups, then the effective gid, then the effective uid, and
restores them in a ``finally``.

The effective uid is a property of the whole process, so these operations must run on the
event loop's thread, one at a time, and never in a thread pool. :class:`PersonaFilesystem`
wraps a :class:`~medusa.core.vfs.Filesystem` so that every call happens as the user.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO

from medusa.core.vfs import Filesystem, OpenFile

__all__ = ["Persona", "PersonaFilesystem"]


class _Assumed:
    """The persona assumed now on the loop's thread (one per process: the effective uid is
    process-wide)."""

    active: Persona | None = None
    depth = 0
    saved: tuple[int, int, list[int]] = (0, 0, [])


_state = _Assumed()


@dataclass(frozen=True, slots=True)
class Persona:
    """A Unix identity to assume: ``with persona: ...`` runs the block with the effective
    uid, gid and supplementary groups of the user, and restores the server's own afterwards.

    Entering again while the same persona is active only nests (the identity is restored
    when the outermost block ends). Entering a different persona while one is active is a
    bug and raises :class:`RuntimeError`.

    Attributes:
        uid: the user id.
        gid: the primary group id.
        groups: the supplementary group ids (``os.getgrouplist``).

    Raises:
        PermissionError: on entering, when the process may not change identity (not root).
    """

    uid: int
    gid: int
    groups: tuple[int, ...] = ()

    def __enter__(self) -> Persona:
        active = _state.active
        if active is self:
            _state.depth += 1
            return self
        if active is not None:
            raise RuntimeError("another persona is active")
        saved = (os.geteuid(), os.getegid(), os.getgroups())
        try:
            os.setgroups(list(self.groups))
            os.setegid(self.gid)
            os.seteuid(self.uid)
        except BaseException:
            _restore(saved)
            raise
        _state.active, _state.depth, _state.saved = self, 1, saved
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        _state.depth -= 1
        if _state.depth:
            return
        _state.active = None
        _restore(_state.saved)


def _restore(saved: tuple[int, int, list[int]]) -> None:
    """Become the server again: uid first (root may then change the gid and groups)."""
    euid, egid, groups = saved
    os.seteuid(euid)
    os.setegid(egid)
    os.setgroups(groups)


class PersonaFilesystem:
    """A :class:`~medusa.core.vfs.Filesystem` whose every call runs as ``persona``.

    Args:
        inner: the filesystem (an :class:`~medusa.core.filesys.OSFilesystem` on the user's
            home directory).
        persona: the identity to assume around each call.
    """

    def __init__(self, inner: Filesystem, persona: Persona) -> None:
        self.inner = inner
        self.persona = persona

    def cwd(self) -> str:
        """See :meth:`Filesystem.cwd` (no file-system access)."""
        return self.inner.cwd()

    def normalize(self, path: str) -> str:
        """See :meth:`Filesystem.normalize` (no file-system access)."""
        return self.inner.normalize(path)

    def chdir(self, path: str) -> None:
        """See :meth:`Filesystem.chdir`."""
        with self.persona:
            self.inner.chdir(path)

    def cdup(self) -> None:
        """See :meth:`Filesystem.cdup`."""
        with self.persona:
            self.inner.cdup()

    def translate(self, path: str) -> str:
        """See :meth:`Filesystem.translate`."""
        with self.persona:
            return self.inner.translate(path)

    def stat(self, path: str) -> os.stat_result:
        """See :meth:`Filesystem.stat`."""
        with self.persona:
            return self.inner.stat(path)

    def lstat(self, path: str) -> os.stat_result:
        """See :meth:`Filesystem.lstat`."""
        with self.persona:
            return self.inner.lstat(path)

    def readlink(self, path: str) -> str:
        """See :meth:`Filesystem.readlink`."""
        with self.persona:
            return self.inner.readlink(path)

    def exists(self, path: str) -> bool:
        """See :meth:`Filesystem.exists`."""
        with self.persona:
            return self.inner.exists(path)

    def isdir(self, path: str) -> bool:
        """See :meth:`Filesystem.isdir`."""
        with self.persona:
            return self.inner.isdir(path)

    def isfile(self, path: str) -> bool:
        """See :meth:`Filesystem.isfile`."""
        with self.persona:
            return self.inner.isfile(path)

    def listdir(self, path: str) -> list[str]:
        """See :meth:`Filesystem.listdir`."""
        with self.persona:
            return self.inner.listdir(path)

    def open(self, path: str, mode: str = "rb") -> BinaryIO:
        """See :meth:`Filesystem.open`; the file is opened (and created) as the user."""
        with self.persona:
            return self.inner.open(path, mode)

    def mkdir(self, path: str) -> None:
        """See :meth:`Filesystem.mkdir`."""
        with self.persona:
            self.inner.mkdir(path)

    def rmdir(self, path: str) -> None:
        """See :meth:`Filesystem.rmdir`."""
        with self.persona:
            self.inner.rmdir(path)

    def remove(self, path: str) -> None:
        """See :meth:`Filesystem.remove`."""
        with self.persona:
            self.inner.remove(path)

    def rename(self, src: str, dst: str) -> None:
        """See :meth:`Filesystem.rename`."""
        with self.persona:
            self.inner.rename(src, dst)

    def open_read(self, path: str) -> OpenFile:
        """See :meth:`Filesystem.open_read`."""
        with self.persona:
            return self.inner.open_read(path)

    def getsize(self, path: str) -> int:
        """See :meth:`Filesystem.getsize`."""
        with self.persona:
            return self.inner.getsize(path)

    def getmtime(self, path: str) -> float:
        """See :meth:`Filesystem.getmtime`."""
        with self.persona:
            return self.inner.getmtime(path)
