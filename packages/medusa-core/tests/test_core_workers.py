"""The pieces of ``--workers`` that need no running master: the worker table in shared
memory (seen from a forked child), worker numbers and addresses, placing servers in a
worker, the ``workers`` setting, and reopening log files (SIGUSR1)."""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

import pytest

from medusa.core.address import Address
from medusa.core.channel import Channel
from medusa.core.log import reopen_log_files
from medusa.core.server import Server
from medusa.core.workerprocess import place_servers
from medusa.core.workers import resolve_workers, shared_keys, usable_cpus, worker_address
from medusa.core.workertable import WorkerTable


class Shared(Server):
    name = "shared"

    def make_channel(self) -> Channel:
        return Channel(self)


class One(Shared):
    name = "one"
    workers_mode = "one"


class Each(Shared):
    name = "each"
    workers_mode = "each"


def test_worker_table_rows_written_by_a_child_are_seen_by_the_parent() -> None:
    table = WorkerTable(4)
    slot = table.allocate()
    table.start(slot, pid=4242, index=2, generation=3, restarts=1, started=1000.0)
    assert table.allocate() != slot
    pid = os.fork()
    if pid == 0:  # the child writes its counters, as a worker does
        table.publish(
            slot, requests=7, connections=5, active=2, bytes_in=100, bytes_out=2000, now=1001.0
        )
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    (row,) = table.rows()
    assert (row.pid, row.index, row.state, row.generation, row.restarts) == (
        4242,
        2,
        "starting",
        3,
        1,
    )
    assert (row.requests, row.connections, row.active, row.bytes_in, row.bytes_out) == (
        7,
        5,
        2,
        100,
        2000,
    )
    assert row.as_dict()["updated"] == 1001.0
    table.set_state(slot, "ready")
    assert table.rows()[0].state == "ready"
    table.set_state(slot, "free")
    assert table.rows() == []


def test_a_full_worker_table_says_so() -> None:
    table = WorkerTable(1)
    table.start(table.allocate(), pid=1, index=1, generation=1, restarts=0, started=0.0)
    with pytest.raises(RuntimeError, match="no free row"):
        table.allocate()


def test_worker_addresses() -> None:
    assert worker_address(Address.parse("unix:/run/m.sock"), 2) == Address(None, 0, "/run/m.sock.2")
    assert worker_address(Address.parse("127.0.0.1:8023"), 2) == Address("127.0.0.1", 8025)
    assert worker_address(Address.parse("127.0.0.1:0"), 3) == Address("127.0.0.1", 0)


def test_workers_setting() -> None:
    assert resolve_workers(3) == 3
    assert resolve_workers("auto") == usable_cpus() >= 1
    for bad in (0, -1, "many", True, 2.5):
        with pytest.raises(ValueError, match="1 or more"):
            resolve_workers(bad)  # type: ignore[arg-type]


def test_place_servers_by_workers_mode() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        fd = os.dup(listening.fileno())
        servers: list[Server] = [
            Shared("127.0.0.1:8080"),
            One("127.0.0.1:6667"),
            Each("unix:/tmp/m.sock"),
        ]
        shared, late = place_servers(servers, 2, {"127.0.0.1:8080": [fd]})
        assert shared == [servers[0]]
        assert [s.inherited_sockets[0].fileno() for s in shared] == [fd]
        assert late == [servers[2]]  # "one" runs in worker 1 only
        assert servers[2].address == Address(None, 0, "/tmp/m.sock.2")
        assert servers[2].reuse_port
        shared[0].inherited_sockets[0].close()
        servers = [Shared("127.0.0.1:8080"), One("127.0.0.1:6667")]
        with pytest.raises(KeyError):
            place_servers(servers, 1, {})
        assert place_servers(servers[1:], 1, {})[1] == servers[1:]


def test_two_servers_on_any_free_port_get_two_sockets() -> None:
    servers: list[Server] = [
        Shared("127.0.0.1:0"),
        One("127.0.0.1:0"),
        Shared("127.0.0.1:0"),
        Shared("127.0.0.1:8080"),
    ]
    assert [key for key, _ in shared_keys(servers)] == [
        "127.0.0.1:0#1",
        "127.0.0.1:0#2",
        "127.0.0.1:8080",
    ]


def test_reopen_log_files_reopens_a_file_handler(tmp_path: Path) -> None:
    path = tmp_path / "medusa.log"
    handler = logging.FileHandler(path)
    logger = logging.getLogger("medusa.test.reopen")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("before")
        os.rename(path, tmp_path / "medusa.log.1")  # logrotate moves the file
        reopen_log_files()
        logger.warning("after")
        handler.flush()
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert (tmp_path / "medusa.log.1").read_text() == "before\n"
    assert path.read_text() == "after\n"
