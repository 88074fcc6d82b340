"""Failed logins per client (:class:`medusa.core.throttle.LoginFailures`), without a clock
or sockets: the delay doubles and is capped, ``max_failures`` failures lock a key out and
start a new count, failures are forgotten ``lockout`` seconds after the latest one (or at
once by a success), and memory is bounded. The monitor, FTP and HTTP Basic authentication
use this class; their socket tests stay in their packages."""

from __future__ import annotations

import math
from typing import Any

import pytest

from medusa.core.throttle import LoginFailures


def test_delay_doubles_and_is_capped() -> None:
    failures = LoginFailures(max_failures=0, lockout=100, delay=0.5, max_delay=3.0)
    delays = [failures.failure("192.0.2.1", float(n)) for n in range(6)]
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert failures.locked("192.0.2.1", 6.0) == 0.0  # max_failures 0: never locked out
    assert failures.failures("192.0.2.1", 6.0) == 6
    assert [failures.delay_for(n) for n in (-1, 0, 1, 2, 1000)] == [0.0, 0.0, 0.5, 1.0, 3.0]


def test_never_locked_out_when_max_failures_is_zero() -> None:
    failures = LoginFailures(max_failures=0, lockout=100, delay=1, max_delay=1)
    for second in range(50):
        failures.failure("a", second)
    assert failures.locked("a", 50) == 0.0


def test_lockout_after_max_failures_then_expiry() -> None:
    failures = LoginFailures(max_failures=3, lockout=60.0, delay=1.0, max_delay=30.0)
    assert failures.failure("a", 0.0) == 1.0
    assert failures.failure("a", 1.0) == 2.0
    assert failures.failures("a", 1.0) == 2
    assert failures.locked("a", 1.5) == 0.0
    assert failures.failure("b", 1.0) == 1.0  # another key has its own count
    # The failure that locks: its delay is delay_for(max_failures), computed before the
    # count starts again.
    assert failures.failure("a", 2.0) == 4.0 == failures.delay_for(3)
    assert failures.locked("a", 2.0) == 60.0
    assert failures.failures("a", 2.0) == 0  # a new count
    assert failures.locked("a", 61.5) == 0.5
    assert failures.locked("b", 3.0) == 0.0  # another key is not affected
    assert failures.locked("a", 62.0) == 0.0
    assert failures.failures("a", 63.0) == 0
    assert failures.failure("a", 63.0) == 1.0  # counting starts again


def test_the_locking_delay_is_capped() -> None:
    failures = LoginFailures(max_failures=3, lockout=100, delay=1, max_delay=3)
    failures.failure("a", 0)
    failures.failure("a", 1)
    assert failures.failure("a", 2) == 3.0  # 4, at most max_delay
    assert failures.locked("a", 2) == 100.0


def test_failures_during_a_lockout_start_the_next_count() -> None:
    """Checks already under way when a key is locked out: their failures count towards the
    next lockout and do not lengthen this one."""
    failures = LoginFailures(max_failures=3, lockout=10.0, delay=1.0, max_delay=30.0)
    for now in (0.0, 1.0, 2.0):
        failures.failure("a", now)
    assert failures.locked("a", 2.0) == 10.0
    assert failures.failure("a", 3.0) == 1.0
    assert failures.failure("a", 4.0) == 2.0
    assert failures.locked("a", 4.0) == 8.0  # still until 12
    assert failures.locked("a", 12.0) == 0.0
    assert failures.failures("a", 12.0) == 2  # remembered until 14
    assert failures.failure("a", 12.0) == 4.0
    assert failures.locked("a", 12.0) == 10.0


def test_failures_are_forgotten_lockout_seconds_after_the_latest() -> None:
    failures = LoginFailures(max_failures=3, lockout=10.0, delay=1.0, max_delay=30.0)
    failures.failure("a", 0.0)
    failures.failure("a", 5.0)
    assert failures.failures("a", 15.0) == 2  # 10 s after the latest: still counted
    assert failures.failures("a", 15.5) == 0
    assert failures.failure("a", 16.0) == 1.0  # a new count: not locked out
    assert failures.locked("a", 16.0) == 0.0


def test_success_forgets_failures() -> None:
    failures = LoginFailures(max_failures=3, lockout=10.0, delay=1.0, max_delay=30.0)
    failures.failure("a", 0.0)
    failures.failure("a", 1.0)
    failures.success("a")
    assert failures.failures("a", 1.0) == 0
    assert len(failures) == 0
    assert failures.failure("a", 2.0) == 1.0
    failures.success("never-failed")  # nothing to forget: no error


def test_memory_is_bounded() -> None:
    failures = LoginFailures(max_failures=5, lockout=1e9, max_clients=100)
    for n in range(1000):
        failures.failure(f"10.0.{n // 256}.{n % 256}", float(n))
    assert len(failures) == 100
    assert failures.failures("10.0.3.231", 1000.0) == 1  # the newest kept (n = 999)
    assert failures.failures("10.0.0.0", 1000.0) == 0  # the oldest forgotten


def test_the_oldest_latest_failure_is_forgotten_first() -> None:
    failures = LoginFailures(max_failures=3, lockout=100, max_clients=2)
    failures.failure("a", 0)
    failures.failure("b", 1)
    failures.failure("a", 2)  # "a" is now the most recent
    failures.failure("c", 3)  # "b", the oldest, is forgotten
    assert [failures.failures(k, 3) for k in "abc"] == [2, 0, 1]


def test_expired_keys_are_forgotten_first() -> None:
    failures = LoginFailures(max_failures=2, lockout=10.0, max_clients=1000)
    for key in "abc":
        failures.failure(key, 0.0)
    failures.failure("d", 5.0)
    failures.failure("d", 5.0)  # locked out until 15
    assert len(failures) == 4
    failures.failure("e", 11.0)  # a, b and c expired at 10
    assert len(failures) == 2
    assert failures.locked("d", 11.0) == 4.0
    failures.failure("f", 16.0)  # d's lockout and failures expired at 15
    assert len(failures) == 2
    assert failures.failures("e", 16.0) == 1


@pytest.mark.parametrize(
    "arguments",
    [
        {"max_failures": -1},
        {"lockout": -1.0},
        {"delay": -0.5},
        {"max_delay": -1.0},
        {"lockout": math.nan},
        {"delay": math.nan},
    ],
)
def test_negative_limits_are_refused(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        LoginFailures(**arguments)


def test_max_clients_is_at_least_one() -> None:
    with pytest.raises(ValueError, match="max_clients"):
        LoginFailures(max_clients=0)
