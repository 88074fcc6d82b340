"""The README's ``hatch run medusa ...`` in a clone: Ctrl-C (SIGINT to the terminal's whole
foreground process group: hatch, and medusa under it) stops the server with exit status 0,
as ``medusa`` alone does. Without the ``medusa`` script of ``hatch.toml`` (``exec medusa``),
the shell between hatch and medusa died of the SIGINT and hatch exited 254."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.conftest import REPO, STOP_TIMEOUT, wait_until

from medusa.core.testing import require_tool


def test_ctrl_c_under_hatch_run_medusa_exits_0(tmp_path: Path) -> None:
    hatch = require_tool("hatch", "pip install hatch")
    out = tmp_path / "stdout"
    with open(out, "wb") as stdout:
        process = subprocess.Popen(
            [hatch, "run", "medusa", "serve", str(tmp_path), "--http", "127.0.0.1:0"],
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's job is
        )
    try:
        wait_until(
            lambda: b"listening on" in out.read_bytes() or process.poll() is not None,
            "medusa under hatch to listen",
            timeout=120,  # hatch may first check the environment's dependencies
        )
        assert process.poll() is None, out.read_text()
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        status = process.wait(STOP_TIMEOUT)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert status == 0, out.read_text()
