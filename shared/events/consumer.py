"""Idempotent Kafka consumers with bounded retries and a dead-letter topic.

For each ``getmany()`` batch the consumer, in ONE database transaction, drops the events this
consumer already processed (by ``source`` + ``id``), records the new ones as processed and runs
the handler; only after that transaction commits does it commit the partitions' offsets. A crash
between the two replays the batch, and the dedup table makes the replay a no-op.

A message that cannot be parsed or validated goes straight to ``<topic>.dlq``. A batch whose
handler fails is retried with backoff; if it still fails, it is replayed by halves until the
events that keep failing stand alone, and those go to the DLQ with the error and their original coordinates.

Batches are pipelined: while one batch is in the database, the next is fetched and decoded. Every
fetched batch is applied, one at a time and in fetch order, and its offsets are committed only after
its own transaction. None is ever skipped, not even across a rebalance: the fetch positions are already
past it, so a later commit would pass over it. A revocation therefore waits until the batches in hand
are applied and committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import CommitFailedError, KafkaError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import InfraTables, utcnow
from shared.events.envelope import CloudEvent, Envelope, InvalidEvent
from shared.events.kafka import start_with_retry
from shared.events.registry import dlq_topic, validate_event
from shared.observability import Metrics, reset_event_id, set_event_id
from shared.tracing import consuming

log = logging.getLogger("postsales.consumer")

EventHandler = Callable[[AsyncSession, CloudEvent], Awaitable[None]]
# A batch handler gets what the consumer's decoder returns: CloudEvents unless it has its own decoder.
BatchHandler = Callable[[AsyncSession, Sequence[Any]], Awaitable[None]]
# (message value, logical topic) -> event; raises InvalidEvent for a message that can never be handled.
Decoder = Callable[[bytes | None, str], Envelope]


def decode_cloudevent(raw: bytes | None, topic: str) -> CloudEvent:
    """The default decoder: a CloudEvent whose type is registered for ``topic`` and whose data fits it."""
    event = CloudEvent.from_bytes(raw)
    validate_event(event, topic=topic)
    return event


class PermanentError(Exception):
    """Raised by a handler for an event that can never succeed: it goes to the DLQ without retries."""


@dataclass(frozen=True)
class Delivery:
    """A message read from Kafka together with its parsed event."""

    record: ConsumerRecord
    topic: str  # the logical topic (without the deployment prefix)
    event: Envelope


@dataclass(frozen=True)
class _Decoded:
    """A fetched batch, decoded: the deliveries to apply and the messages to dead-letter."""

    deliveries: list[Delivery]
    rejected: list[tuple[ConsumerRecord, str]]


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, consumer: EventConsumer) -> None:
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # The batches in hand are applied and committed before the partitions move elsewhere.
        await self.consumer._drain()

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        return None


class EventConsumer:
    """One consumer group member. Give it ``handler`` (per event) or ``batch_handler`` (per batch).

    ``decode`` replaces CloudEvent parsing and registry validation for a batch handler that reads
    its messages its own (faster) way.
    """

    def __init__(
        self,
        *,
        name: str,
        topics: Sequence[str],
        bootstrap: str,
        session_factory: async_sessionmaker[AsyncSession],
        infra: InfraTables,
        handler: EventHandler | None = None,
        batch_handler: BatchHandler | None = None,
        topic_prefix: str = "",
        dlq_producer: AIOKafkaProducer,
        max_retries: int = 3,
        retry_backoff: float = 0.2,
        batch_size: int = 1000,
        validate: bool = True,
        metrics: Metrics | None = None,
        after_commit: Callable[[], None] | None = None,
        dedup: bool = True,
        batch_wait: float = 0.05,
        decode: Decoder | None = None,
    ) -> None:
        if (handler is None) == (batch_handler is None):
            raise ValueError("give exactly one of handler or batch_handler")
        if decode is not None and handler is not None:
            raise ValueError("a custom decoder needs a batch_handler (per-event handlers get CloudEvents)")
        self.name = name
        self.topics = list(topics)
        self.topic_prefix = topic_prefix
        self.session_factory = session_factory
        self.processed = infra.processed_events
        self.handler = handler
        self.batch_handler = batch_handler
        self.dlq_producer = dlq_producer
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.batch_size = batch_size
        self.decode: Decoder = decode or (decode_cloudevent if validate else _parse_only)
        self.metrics = metrics
        self.after_commit = after_commit
        self.dedup = dedup
        self.batch_wait = batch_wait
        # The group id carries the topic prefix: deployments (and test runs) sharing a cluster must not
        # share a group, or they would split each other's partitions. Dedup stays keyed by ``name``.
        self.group_id = topic_prefix + name
        self.bootstrap = bootstrap
        self.kafka = self._new_kafka()
        self._tail: asyncio.Task[None] | None = None  # the last fetched batch's settle task
        self._stop = asyncio.Event()
        self.started = asyncio.Event()
        self.stats = {"fetched": 0, "applied": 0, "duplicates": 0, "dlq": 0, "restarts": 0}

    def _new_kafka(self) -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=self.group_id,
            client_id=self.name,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_wait_ms=100,
            session_timeout_ms=6000,
            rebalance_timeout_ms=6000,
            heartbeat_interval_ms=1000,
        )

    def stop(self) -> None:
        self._stop.set()

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Whether this member is healthy, with detail for ``/readyz`` (stuck partitions, a failing DLQ)."""
        return True, {}

    async def _start(self) -> None:
        # Subscribing before start() lets start() join the group at once; subscribing after it
        # costs a metadata round of several seconds on some brokers.
        self.kafka.subscribe([self.topic_prefix + t for t in self.topics], listener=_Listener(self))
        await self.kafka.start()

    async def run(self) -> None:
        """Consume until :meth:`stop`.

        An unexpected error (a bug, not a bad event or a database outage, which are handled per batch)
        does not end consumption: the member leaves the group, logs the error and joins again, resuming
        from the committed offsets, so nothing is skipped and the partitions do not sit unread.
        """
        while not self._stop.is_set():
            if not await start_with_retry(self._start, what=f"consumer {self.name}", stop=self._stop):
                return
            self.started.set()
            try:
                await self._consume()
                return
            except Exception:
                if self._stop.is_set():
                    log.info("consumer %s: stopped while a batch was unfinished", self.name, exc_info=True)
                    return
                self.stats["restarts"] += 1
                if self.metrics:
                    self.metrics.consumer_restarts.labels(self.name).inc()
                log.exception("consumer %s crashed; rejoining from the committed offsets", self.name)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=1.0)
                self.kafka = self._new_kafka()  # a stopped client cannot be started again

    async def _consume(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    batch = await self._fetch()
                except KafkaError as exc:
                    log.warning("consumer %s: fetch failed (%s)", self.name, exc)
                    await asyncio.sleep(1)
                    continue
                if not batch:
                    continue
                self.stats["fetched"] += sum(len(records) for records in batch.values())
                decoded = self._decode(batch)
                previous = self._tail
                self._tail = asyncio.create_task(self._settle(previous, batch, decoded), name=f"{self.name}:batch")
                if previous is not None:
                    await previous  # at most two batches in hand: one in the database, one waiting for it
            if self._tail is not None:
                await self._tail
        finally:
            if self._tail is not None and not self._tail.done():
                # Cancelled while a batch is in the database: let it finish (or notice the stop).
                with contextlib.suppress(BaseException):
                    await self._tail
            self._tail = None
            await self.kafka.stop()

    async def _drain(self) -> None:
        """Wait until every batch fetched so far is settled (a failure is the main loop's to raise)."""
        while (tail := self._tail) is not None and not tail.done():
            await asyncio.wait([tail])

    async def _settle(self, previous: asyncio.Task[None] | None, batch: dict[TopicPartition, list[ConsumerRecord]],
                      decoded: _Decoded) -> None:
        """Dead-letter, apply and commit a batch once the batch fetched before it is settled."""
        if previous is not None:
            await asyncio.wait([previous])
            if previous.cancelled() or previous.exception() is not None:
                return  # the consumer restarts from the committed offsets, which are before this batch
        if self._stop.is_set():
            return  # nothing committed: read again on restart
        for rec, error in decoded.rejected:
            await self._dead_letter(rec, error)
        await self._apply_and_commit(batch, decoded.deliveries)
        self._update_lag(batch)

    async def _fetch(self) -> dict[TopicPartition, list[ConsumerRecord]]:
        """One batch of up to ``batch_size`` records: a blocking ``getmany`` topped up with what is
        already prefetched, so a backlog is applied in few large transactions, not many small ones."""
        batch: dict[TopicPartition, list[ConsumerRecord]] = await self.kafka.getmany(
            timeout_ms=200, max_records=self.batch_size)
        count = sum(len(r) for r in batch.values())
        deadline = time.monotonic() + self.batch_wait
        while batch and count < self.batch_size and (left := deadline - time.monotonic()) > 0:
            more = await self.kafka.getmany(timeout_ms=int(left * 1000), max_records=self.batch_size - count)
            if not more:
                break
            for tp, records in more.items():
                batch.setdefault(tp, []).extend(records)
                count += len(records)
        return batch

    def _decode(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> _Decoded:
        """The batch's events, and the messages that can never be handled (for the DLQ)."""
        decoded = _Decoded([], [])
        decode = self.decode
        for tp, records in batch.items():
            logical = tp.topic.removeprefix(self.topic_prefix)
            for rec in records:
                try:
                    event = decode(rec.value, logical)
                except InvalidEvent as exc:
                    decoded.rejected.append((rec, f"invalid event: {exc}"))
                    continue
                decoded.deliveries.append(Delivery(rec, logical, event))
        return decoded

    async def _apply_and_commit(self, batch: dict[TopicPartition, list[ConsumerRecord]],
                                deliveries: list[Delivery]) -> None:
        try:
            await self._apply(deliveries)
        except _Stopping:
            return  # nothing committed: the batch is read again on restart
        except Exception as exc:
            # The batch still fails after retries: isolate the poison message(s).
            log.warning("consumer %s: batch of %d failed (%s); isolating the failing event(s)",
                        self.name, len(deliveries), exc)
            try:
                await self._isolate(deliveries)
            except _Stopping:
                return
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items()}
        try:
            await self.kafka.commit(offsets)
        except (CommitFailedError, KafkaError) as exc:
            # Partitions moved or the broker blipped; whoever reads them next dedups what we applied.
            log.warning("consumer %s: offset commit failed (%s)", self.name, exc)

    async def _isolate(self, deliveries: list[Delivery]) -> None:
        """Apply a failing batch by halves until each failing event stands alone, then dead-letter it.

        A poison event costs about 2·log2(batch) transactions instead of one per event. A failure that
        comes from the event shows up again at once, so halves get no backoff retries; a lone event gets
        them all before it goes to the DLQ. Halves are applied in turn, so the order is kept.
        """
        if len(deliveries) == 1:
            try:
                await self._apply(deliveries)
            except _Stopping:
                raise
            except Exception as exc:
                await self._dead_letter(deliveries[0].record, f"handler failed: {type(exc).__name__}: {exc}")
            return
        mid = len(deliveries) // 2
        for half in (deliveries[:mid], deliveries[mid:]):
            try:
                await self._apply(half, max_retries=0)
            except _Stopping:
                raise
            except Exception:
                await self._isolate(half)

    async def _apply(self, deliveries: list[Delivery], *, max_retries: int | None = None) -> None:
        """Apply deliveries in one transaction, retrying transient failures with backoff."""
        if not deliveries:
            return
        limit = self.max_retries if max_retries is None else max_retries
        attempt = 0
        while True:
            if self._stop.is_set():
                raise _Stopping
            try:
                await self._apply_once(deliveries)
                return
            except PermanentError:
                raise
            except Exception as exc:
                attempt += 1
                if is_infrastructure_error(exc):
                    # The database (not the event) is the problem: wait for it, never dead-letter.
                    delay = min(self.retry_backoff * 2 ** min(attempt, 6), 5.0)
                    if attempt == 1 or attempt % 20 == 0:
                        log.warning("consumer %s: database unavailable (%s); waiting", self.name, exc)
                    await asyncio.sleep(delay)
                    continue
                if attempt > limit:
                    raise
                delay = self.retry_backoff * 2 ** (attempt - 1)
                log.info("consumer %s: attempt %d failed (%s: %s); retrying in %.2fs",
                         self.name, attempt, type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)

    async def _apply_once(self, deliveries: list[Delivery]) -> None:
        started = time.perf_counter()
        seen: set[tuple[str, str]] = set()
        unique: list[Delivery] = []
        for d in deliveries:
            if d.event.dedup_key not in seen:
                seen.add(d.event.dedup_key)
                unique.append(d)
        async with self.session_factory() as session, session.begin():
            if self.dedup:
                new_keys = await self._record_new(session, unique)
                fresh = [d for d in unique if d.event.dedup_key in new_keys]
            else:
                fresh = unique
            if fresh:
                events = [d.event for d in fresh]
                if self.batch_handler is not None:
                    await self.batch_handler(session, events)
                else:
                    assert self.handler is not None
                    for ev in cast(list[CloudEvent], events):
                        token = set_event_id(ev.id)
                        try:
                            with consuming(ev, self.name):
                                await self.handler(session, ev)
                                log.debug("consumer %s applied %s", self.name, ev.type)
                        finally:
                            reset_event_id(token)
        if session.info.get("outbox_dirty") and self.after_commit is not None:
            self.after_commit()  # the handler emitted events: wake the relay now
        dups = len(deliveries) - len(fresh)
        self.stats["applied"] += len(fresh)
        self.stats["duplicates"] += dups
        if self.metrics:
            self.metrics.events_consumed.labels(self.name, "applied").inc(len(fresh))
            if dups:
                self.metrics.events_consumed.labels(self.name, "duplicate").inc(dups)
            self.metrics.handler_latency.labels(self.name).observe(time.perf_counter() - started)

    async def _record_new(self, session: AsyncSession, deliveries: list[Delivery]) -> set[tuple[str, str]]:
        """Record the deliveries as processed; return the keys that were not recorded before.

        One ``INSERT .. ON CONFLICT DO NOTHING RETURNING`` per batch: the rows that come back are the
        events this consumer has never applied (a duplicate hits the primary key and returns nothing).
        """
        t = self.processed
        dialect = session.get_bind().dialect.name
        insert_fn = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert_fn(t).on_conflict_do_nothing().returning(t.c.source, t.c.event_id)
        now = utcnow()
        rows = await session.execute(stmt, [
            {"consumer": self.name, "source": d.event.source, "event_id": d.event.id, "processed_at": now}
            for d in deliveries
        ])
        return {(source, event_id) for source, event_id in rows.all()}

    async def _dead_letter(self, rec: ConsumerRecord, error: str) -> None:
        headers = [
            *(rec.headers or []),
            ("dlq_error", error[:2000].encode()),
            ("dlq_original_topic", rec.topic.encode()),
            ("dlq_original_partition", str(rec.partition).encode()),
            ("dlq_original_offset", str(rec.offset).encode()),
            ("dlq_consumer", self.name.encode()),
        ]
        topic = dlq_topic(rec.topic)
        while True:
            try:
                await self.dlq_producer.send_and_wait(topic, value=rec.value, key=rec.key, headers=headers)
                break
            except KafkaError as exc:
                if self._stop.is_set():
                    raise
                log.warning("consumer %s: DLQ publish failed (%s); retrying", self.name, exc)
                await asyncio.sleep(1)
        self.stats["dlq"] += 1
        log.error("consumer %s: message %s[%d]@%d dead-lettered: %s",
                  self.name, rec.topic, rec.partition, rec.offset, error)
        if self.metrics:
            self.metrics.dlq_messages.labels(self.name, rec.topic).inc()
            self.metrics.events_consumed.labels(self.name, "dead_lettered").inc()

    def _update_lag(self, batch: dict[TopicPartition, list[ConsumerRecord]]) -> None:
        if not self.metrics:
            return
        owned = self.kafka.assignment()
        for tp in batch:
            if tp not in owned:  # highwater() asserts on a partition that moved away
                continue
            hw = self.kafka.highwater(tp)
            if hw is not None:
                lag = max(0, hw - batch[tp][-1].offset - 1)
                self.metrics.consumer_lag.labels(self.name, tp.topic, str(tp.partition)).set(lag)


def _parse_only(raw: bytes | None, topic: str) -> CloudEvent:
    return CloudEvent.from_bytes(raw)


class _Stopping(Exception):
    """The consumer is stopping while a batch waits on the database: leave its offsets alone."""


def is_infrastructure_error(exc: BaseException) -> bool:
    """Whether ``exc`` means the database is unreachable or busy, rather than a bad event."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, OperationalError | InterfaceError | ConnectionError | TimeoutError):
        return True
    return isinstance(exc, OSError)
