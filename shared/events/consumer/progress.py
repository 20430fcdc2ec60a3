"""Stuck-partition detection: a partition that has messages to read and has not moved for a while.

Per assigned partition the tracker keeps the next offset to settle (``done``), the last known high
watermark and when it last made progress. Progress is a settled batch that moved ``done``, or being
caught up (lag 0), or a fresh assignment. A partition is stuck when it has lag, has made no progress for
``stuck_after`` seconds, and either its messages are in hand (fetched, not settled: a batch that cannot
be applied or dead-lettered, a DLQ that does not answer) or the whole consumer has made no progress
that long (a database outage being waited out, a handler that hangs: batches are applied one at a
time, so one stuck batch stops them all). A partition that merely waits its turn while the consumer
works through a backlog elsewhere is not stuck. A stuck partition shows in the consumer's readiness
(``/readyz``) and in ``consumer_stuck_partitions`` / ``consumer_seconds_since_progress``.

Offsets are taken as dense: the suite's producers are not transactional, so there are no transaction
markers between the last record and the high watermark.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from aiokafka import TopicPartition


@dataclass
class _Partition:
    since: float  # last progress (or caught up, or assigned)
    done: int | None = None  # the next offset to settle; None until known
    highwater: int | None = None
    in_hand: bool = False  # fetched messages not settled yet

    def lag(self) -> int | None:
        if self.done is None or self.highwater is None:
            return None
        return max(0, self.highwater - self.done)


@dataclass(frozen=True)
class PartitionProgress:
    tp: TopicPartition
    lag: int | None
    seconds_since_progress: float  # 0 while caught up
    stuck: bool


class ProgressTracker:
    def __init__(self, stuck_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stuck_after = stuck_after
        self.clock = clock
        self._parts: dict[TopicPartition, _Partition] = {}
        self._any_progress = clock()  # the consumer's last progress on any partition

    def reset(self) -> None:
        self._parts.clear()
        self._any_progress = self.clock()

    def assigned(self, tps: Iterable[TopicPartition]) -> None:
        now = self.clock()
        for tp in tps:
            self._parts[tp] = _Partition(since=now)

    def revoked(self, tps: Iterable[TopicPartition]) -> None:
        for tp in tps:
            self._parts.pop(tp, None)

    def partitions(self) -> list[TopicPartition]:
        return list(self._parts)

    def knows_position(self, tp: TopicPartition) -> bool:
        part = self._parts.get(tp)
        return part is not None and part.done is not None

    def fetched(self, tp: TopicPartition, first_offset: int) -> None:
        """A batch from ``tp`` starting at ``first_offset`` is in hand (not settled yet)."""
        part = self._parts.get(tp)
        if part is None:
            return
        part.in_hand = True
        if part.done is None:
            part.done = first_offset

    def position(self, tp: TopicPartition, offset: int) -> None:
        """The consumer's position in ``tp`` when nothing from it is in hand."""
        part = self._parts.get(tp)
        if part is not None and part.done is None:
            part.done = offset

    def settled(self, tp: TopicPartition, next_offset: int) -> None:
        """Everything before ``next_offset`` in ``tp`` is applied or dead-lettered."""
        part = self._parts.get(tp)
        if part is None:
            return  # revoked meanwhile
        if part.done is None or next_offset > part.done:
            part.done = next_offset
            part.since = self._any_progress = self.clock()
            part.in_hand = False
        # Settled without moving (held back before a message the DLQ refused): still in hand.

    def observe(self, tp: TopicPartition, highwater: int | None) -> None:
        if highwater is None or tp not in self._parts:
            return
        self._parts[tp].highwater = highwater

    def snapshot(self) -> list[PartitionProgress]:
        now = self.clock()
        lags = {tp: part.lag() for tp, part in self._parts.items()}
        if not any(lags.values()):
            self._any_progress = now  # no work anywhere: idle, not stuck
        consumer_stalled = now - self._any_progress >= self.stuck_after
        out: list[PartitionProgress] = []
        for tp, part in sorted(self._parts.items()):
            lag = lags[tp]
            if lag == 0:
                part.since = now  # caught up: nothing to be stuck on
            idle = now - part.since if lag else 0.0
            stuck = bool(lag) and idle >= self.stuck_after and (part.in_hand or consumer_stalled)
            out.append(PartitionProgress(tp, lag, idle, stuck))
        return out
