"""What a consumer reports about itself: readiness for ``/readyz`` and the progress gauges for ``/metrics``.

Not ready means a partition is stuck (see :mod:`.progress`) or the DLQ refuses messages (see :mod:`.dlq`).
A database outage being waited out is reported as detail; it makes the consumer not ready once its
partitions have been stuck for ``stuck_after`` seconds (``/readyz`` already fails its own database check).
The gauges are refreshed by :meth:`ConsumerHealth.watch` (every ``stuck_after / 4`` seconds, at most 5)
and on each readiness call, so they move even while the pipeline is blocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.events.consumer.dlq import DeadLetterPublisher
from shared.events.consumer.progress import PartitionProgress, ProgressTracker
from shared.observability import Metrics

log = logging.getLogger("postsales.consumer")


@dataclass(frozen=True)
class Outage:
    """The database is unreachable or busy and the pipeline is waiting for it."""

    since: float
    error: str


class ConsumerHealth:
    def __init__(self, consumer: str, *, stuck_after: float, dlq: DeadLetterPublisher,
                 metrics: Metrics | None) -> None:
        self.consumer = consumer
        self.progress = ProgressTracker(stuck_after)
        self.dlq = dlq
        self.metrics = metrics
        self.outage: Outage | None = None

    def waiting(self, exc: BaseException) -> None:
        """The pipeline is waiting out an outage (``exc`` is its latest error)."""
        if self.outage is None:
            self.outage = Outage(time.monotonic(), f"{type(exc).__name__}: {exc}"[:500])

    def recovered(self) -> None:
        self.outage = None

    def readiness(self, kafka: AIOKafkaConsumer) -> tuple[bool, dict[str, Any]]:
        self._observe_highwaters(kafka)
        snapshot = self.progress.snapshot()
        self._export(snapshot)
        detail: dict[str, Any] = {}
        stuck = [p for p in snapshot if p.stuck]
        if stuck:
            detail["stuck_partitions"] = [
                {"topic": p.tp.topic, "partition": p.tp.partition, "lag": p.lag,
                 "seconds_since_progress": round(p.seconds_since_progress, 1)} for p in stuck]
        if (dlq := self.dlq.readiness()) is not None:
            detail["dlq_failing"] = dlq
        if (outage := self.outage) is not None:
            detail["waiting_for_database"] = {"error": outage.error,
                                              "seconds": round(time.monotonic() - outage.since, 1)}
        return not stuck and dlq is None, detail

    def forget(self, revoked: Iterable[TopicPartition]) -> None:
        self.progress.revoked(revoked)
        if self.metrics:
            for tp in revoked:
                with contextlib.suppress(KeyError):
                    self.metrics.consumer_seconds_since_progress.remove(self.consumer, tp.topic, str(tp.partition))

    async def watch(self, kafka: Callable[[], AIOKafkaConsumer]) -> None:
        """Refresh progress, lag and the gauges until cancelled (``kafka`` gives the current client)."""
        while True:
            await asyncio.sleep(max(0.2, min(5.0, self.progress.stuck_after / 4)))
            client = kafka()
            try:
                owned = client.assignment()
                for tp in self.progress.partitions():
                    if tp in owned and not self.progress.knows_position(tp):
                        with contextlib.suppress(Exception):
                            self.progress.position(tp, await asyncio.wait_for(client.position(tp), 1.0))
                self.readiness(client)
            except Exception:  # the watch must outlive a client being replaced under it
                log.debug("consumer %s: progress refresh failed", self.consumer, exc_info=True)

    def _observe_highwaters(self, kafka: AIOKafkaConsumer) -> None:
        owned = kafka.assignment()
        for tp in self.progress.partitions():
            if tp in owned:  # highwater() asserts on a partition that moved away
                self.progress.observe(tp, kafka.highwater(tp))

    def _export(self, snapshot: list[PartitionProgress]) -> None:
        if not self.metrics:
            return
        m = self.metrics
        m.consumer_stuck_partitions.labels(self.consumer).set(sum(1 for p in snapshot if p.stuck))
        for p in snapshot:
            labels = (self.consumer, p.tp.topic, str(p.tp.partition))
            m.consumer_seconds_since_progress.labels(*labels).set(p.seconds_since_progress)
            if p.lag is not None:
                m.consumer_lag.labels(*labels).set(p.lag)
