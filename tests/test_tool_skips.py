"""A test that needs a system tool skips with the install command when the tool is missing;
with ``MEDUSA_NO_SKIP=1`` (CI) a missing tool, and any skip, fails the run instead.

Each case runs a real pytest in a subprocess on a small test file next to a copy of the
repository's root ``conftest.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from medusa.core.testing import NO_SKIP_ENV, require_tool

REPO = Path(__file__).resolve().parent.parent

_TESTS = """
from medusa.core.testing import require_tool

def test_needs_a_missing_tool():
    require_tool("medusa-no-such-tool", "apt-get install medusa-no-such-package")

def test_runs():
    assert True
"""


def _pytest(tmp_path: Path, tests: str, no_skip: bool) -> subprocess.CompletedProcess[str]:
    """Run pytest on ``tests`` (a test module's text) beside a copy of the root conftest."""
    shutil.copy(REPO / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_sample.py").write_text(tests)
    env = {k: v for k, v in os.environ.items() if k != NO_SKIP_ENV}
    if no_skip:
        env[NO_SKIP_ENV] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", "--rootdir",
         str(tmp_path), "-c", os.devnull, str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_missing_tool_skips_with_its_install_command(tmp_path: Path) -> None:
    done = _pytest(tmp_path, _TESTS, no_skip=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 1 skipped" in done.stdout
    assert "medusa-no-such-tool is not installed" in done.stdout
    assert "apt-get install medusa-no-such-package" in done.stdout


def test_with_no_skip_a_missing_tool_fails_the_run(tmp_path: Path) -> None:
    done = _pytest(tmp_path, _TESTS, no_skip=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 failed, 1 passed" in done.stdout
    assert "apt-get install medusa-no-such-package" in done.stdout


def test_with_no_skip_any_skip_fails_the_run(tmp_path: Path) -> None:
    skipped = (
        "import pytest\n\n@pytest.mark.skipif(True, reason='curl is not installed')\n"
        "def test_curl():\n    pass\n"
    )
    done = _pytest(tmp_path, skipped, no_skip=True)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "skipped tests are failures" in done.stdout
    assert "test_sample.py::test_curl: curl is not installed" in done.stdout


def test_require_tool_finds_an_installed_program() -> None:
    assert require_tool("sh", "apt-get install dash") == shutil.which("sh")


def test_require_tool_looks_in_sbin(monkeypatch: pytest.MonkeyPatch) -> None:
    sbin = next((d for d in ("/usr/sbin", "/sbin") if Path(d, "ldconfig").exists()), None)
    if sbin is None:
        pytest.fail("no ldconfig in /usr/sbin or /sbin to look for")
    monkeypatch.setenv("PATH", "/nonexistent")
    assert require_tool("ldconfig", "apt-get install libc-bin").endswith("/ldconfig")
