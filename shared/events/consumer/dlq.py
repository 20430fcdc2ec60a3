"""The dead-letter publisher: ``<topic>.dlq`` with the error and the original coordinates, bounded.

Each send has a timeout and there are a few attempts. When they are all spent the publisher raises
:class:`DeadLetterUnavailable`; the pipeline then commits only what was settled before the message and
reads it again later, so nothing is lost and nothing is skipped. Meanwhile the failure is visible:
:attr:`DeadLetterPublisher.failing` feeds the consumer's readiness and every failed attempt counts in
``dlq_publish_failures_total``. A send that timed out may still land later, so a message can reach the
DLQ twice (at-least-once, like everything else).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer, ConsumerRecord

from shared.events.registry import dlq_topic
from shared.observability import Metrics

log = logging.getLogger("postsales.consumer")


class DeadLetterUnavailable(Exception):
    """The DLQ could not take ``record`` within the publisher's attempts."""

    def __init__(self, record: ConsumerRecord, error: str) -> None:
        super().__init__(f"DLQ publish failed for {record.topic}[{record.partition}]@{record.offset}: {error}")
        self.record = record


@dataclass(frozen=True)
class DlqFailure:
    """The DLQ is failing: since when (monotonic), the last error and the message it holds back."""

    since: float
    error: str
    topic: str
    partition: int
    offset: int
    failures: int


class DeadLetterPublisher:
    def __init__(self, producer: AIOKafkaProducer, *, consumer: str, metrics: Metrics | None = None,
                 timeout: float = 10.0, attempts: int = 3, backoff: float = 0.5) -> None:
        self.producer = producer
        self.consumer = consumer
        self.metrics = metrics
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.failing: DlqFailure | None = None

    async def publish(self, rec: ConsumerRecord, error: str, *, stop: asyncio.Event | None = None) -> None:
        """Send ``rec`` to its DLQ topic or raise :class:`DeadLetterUnavailable` after the attempts."""
        headers = [
            *(rec.headers or []),
            ("dlq_error", error[:2000].encode()),
            ("dlq_original_topic", rec.topic.encode()),
            ("dlq_original_partition", str(rec.partition).encode()),
            ("dlq_original_offset", str(rec.offset).encode()),
            ("dlq_consumer", self.consumer.encode()),
        ]
        topic = dlq_topic(rec.topic)
        for attempt in range(1, max(1, self.attempts) + 1):
            try:
                await asyncio.wait_for(
                    self.producer.send_and_wait(topic, value=rec.value, key=rec.key, headers=headers),
                    timeout=self.timeout)
            except Exception as exc:  # any failure to publish holds the partition back: none is silent
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                self._failed(rec, reason)
                log.warning("consumer %s: DLQ publish of %s[%d]@%d failed (attempt %d of %d): %s",
                            self.consumer, rec.topic, rec.partition, rec.offset, attempt, self.attempts, reason)
                if attempt >= self.attempts or (stop is not None and stop.is_set()):
                    raise DeadLetterUnavailable(rec, reason) from exc
                await asyncio.sleep(self.backoff * attempt)
                continue
            break
        self.failing = None
        log.error("consumer %s: message %s[%d]@%d dead-lettered: %s",
                  self.consumer, rec.topic, rec.partition, rec.offset, error)
        if self.metrics:
            self.metrics.dlq_messages.labels(self.consumer, rec.topic).inc()
            self.metrics.events_consumed.labels(self.consumer, "dead_lettered").inc()

    def _failed(self, rec: ConsumerRecord, reason: str) -> None:
        previous = self.failing
        self.failing = DlqFailure(
            since=previous.since if previous else time.monotonic(), error=reason[:500], topic=rec.topic,
            partition=rec.partition, offset=rec.offset, failures=(previous.failures if previous else 0) + 1)
        if self.metrics:
            self.metrics.dlq_publish_failures.labels(self.consumer, rec.topic).inc()

    def readiness(self) -> dict[str, object] | None:
        """Detail for ``/readyz`` while the DLQ is failing, else None."""
        f = self.failing
        if f is None:
            return None
        return {"error": f.error, "failing_for_seconds": round(time.monotonic() - f.since, 1),
                "failed_attempts": f.failures, "held_back": {"topic": f.topic, "partition": f.partition,
                                                             "offset": f.offset}}
