"""The session interpreter: interactive compilation (``...`` continuation), echo of
expressions, top-level await, tracebacks that never escape, output kept per session and
capped, all inside a running event loop."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import pytest

from medusa.monitor.console import CappedOutput, Console, Outcome


def console(limit: int = 65536) -> Console:
    return Console({"__name__": "__monitor__", "asyncio": asyncio}, output_limit=limit, name="t")


async def run_line(con: Console, *lines: str) -> Outcome | None:
    """Feed lines; run the statement they complete; return its outcome (None: MORE)."""
    code = None
    for line in lines:
        code = con.feed(line)
    if code is None:
        return None
    return await run_code(con, code)


async def run_code(con: Console, code: Any) -> Outcome:
    outcomes: list[Outcome] = []
    task = con.run(code, outcomes.append)
    if task is not None:
        await asyncio.wait([task])
    assert len(outcomes) == 1
    return outcomes[0]


def test_expressions_echo_and_statements_run() -> None:
    async def main() -> None:
        con = console()
        assert await run_line(con, "x = 6") == Outcome(True, "")
        assert await run_line(con, "x * 7") == Outcome(True, "42\n")
        assert con.namespace["_"] == 42
        assert await run_line(con, "None") == Outcome(True, "")
        assert await run_line(con, "'a'; 'b'") == Outcome(True, "'a'\n'b'\n")

    asyncio.run(main())


def test_compound_statements_need_a_blank_line() -> None:
    async def main() -> None:
        con = console()
        assert con.feed("for i in range(3):") is None
        assert con.pending
        assert con.feed("    print(i)") is None
        assert con.pending_lines == ["for i in range(3):", "    print(i)"]
        outcome = await run_line(con, "")
        assert outcome == Outcome(True, "0\n1\n2\n")
        assert not con.pending
        assert con.feed("def f():") is None
        con.reset()
        assert not con.pending
        assert await run_line(con, "f") is not None  # NameError: the def was forgotten

    asyncio.run(main())


def test_syntax_error_is_reported_and_forgotten() -> None:
    con = console()
    with pytest.raises(SyntaxError) as info:
        con.feed("x = = 1")
    outcome = con.syntax_error(info.value)
    assert not outcome.ok
    assert "SyntaxError" in outcome.output
    assert not con.pending


def test_exceptions_give_a_traceback_with_source() -> None:
    async def main() -> None:
        con = console()
        await run_line(con, "def f():", "    return 1 / 0", "")
        outcome = await run_line(con, "print('before'); f()")
        assert outcome is not None
        assert not outcome.ok
        out = outcome.output
        assert out.startswith("before\nTraceback (most recent call last):\n")
        assert "return 1 / 0" in out  # the source of the earlier input is shown
        assert out.rstrip().endswith("ZeroDivisionError: division by zero")
        assert "console.py" not in out  # the monitor's own frames are left out

    asyncio.run(main())


def test_system_exit_and_keyboard_interrupt_do_not_escape() -> None:
    async def main() -> None:
        con = console()
        outcome = await run_line(con, "raise SystemExit(3)")
        assert outcome == Outcome(True, "", exit=True)
        outcome = await run_line(con, "raise KeyboardInterrupt")
        assert outcome is not None
        assert not outcome.ok
        assert "KeyboardInterrupt" in outcome.output
        outcome = await run_line(con, "await asyncio.sleep(0); raise SystemExit")
        assert outcome == Outcome(True, "", exit=True)
        outcome = await run_line(con, "await asyncio.sleep(0); raise KeyboardInterrupt")
        assert outcome is not None
        assert not outcome.ok
        assert "KeyboardInterrupt" in outcome.output

    asyncio.run(main())


def test_top_level_await() -> None:
    async def main() -> None:
        con = console()
        outcome = await run_line(con, "await asyncio.sleep(0, 'slept')")
        assert outcome == Outcome(True, "'slept'\n")
        outcome = await run_line(con, "await asyncio.sleep(0); 1 / 0")
        assert outcome is not None
        assert "ZeroDivisionError" in outcome.output
        code = con.compile_block("a = 1\na + 1\nawait asyncio.sleep(0)\nprint('p')\na + 2\n")
        assert await run_code(con, code) == Outcome(True, "2\np\n3\n")

    asyncio.run(main())


def test_cancelled_await() -> None:
    async def main() -> None:
        con = console()
        outcomes: list[Outcome] = []
        code = con.feed("print('start'); await asyncio.sleep(3600)")
        assert code is not None
        task = con.run(code, outcomes.append)
        assert task is not None
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.wait([task])
        assert outcomes == [Outcome(False, "start\ncancelled\n")]

    asyncio.run(main())


def test_output_goes_to_its_own_session_only(capsys: pytest.CaptureFixture[str]) -> None:
    """Two sessions interleave: one awaits between prints, the other prints meanwhile;
    each sees its own lines, and the process's stdout sees none."""

    async def main() -> None:
        a, b = console(), console()
        a_out: list[Outcome] = []
        code = a.compile_block(
            "for i in range(3):\n    print('a', i)\n    await asyncio.sleep(0)\n"
        )
        task = a.run(code, a_out.append)
        assert task is not None
        await asyncio.sleep(0)
        assert await run_line(b, "print('b')") == Outcome(True, "b\n")
        print("outside")
        await asyncio.wait([task])
        assert a_out == [Outcome(True, "a 0\na 1\na 2\n")]

    real = sys.stdout
    asyncio.run(main())
    assert sys.stdout is real
    assert capsys.readouterr().out == "outside\n"


def test_input_does_not_block() -> None:
    async def main() -> None:
        outcome = await run_line(console(), "input('? ')")
        assert outcome is not None
        assert "EOFError" in outcome.output

    asyncio.run(main())


def test_output_is_capped() -> None:
    async def main() -> None:
        con = console(limit=1000)
        outcome = await run_line(con, "for i in range(100000): print('x' * 99)", "")
        assert outcome is not None
        assert outcome.ok
        assert len(outcome.output.encode()) < 1100
        assert outcome.output.endswith("[output truncated: 9999000 more bytes not shown]\n")

    asyncio.run(main())


def test_capped_output_cuts_at_a_character() -> None:
    out = CappedOutput(5)
    out.write("ééé")  # 6 bytes
    assert out.getvalue() == "éé\n[output truncated: 2 more bytes not shown]\n"
    with pytest.raises(TypeError):
        out.write(b"x")  # type: ignore[arg-type]
