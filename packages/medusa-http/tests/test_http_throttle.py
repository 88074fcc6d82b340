"""The queue of password checks under attack (medusa.http.throttle), without sockets: fair
and bounded per address and per connection. (The failures per address are counted by
medusa.core.throttle.LoginFailures, tested in medusa-core.)"""

from __future__ import annotations

from medusa.http.throttle import CheckQueue


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
