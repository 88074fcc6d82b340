"""Failed logins: the delay doubles, N failures lock an address out for a period, and a
success or the end of the period forgets them."""

from __future__ import annotations

from medusa.monitor.throttle import LoginThrottle


def test_delay_grows_and_is_capped() -> None:
    throttle = LoginThrottle(max_failures=0, delay=0.5, max_delay=3.0, lockout=100)
    delays = [throttle.failure("10.0.0.1", now=float(i)) for i in range(6)]
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert throttle.locked("10.0.0.1", 6.0) == 0.0  # max_failures 0: never locked


def test_lockout_after_max_failures_then_expiry() -> None:
    throttle = LoginThrottle(max_failures=3, delay=1.0, lockout=60.0)
    assert throttle.failure("a", 0.0) == 1.0
    assert throttle.failure("a", 1.0) == 2.0
    assert throttle.locked("a", 1.5) == 0.0
    assert throttle.failure("a", 2.0) == 4.0
    assert throttle.locked("a", 2.0) == 60.0
    assert throttle.locked("a", 61.0) == 1.0
    assert throttle.locked("b", 3.0) == 0.0  # another address is not affected
    assert throttle.locked("a", 62.0) == 0.0
    assert throttle.failures("a", 62.0) == 0
    assert throttle.failure("a", 63.0) == 1.0  # counting starts again


def test_success_and_time_forget_failures() -> None:
    throttle = LoginThrottle(max_failures=3, delay=1.0, lockout=10.0)
    throttle.failure("a", 0.0)
    throttle.failure("a", 1.0)
    throttle.success("a")
    assert throttle.failures("a", 1.0) == 0
    throttle.failure("a", 2.0)
    throttle.failure("a", 3.0)
    assert throttle.failure("a", 20.0) == 1.0  # the old ones expired
    assert throttle.locked("a", 20.0) == 0.0


def test_records_are_bounded() -> None:
    throttle = LoginThrottle(max_failures=5, lockout=10.0, max_clients=100)
    for i in range(1000):
        throttle.failure(f"10.0.{i // 256}.{i % 256}", float(i))
    assert len(throttle._records) <= 100
