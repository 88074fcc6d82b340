"""Fixtures shared by medusa-core's tests."""

from __future__ import annotations

import importlib.util

import pytest

HAVE_UVLOOP = importlib.util.find_spec("uvloop") is not None

BACKENDS = [
    "asyncio",
    pytest.param(
        "uvloop", marks=pytest.mark.skipif(not HAVE_UVLOOP, reason="uvloop not installed")
    ),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """The event loop a test runs on: the standard loop, then uvloop (when installed)."""
    return str(request.param)
