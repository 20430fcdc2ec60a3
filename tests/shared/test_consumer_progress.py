"""The stuck-partition rule, on a clock the test moves (the end-to-end cases are in test_consumer_faults.py)."""

from __future__ import annotations

from aiokafka import TopicPartition

from shared.events.consumer.progress import ProgressTracker

A, B = TopicPartition("t", 0), TopicPartition("t", 1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def stuck(tracker: ProgressTracker) -> dict[TopicPartition, float]:
    return {p.tp: p.seconds_since_progress for p in tracker.snapshot() if p.stuck}


def test_a_partition_in_hand_that_does_not_move_is_stuck_until_it_moves() -> None:
    clock = Clock()
    tracker = ProgressTracker(stuck_after=60, clock=clock)
    tracker.assigned([A, B])
    tracker.position(B, 0)
    tracker.observe(B, 0)
    tracker.fetched(A, 10)
    tracker.observe(A, 15)
    clock.now += 59
    assert stuck(tracker) == {}
    clock.now += 2
    assert stuck(tracker) == {A: 61}  # B is caught up: never stuck
    tracker.settled(A, 10)  # held back at the same offset (the DLQ refused offset 10): still stuck
    clock.now += 1
    assert stuck(tracker) == {A: 62}
    tracker.settled(A, 12)
    assert stuck(tracker) == {}
    snapshot = {p.tp: p for p in tracker.snapshot()}
    assert snapshot[A].lag == 3 and snapshot[B].lag == 0


def test_a_partition_waiting_its_turn_is_not_stuck_while_the_consumer_moves_elsewhere() -> None:
    clock = Clock()
    tracker = ProgressTracker(stuck_after=60, clock=clock)
    tracker.assigned([A, B])
    tracker.position(B, 0)
    tracker.observe(B, 500)  # B has a backlog but nothing of it is in hand yet
    tracker.fetched(A, 0)
    tracker.observe(A, 10_000)
    for offset in range(1000, 10_000, 1000):  # A moves every 30 s for 4.5 minutes
        clock.now += 30
        tracker.settled(A, offset)
        assert stuck(tracker) == {}
    clock.now += 61  # then the whole consumer stops moving: B is stuck too
    assert set(stuck(tracker)) == {A, B}


def test_lag_that_just_appeared_after_a_long_idle_time_is_not_stuck_at_once() -> None:
    clock = Clock()
    tracker = ProgressTracker(stuck_after=60, clock=clock)
    tracker.assigned([A])
    tracker.position(A, 5)
    tracker.observe(A, 5)
    clock.now += 3600
    assert stuck(tracker) == {}  # idle and caught up
    tracker.observe(A, 6)
    tracker.fetched(A, 5)
    clock.now += 5
    assert stuck(tracker) == {}
    clock.now += 60
    assert stuck(tracker) == {A: 65}
    tracker.revoked([A])
    assert tracker.snapshot() == []
