"""The descriptor-limit helpers (medusa.core.descriptors): the start-up fit of
max_connections, the near-the-limit test, and the loop exception handler for accept
failures. The whole behaviour under real limits is in tests/test_e2e_descriptors.py."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from typing import Any

import pytest

from medusa.core import descriptors
from medusa.core.server import Server


class Dummy(Server):
    name = "dummy"


def test_fit_connections_keeps_what_fits() -> None:
    soft, _ = descriptors.descriptor_limit()
    if soft is None:
        pytest.skip("no descriptor limit")
    server = Dummy(("127.0.0.1", 0), max_connections=1)
    descriptors.fit_connections([server])
    assert server.max_connections == 1
    assert descriptors.short_of_descriptors(3) is None
    assert descriptors.short_of_descriptors(soft) == soft


def test_accept_handler_logs_one_line_and_passes_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="medusa")
    passed: list[dict[str, Any]] = []
    handler = descriptors.accept_error_handler(lambda loop, context: passed.append(context))
    loop = asyncio.new_event_loop()
    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            context = {
                "message": "socket.accept() out of system resource",
                "exception": OSError(errno.EMFILE, "Too many open files"),
                "socket": sock,
            }
            handler(loop, context)
            handler(loop, context)  # within the same second: not logged again
        other = {"message": "something else", "exception": RuntimeError("x")}
        handler(loop, other)
    finally:
        loop.close()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1
    assert "cannot accept connections on 127.0.0.1:" in lines[0]
    assert "Too many open files" in lines[0]
    assert not [r for r in caplog.records if r.exc_info]
    assert passed == [other]


def test_fit_connections_shares_fairly(caplog: pytest.LogCaptureFixture) -> None:
    """Under a limit too low for all, a server that needs little keeps its setting; the
    others share the rest equally, each lowering logged."""
    resource = pytest.importorskip("resource")
    saved = resource.getrlimit(resource.RLIMIT_NOFILE)
    soft, hard = descriptors.descriptor_limit()
    if soft is None or hard is None:
        pytest.skip("no descriptor limit")
    caplog.set_level(logging.INFO, logger="medusa")
    small = Dummy(("127.0.0.1", 0), max_connections=2)
    big = [Dummy(("127.0.0.1", 0), max_connections=hard) for _ in range(2)]
    try:
        descriptors.fit_connections([big[0], small, big[1]])  # may raise soft to hard
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, saved)
        descriptors.refresh_limit()
    assert small.max_connections == 2
    assert big[0].max_connections == big[1].max_connections < hard // 2
    lowered = [
        r.getMessage() for r in caplog.records if "max_connections lowered" in r.getMessage()
    ]
    assert len(lowered) == 2
