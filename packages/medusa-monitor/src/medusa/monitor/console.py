"""The interactive interpreter of one monitor session: compile, run in the loop, capture.

Compilation follows the interactive interpreter (:mod:`codeop`, mode ``"single"``: an
expression statement echoes its ``repr``; a compound statement ends at a blank line) with
``ast.PyCF_ALLOW_TOP_LEVEL_AWAIT``, as ``python -m asyncio`` does, so ``await`` works at
the top level. A block sent whole (``EXEC``) is parsed as a module and compiled as one
interactive unit, so each of its top-level expressions echoes too.

Code runs in the event loop's thread, from the channel's callback: nothing else in the
process runs meanwhile, so it sees consistent state, and while it runs every server waits.

Output goes to the session that ran the code only:

* synchronous code runs with ``sys.stdout``, ``sys.stderr``, ``sys.stdin`` and
  ``sys.displayhook`` replaced by the session's (restored when it returns); no other
  session's code can run in between, as there is one loop thread;
* code that awaits becomes a task whose coroutine is wrapped (:class:`_Redirected`) so the
  replacement is in place during each of its steps only, and taken back whenever it
  suspends: other sessions and servers run between the steps with the real streams.

Tasks that the code starts itself (``asyncio.create_task``) and threads print to the
server's own streams. ``sys.stdin`` reads as empty, so ``input()`` raises ``EOFError``
instead of blocking the server. Output beyond ``output_limit`` bytes per reply is dropped
and counted.
"""

from __future__ import annotations

import ast
import asyncio
import codeop
import inspect
import io
import linecache
import sys
import traceback
import types
from collections.abc import Callable, Coroutine, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["CappedOutput", "Console", "Outcome"]

_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one execution produced.

    Attributes:
        ok: False when it raised, did not compile, or was cancelled.
        output: what it printed and echoed, then its traceback (capped).
        exit: True when it raised ``SystemExit`` (``exit()``): the session should end.
    """

    ok: bool
    output: str
    exit: bool = False


class CappedOutput(io.TextIOBase):
    """A text stream that keeps at most ``limit`` bytes (UTF-8) and counts the rest.

    Args:
        limit: bytes kept.
    """

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self.kept = 0
        self.dropped = 0
        self._parts: list[str] = []

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, s: str) -> int:
        """Keep what fits of ``s``; count the rest."""
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        room = self.limit - self.kept
        if room <= 0:
            self.dropped += len(s.encode("utf-8", "replace"))
            return len(s)
        data = s.encode("utf-8", "replace")
        if len(data) <= room:
            self._parts.append(s)
            self.kept += len(data)
        else:
            part = data[:room].decode("utf-8", "ignore")  # whole characters only
            self._parts.append(part)
            self.kept = self.limit
            self.dropped += len(data) - len(part.encode("utf-8"))
        return len(s)

    def getvalue(self) -> str:
        """The text kept, followed by a note of what was dropped (if anything was)."""
        text = "".join(self._parts)
        if self.dropped:
            if text and not text.endswith("\n"):
                text += "\n"
            text += f"[output truncated: {self.dropped} more bytes not shown]\n"
        return text


class _ExitError(Exception):
    """Carries a ``SystemExit`` or ``KeyboardInterrupt`` out of a task: asyncio re-raises
    those two from the loop (which would stop the server), so they travel wrapped."""

    def __init__(self, original: BaseException) -> None:
        super().__init__(repr(original))
        self.original = original


class _Redirected(Coroutine[Any, Any, Any]):
    """A coroutine that runs each step of ``inner`` with the session's streams in place
    (see the module's description)."""

    def __init__(self, inner: Coroutine[Any, Any, Any], console: Console) -> None:
        self._inner = inner
        self._console = console

    def send(self, value: Any) -> Any:
        with self._console.redirected():
            try:
                return self._inner.send(value)
            except (SystemExit, KeyboardInterrupt) as exc:
                raise _ExitError(exc) from None

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:
        with self._console.redirected():
            try:
                if val is None and tb is None:
                    return self._inner.throw(typ)
                return self._inner.throw(typ, val, tb)
            except (SystemExit, KeyboardInterrupt) as exc:
                raise _ExitError(exc) from None

    def close(self) -> None:
        with self._console.redirected():
            self._inner.close()

    def __await__(self) -> Generator[Any, None, Any]:
        raise TypeError("this coroutine is run by its task only")


class Console:
    """The interpreter state of one session: its namespace and unfinished statement.

    Args:
        namespace: the globals the code runs in (the live objects, see
            :mod:`medusa.monitor.namespace`).
        output_limit: bytes of output kept per execution.
        name: a tag for the file names of compiled input (``<monitor:NAME:N>``), which
            tracebacks and ``inspect.getsource`` show with their source lines.
    """

    def __init__(self, namespace: dict[str, Any], *, output_limit: int, name: str = "") -> None:
        self.namespace = namespace
        self.output_limit = output_limit
        self.name = name
        self._compiler = codeop.CommandCompiler()
        self._compiler.compiler.flags |= _FLAGS
        self._lines: list[str] = []
        self._count = 0
        self._out: CappedOutput | None = None
        self._stdin = io.StringIO("")

    # -- compiling -------------------------------------------------------------------------

    @property
    def pending(self) -> bool:
        """True while a statement begun with :meth:`feed` waits for more lines."""
        return bool(self._lines)

    @property
    def pending_lines(self) -> list[str]:
        """The lines of the unfinished statement."""
        return list(self._lines)

    def reset(self) -> None:
        """Forget the unfinished statement."""
        self._lines.clear()

    def _filename(self) -> str:
        self._count += 1
        return f"<monitor:{self.name}:{self._count}>" if self.name else f"<monitor:{self._count}>"

    def feed(self, line: str) -> types.CodeType | None:
        """Add one line of interactive input.

        Returns:
            The compiled statement once complete, ``None`` while more lines are needed.
            The lines are forgotten after a complete statement or an error.

        Raises:
            SyntaxError, ValueError, OverflowError: the statement cannot compile.
        """
        self._lines.append(line)
        source = "\n".join(self._lines)
        filename = self._filename()
        try:
            code = self._compiler(source, filename, "single")
        except BaseException:
            self._remember(filename, source)
            self._lines.clear()
            raise
        if code is None:
            self._count -= 1
            return None
        self._remember(filename, source)
        self._lines.clear()
        return code

    def compile_block(self, source: str) -> types.CodeType:
        """Compile a whole block; each top-level expression statement echoes its value.

        Raises:
            SyntaxError, ValueError, OverflowError: it cannot compile.
        """
        filename = self._filename()
        self._remember(filename, source)
        tree = ast.parse(source, filename, "exec")
        unit = ast.Interactive(body=tree.body)
        code: types.CodeType = compile(unit, filename, "single", flags=_FLAGS)
        return code

    @staticmethod
    def _remember(filename: str, source: str) -> None:
        """Give the source to :mod:`linecache` so tracebacks show its lines."""
        lines = [line + "\n" for line in source.split("\n")]
        linecache.cache[filename] = (len(source), None, lines, filename)

    # -- running ---------------------------------------------------------------------------

    @contextmanager
    def redirected(self) -> Iterator[None]:
        """Put this session's streams and display hook in place (see the module text)."""
        out = self._out
        if out is None:
            yield
            return
        saved = sys.stdout, sys.stderr, sys.stdin, sys.displayhook
        sys.stdout = sys.stderr = out
        sys.stdin = self._stdin
        sys.displayhook = self._display
        try:
            yield
        finally:
            sys.stdout, sys.stderr, sys.stdin, sys.displayhook = saved

    def _display(self, value: object) -> None:
        """The display hook: ``repr`` of an expression statement's value, kept as ``_``."""
        if value is None:
            return
        self.namespace["_"] = None
        text = repr(value)
        if self._out is not None:
            self._out.write(text + "\n")
        self.namespace["_"] = value

    def run(
        self, code: types.CodeType, done: Callable[[Outcome], None]
    ) -> asyncio.Task[Any] | None:
        """Run compiled input in the current thread (the loop's); call ``done`` with the
        outcome.

        Synchronous code runs to its end now and ``done`` is called before this returns
        ``None``. Code that awaits returns the running task (which the caller may cancel);
        ``done`` is called when it ends. Every exception (``SystemExit`` and
        ``KeyboardInterrupt`` included) becomes the outcome's traceback.

        Raises:
            RuntimeError: awaited code with no running event loop.
        """
        out = self._out = CappedOutput(self.output_limit)
        try:
            with self.redirected():
                value = eval(code, self.namespace)  # noqa: S307 -- the monitor's purpose
        except BaseException as exc:  # the server must survive whatever the code raised
            self._out = None
            done(self._failed(out, exc))
            return None
        if not (code.co_flags & inspect.CO_COROUTINE):
            self._out = None
            done(Outcome(True, out.getvalue()))
            return None
        task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(_Redirected(value, self))

        def finished(task: asyncio.Task[Any]) -> None:
            self._out = None
            if task.cancelled():
                out.write("cancelled\n")
                done(Outcome(False, out.getvalue()))
                return
            exc = task.exception()
            if isinstance(exc, _ExitError):
                exc = exc.original
            if exc is not None:
                done(self._failed(out, exc))
            else:
                done(Outcome(True, out.getvalue()))

        task.add_done_callback(finished)
        return task

    def syntax_error(self, exc: BaseException) -> Outcome:
        """The outcome of input that did not compile."""
        text = "".join(traceback.format_exception_only(type(exc), exc))
        return Outcome(False, _capped(text, self.output_limit))

    def _failed(self, out: CappedOutput, exc: BaseException) -> Outcome:
        if isinstance(exc, SystemExit):  # exit(): the session ends, without a traceback
            return Outcome(True, out.getvalue(), exit=True)
        tb = exc.__traceback__
        start = tb
        while start is not None and not start.tb_frame.f_code.co_filename.startswith("<monitor"):
            start = start.tb_next
        lines = traceback.format_exception(type(exc), exc, start or tb)
        out.write("".join(lines))
        return Outcome(False, out.getvalue())


def _capped(text: str, limit: int) -> str:
    out = CappedOutput(limit)
    out.write(text)
    return out.getvalue()
