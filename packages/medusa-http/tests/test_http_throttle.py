"""The bookkeeping of password checks under attack (medusa.http.throttle), without sockets:
the failure budget per address (delay, lockout, expiry) and the fair, bounded check queue."""

from __future__ import annotations

from medusa.http.throttle import CheckQueue, FailureBudget


def test_delay_doubles_and_is_capped() -> None:
    budget = FailureBudget(max_failures=0, delay=0.5, max_delay=4.0)
    delays = [budget.failure("192.0.2.1", float(n)) for n in range(6)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert budget.locked("192.0.2.1", 6.0) == 0.0  # max_failures=0: never locked


def test_lockout_after_max_failures_then_expiry() -> None:
    budget = FailureBudget(max_failures=3, lockout=60.0, delay=0.0)
    for now in (0.0, 1.0):
        budget.failure("a", now)
        assert budget.locked("a", now) == 0.0
    budget.failure("a", 2.0)
    assert budget.locked("a", 2.0) == 60.0
    assert budget.locked("a", 61.0) == 1.0
    assert budget.locked("b", 2.0) == 0.0  # another address is not affected
    assert budget.locked("a", 62.0) == 0.0


def test_failures_are_forgotten_after_lockout_seconds() -> None:
    budget = FailureBudget(max_failures=3, lockout=10.0)
    budget.failure("a", 0.0)
    budget.failure("a", 1.0)
    assert budget.failures("a", 5.0) == 2
    assert budget.failures("a", 12.0) == 0
    budget.failure("a", 12.0)  # a new count: not locked
    assert budget.locked("a", 12.0) == 0.0


def test_budget_keeps_at_most_max_clients() -> None:
    budget = FailureBudget(max_failures=5, max_clients=100)
    for n in range(1000):
        budget.failure(f"198.51.100.{n}", float(n))
    assert len(budget) <= 100


def _queue(dead: set[str] | None = None) -> tuple[CheckQueue[str], list[str]]:
    gone = dead if dead is not None else set()
    dropped: list[str] = []
    queue: CheckQueue[str] = CheckQueue(
        lambda item: item not in gone, dropped=dropped.append, per_address=3, per_connection=2
    )
    return queue, dropped


def test_queue_bounds_per_address_and_connection() -> None:
    queue, _ = _queue()
    assert queue.admit("a", 1) is None
    queue.push("a", 1, "a1")
    queue.push("a", 1, "a2")
    assert queue.admit("a", 1) == "connection"
    assert queue.admit("a", 2) is None
    queue.push("a", 2, "a3")
    assert queue.admit("a", 3) == "address"
    assert queue.admit("b", 3) is None
    taken = queue.pop()
    assert taken == ("a", 1, "a1")
    assert queue.admit("a", 3) == "address"  # a running check still counts
    queue.finished("a", 1)
    assert queue.admit("a", 3) is None
    assert queue.admit("a", 1) is None


def test_queue_takes_addresses_in_turn() -> None:
    queue, _ = _queue()
    for n in range(3):
        queue.push("attacker", n, f"x{n}")
    queue.push("user", 9, "login")
    order = []
    while (taken := queue.pop()) is not None:
        order.append(taken[2])
    assert order == ["x0", "login", "x1", "x2"]
    assert len(queue) == 0


def test_dead_checks_are_dropped_unrun_and_free_their_bounds() -> None:
    dead: set[str] = set()
    queue, dropped = _queue(dead)
    for n in range(3):
        queue.push("a", n, f"a{n}")
    assert queue.admit("a", 7) == "address"
    dead.update({"a0", "a1"})  # their connections closed
    assert queue.admit("a", 7) is None
    assert dropped == ["a0", "a1"]
    queue.push("a", 7, "a7")
    dead.add("a2")
    assert queue.pop() == ("a", 7, "a7")
    assert dropped == ["a0", "a1", "a2"]
    assert queue.pop() is None
    assert queue.dropped == 3


def test_remove_address_takes_its_waiting_checks() -> None:
    queue, _ = _queue()
    queue.push("a", 1, "a1")
    queue.push("a", 2, "a2")
    queue.push("b", 3, "b1")
    assert queue.remove_address("a") == ["a1", "a2"]
    assert queue.admit("a", 1) is None
    assert queue.pop() == ("b", 3, "b1")
    assert queue.remove_address("nobody") == []
