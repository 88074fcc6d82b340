"""The independence check (``.ci/independence.sh``): every distribution builds a clean
wheel; medusa-core and medusa-http, installed alone into a bare venv (httptools from the
registry), serve a file, ``medusa plugins`` lists only http, no sibling package is
importable, and ``mypy --strict`` type-checks the public API against the installed wheels;
then medusa-core with medusa-ftp alone serves a file over FTP with no HTTP code installed.
Takes about 30 to 60 s."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.conftest import REPO

from medusa.core.testing import require_tool

pytestmark = pytest.mark.e2e

SCRIPT = REPO / ".ci" / "independence.sh"


def test_independence() -> None:
    require_tool("hatch", "pip install hatch")  # builds the wheels
    mypy = Path(sys.executable).with_name("mypy")
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "MYPY": str(mypy) if mypy.exists() else "mypy",
    }
    done = subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = f"--- stdout ---\n{done.stdout[-8000:]}\n--- stderr ---\n{done.stderr[-8000:]}"
    assert done.returncode == 0, output
    assert "independence: OK" in done.stdout, output
