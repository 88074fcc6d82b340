"""Repository-wide pytest hooks (every test directory of the monorepo is below this file).

With ``MEDUSA_NO_SKIP=1`` in the environment (CI's ``.ci/run`` sets it after installing every
tool the tests use) a run with any skipped test fails: a test skipped for a missing client
or peer (curl, dnsmasq, rsyslogd, ...) would otherwise let CI pass without proving what it
tests. Without it, skips are reported as usual, each with the command that installs what is
missing (:func:`medusa.core.testing.require_tool`).
"""

from __future__ import annotations

import importlib.machinery
import os
from pathlib import Path

import pytest

from medusa.core.testing import NO_SKIP_ENV

_skipped: list[str] = []

_SOURCES = Path(__file__).parent / "packages"


def stale_compiled_modules() -> list[str]:
    """The modules compiled in place (medusa-http's editable install, mypyc) whose source
    was edited since: Python would import the compiled one, and the edit would go untested."""
    stale = []
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        for compiled in _SOURCES.glob(f"*/src/**/*{suffix}"):
            source = compiled.with_name(compiled.name.removesuffix(suffix) + ".py")
            if source.exists() and source.stat().st_mtime > compiled.stat().st_mtime:
                stale.append(str(source.relative_to(_SOURCES)))
    return stale


def pytest_sessionstart(session: pytest.Session) -> None:
    """Refuse to run against compiled modules older than their sources."""
    stale = stale_compiled_modules()
    if stale:
        pytest.exit(
            f"edited since they were compiled: {', '.join(stale)}; "
            "compile them again with `hatch env prune` (the next `hatch run` reinstalls)",
            returncode=2,
        )


def _no_skip() -> bool:
    return os.environ.get(NO_SKIP_ENV) == "1"


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Remember each skipped test (a skip in setup or in the test itself)."""
    if report.skipped and not hasattr(report, "wasxfail"):
        _skipped.append(f"{report.nodeid}: {_reason(report)}")


def pytest_collectreport(report: pytest.CollectReport) -> None:
    """Remember each module skipped at collection (``pytest.importorskip``)."""
    if report.skipped:
        _skipped.append(f"{report.nodeid}: {_reason(report)}")


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With ``MEDUSA_NO_SKIP=1``, make a run with skipped tests fail (exit status 1)."""
    if _no_skip() and _skipped and exitstatus in (pytest.ExitCode.OK, 0):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say why the run failed when skips are not allowed."""
    if _no_skip() and _skipped:
        terminalreporter.section(f"{NO_SKIP_ENV}=1: skipped tests are failures", red=True)
        for line in _skipped:
            terminalreporter.line(line, red=True)
