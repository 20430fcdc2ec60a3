"""The fetch -> decode -> apply -> commit loop of one consumer group member.

Batches are pipelined: while one batch is in the database, the next is fetched and decoded (with a
worker process planning them, a third is fetched while the second is planned). Every
fetched batch is applied, one at a time and in fetch order, and its offsets are committed only after
its own transaction. None is ever skipped, not even across a rebalance: the fetch positions are already
past it, so a later commit would pass over it. A revocation therefore waits until the batches in hand
are applied and committed.

The one exception is deliberate and explicit: when the DLQ cannot take a message, the batch stops at
that message, what was settled before it is committed, and every partition in hand is sought back to
its first unsettled offset (a *rewind*). The batches fetched behind it are then dropped, which is safe
because the seek puts the fetch positions back before it. The loop pauses and reads again from there.

Crash tests kill the process at each step of a transaction through :mod:`.failpoints` (test-only, armed
by ``POSTSALES_FAILPOINTS``; unset, each step costs one truth test).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import InfraTables
from shared.events.consumer.base import (
    INVALID,
    BatchHandler,
    BatchPlan,
    BatchPlanner,
    Decoder,
    Delivery,
    EventHandler,
    PermanentError,
    RemotePlanner,
    TimeGuard,
    decode_cloudevent,
    rejection,
)
from shared.events.consumer.dedup import ProcessedEvents
from shared.events.consumer.dlq import DeadLetterPublisher, DeadLetterUnavailable
from shared.events.consumer.failpoints import ARMED as _FAILPOINTS
from shared.events.consumer.failpoints import reach as _failpoint
from shared.events.consumer.health import ConsumerHealth
from shared.events.consumer.offsets import KafkaOffsets, OffsetStore
from shared.events.consumer.retry import RetryPolicy, is_infrastructure_error
from shared.events.consumer.worker import PlanningWorker
from shared.events.envelope import CloudEvent, InvalidEvent
from shared.events.kafka import start_with_retry
from shared.observability import Metrics, reset_event_id, set_event_id
from shared.settings import TimeBounds
from shared.tracing import consuming

log = logging.getLogger("postsales.consumer")

Batch = dict[TopicPartition, list[ConsumerRecord]]


# Records fetched, or decoded (and planned), between two turns of the event loop: the batch in the
# database then never waits long for its next round trip while the one behind it is read.
CHUNK = 1000


@dataclass
class _Decoded:
    """A fetched batch, decoded: the deliveries to apply, the messages to dead-letter, and the planner's
    plan of the deliveries when it planned ahead."""

    deliveries: list[Delivery]
    rejected: list[tuple[ConsumerRecord, str]]
    plan: BatchPlan | None = None


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, consumer: EventConsumer) -> None:
        self.consumer = consumer

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        # The batches in hand are applied and committed before the partitions move elsewhere.
        await self.consumer._drain()
        self.consumer.health.forget(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self.consumer.progress.assigned(assigned)
        await self.consumer.offsets.assigned(self.consumer.kafka, assigned)


class EventConsumer:
    """One consumer group member. Give it ``handler`` (per event) or ``batch_handler`` (per batch).

    ``decode`` replaces CloudEvent parsing and registry validation for a batch handler that reads
    its messages its own (faster) way. ``offsets`` is where progress is kept (the group's committed
    offsets by default). ``stuck_after`` is how long a partition with lag may go without progress
    before readiness reports it; ``dlq_timeout`` / ``dlq_attempts`` bound one DLQ publish and
    ``dlq_pause`` is the wait before a message the DLQ refused is read again. ``plan_in_worker``: decode
    and plan batches of at least ``worker_min_batch`` messages in a worker process (a
    :class:`~.base.RemotePlanner` batch handler without dedup; see :mod:`.worker`). ``time_bounds``:
    with dedup, events whose time is out of them, by ``clock`` (default: real time), are dead-lettered
    (:class:`~.base.TimeGuard`).
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
        metrics: Metrics | None = None,
        after_commit: Callable[[], None] | None = None,
        dedup: bool = True,
        batch_wait: float = 0.05,
        decode: Decoder | None = None,
        offsets: OffsetStore | None = None,
        stuck_after: float = 60.0,
        dlq_timeout: float = 10.0,
        dlq_attempts: int = 3,
        dlq_pause: float = 5.0,
        plan_in_worker: bool = False,
        worker_min_batch: int = 1000,
        time_bounds: TimeBounds | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if (handler is None) == (batch_handler is None):
            raise ValueError("give exactly one of handler or batch_handler")
        if decode is not None and handler is not None:
            raise ValueError("a custom decoder needs a batch_handler (per-event handlers get CloudEvents)")
        self.name = name
        self.topics = list(topics)
        self.topic_prefix = topic_prefix
        self.session_factory = session_factory
        self.processed = ProcessedEvents(infra.processed_events, name)
        self.handler = handler
        self.batch_handler = batch_handler
        self.planner = batch_handler if isinstance(batch_handler, BatchPlanner) else None
        self.worker: PlanningWorker | None = None
        if plan_in_worker:
            if not isinstance(batch_handler, RemotePlanner) or dedup:
                raise ValueError("plan_in_worker needs a RemotePlanner batch handler and dedup=False")
            self.worker = PlanningWorker(name, decode or decode_cloudevent, batch_handler.remote(),
                                         min_batch=worker_min_batch)
        self.retry = RetryPolicy(max_retries=max_retries, backoff=retry_backoff)
        self.dlq = DeadLetterPublisher(dlq_producer, consumer=name, metrics=metrics, timeout=dlq_timeout,
                                       attempts=dlq_attempts)
        self.dlq_pause = dlq_pause
        self.offsets: OffsetStore = offsets or KafkaOffsets(name)
        self.health = ConsumerHealth(name, stuck_after=stuck_after, dlq=self.dlq, metrics=metrics)
        self.progress = self.health.progress
        self.batch_size = batch_size
        self.decode: Decoder = decode or decode_cloudevent
        if dedup and time_bounds is not None:
            self.decode = TimeGuard(self.decode, time_bounds, clock)
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
        self._rewind: dict[TopicPartition, int] | None = None  # set when the DLQ refused a message
        self._stop = asyncio.Event()
        self.started = asyncio.Event()
        self.stats = {"fetched": 0, "applied": 0, "duplicates": 0, "dlq": 0, "restarts": 0}

    # --- tunables that live in the components, readable and settable here --------------------------

    @property
    def stuck_after(self) -> float:
        return self.progress.stuck_after

    @stuck_after.setter
    def stuck_after(self, seconds: float) -> None:
        self.progress.stuck_after = seconds

    @property
    def dlq_producer(self) -> AIOKafkaProducer:
        return self.dlq.producer

    @dlq_producer.setter
    def dlq_producer(self, producer: AIOKafkaProducer) -> None:
        self.dlq.producer = producer

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
        """Whether this member is healthy, with detail for ``/readyz``: stuck partitions, a failing DLQ,
        a database outage being waited out. Empty detail when all is well."""
        return self.health.readiness(self.kafka)

    # --- the loop ------------------------------------------------------------------------------------

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
        watch = asyncio.create_task(self.health.watch(lambda: self.kafka), name=f"{self.name}:watch")
        try:
            await self._run()
        finally:
            if self.worker is not None:
                self.worker.close()
            watch.cancel()
            with contextlib.suppress(BaseException):
                await watch

    async def _run(self) -> None:
        while not self._stop.is_set():
            self.progress.reset()
            self._rewind = None
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
                await self._pause(1.0)
                self.kafka = self._new_kafka()  # a stopped client cannot be started again

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), timeout=seconds)

    async def _consume(self) -> None:
        # Batches in hand besides the one just fetched: one in the database and, when a worker process
        # plans them, one planned and waiting for it (its plan is made while the database works, not
        # after, and the next fetch does not wait for it).
        ahead = 1 if self.worker is None else 2
        hand: collections.deque[asyncio.Task[None]] = collections.deque()
        try:
            while not self._stop.is_set():
                if self._rewind is not None:
                    await self._do_rewind()
                    continue
                try:
                    batch = await self._fetch()
                except KafkaError as exc:
                    log.warning("consumer %s: fetch failed (%s)", self.name, exc)
                    await asyncio.sleep(1)
                    continue
                if not batch:
                    continue
                self.stats["fetched"] += sum(len(records) for records in batch.values())
                for tp, records in batch.items():
                    self.progress.fetched(tp, records[0].offset)
                # The batch is in hand (``_drain`` waits for it) from here on, decoding included.
                previous = self._tail
                self._tail = asyncio.create_task(self._settle(previous, batch), name=f"{self.name}:batch")
                hand.append(self._tail)
                if len(hand) > ahead:
                    await hand.popleft()
                    await asyncio.sleep(0)  # the next batch's transaction starts before the next fetch
            if self._tail is not None:
                await self._tail
        finally:
            if self._tail is not None and not self._tail.done():
                # Cancelled while a batch is in the database: let it finish (or notice the stop).
                with contextlib.suppress(BaseException):
                    await self._tail
            self._tail = None
            await self.kafka.stop()

    async def _do_rewind(self) -> None:
        """The DLQ refused a message: seek back to the first unsettled offsets, pause, read again."""
        await self._drain()  # the batches behind the refused one see the rewind and add their partitions
        rewind, self._rewind = self._rewind or {}, None
        owned = self.kafka.assignment()
        for tp, offset in rewind.items():
            if tp in owned:  # a revoked partition resumes from its committed offset, wherever it goes
                self.kafka.seek(tp, offset)
        log.warning("consumer %s: DLQ unavailable; reading %d partition(s) again from the held-back "
                    "message in %.1fs", self.name, len(rewind), self.dlq_pause)
        await self._pause(self.dlq_pause)

    async def _drain(self) -> None:
        """Wait until every batch fetched so far is settled (a failure is the main loop's to raise)."""
        while (tail := self._tail) is not None and not tail.done():
            await asyncio.wait([tail])

    async def _settle(self, previous: asyncio.Task[None] | None, batch: Batch) -> None:
        """Decode a batch while the one fetched before it is in the database; then dead-letter, apply and
        commit it once that one is settled."""
        decoded = await self._decode(batch)
        if previous is not None:
            await asyncio.wait([previous])
            if previous.cancelled() or previous.exception() is not None:
                return  # the consumer restarts from the committed offsets, which are before this batch
        if self._stop.is_set():
            return  # nothing committed: read again on restart
        if self._rewind is not None:
            # The batch before this one stopped at a message the DLQ refused: read this one again too.
            for tp, records in batch.items():
                self._rewind[tp] = min(self._rewind.get(tp, records[0].offset), records[0].offset)
            return
        try:
            for index, (rec, error) in enumerate(decoded.rejected):
                try:
                    await self._dead_letter(rec, error)
                except DeadLetterUnavailable:
                    await self._hold_back(batch, [r for r, _ in decoded.rejected[index:]] +
                                          [d.record for d in decoded.deliveries])
                    return
            await self._apply_and_commit(batch, decoded.deliveries, decoded.plan)
        except DeadLetterUnavailable as exc:
            first = next((i for i, d in enumerate(decoded.deliveries) if d.record is exc.record), 0)
            await self._hold_back(batch, [d.record for d in decoded.deliveries[first:]])
            return
        self._update_lag(batch)

    async def _hold_back(self, batch: Batch, unsettled: list[ConsumerRecord]) -> None:
        """Commit what is settled and rewind every partition of ``batch`` to its first unsettled message."""
        first: dict[TopicPartition, int] = {}
        for rec in unsettled:
            tp = TopicPartition(rec.topic, rec.partition)
            first[tp] = min(first.get(tp, rec.offset), rec.offset)
        done = {tp: first.get(tp, records[-1].offset + 1) for tp, records in batch.items()}
        await self._commit(done)
        self._rewind = first

    async def _commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        await self.offsets.commit(self.kafka, offsets)
        if _FAILPOINTS:
            _failpoint(self.name, "after_kafka_commit", offsets)
        for tp, offset in offsets.items():
            self.progress.settled(tp, offset)

    async def _fetch(self) -> Batch:
        """One batch of up to ``batch_size`` records: a blocking ``getmany`` topped up with what is
        already prefetched, so a backlog is applied in few large transactions, not many small ones."""
        batch: Batch = await self.kafka.getmany(timeout_ms=200, max_records=min(CHUNK, self.batch_size))
        count = sum(len(r) for r in batch.values())
        deadline = time.monotonic() + self.batch_wait
        while batch and count < self.batch_size and (left := deadline - time.monotonic()) > 0:
            await asyncio.sleep(0)  # getmany returns prefetched records without yielding
            more = await self.kafka.getmany(timeout_ms=int(left * 1000),
                                            max_records=min(CHUNK, self.batch_size - count))
            if not more:
                break
            for tp, records in more.items():
                batch.setdefault(tp, []).extend(records)
                count += len(records)
        return batch

    async def _decode(self, batch: Batch) -> _Decoded:
        """The batch's events, and the messages that can never be handled (for the DLQ); planned as they
        are decoded when the handler is a planner and the consumer has no dedup of its own."""
        if self.worker is not None and self.worker.wants(sum(len(r) for r in batch.values())):
            in_worker = await self._decode_in_worker(batch)
            if in_worker is not None:
                return in_worker
        decoded = _Decoded([], [])
        decode, deliveries = self.decode, decoded.deliveries
        append = deliveries.append
        plan = self.planner.plan() if self.planner is not None and not self.dedup else None
        for tp, records in batch.items():
            logical = tp.topic.removeprefix(self.topic_prefix)
            for i in range(0, len(records), CHUNK):
                first = len(deliveries)
                for rec in records[i:i + CHUNK]:
                    try:
                        event = decode(rec.value, logical)
                    except InvalidEvent as exc:
                        decoded.rejected.append((rec, rejection(exc)))
                        continue
                    except Exception as exc:  # a decoder bug on one message: dead-letter it, go on
                        log.exception("consumer %s: decoder failed on %s[%d]@%d", self.name, rec.topic,
                                      rec.partition, rec.offset)
                        decoded.rejected.append((rec, rejection(exc)))
                        continue
                    append(Delivery(rec, logical, event, tp))
                if plan is not None:
                    plan = self._plan_ahead(plan, [d.event for d in deliveries[first:]])
                await asyncio.sleep(0)
        if plan is not None:
            plan = self._plan_ahead(plan, None)
        decoded.plan = plan
        return decoded

    async def _decode_in_worker(self, batch: Batch) -> _Decoded | None:
        """The batch decoded and planned by the worker process; None if that failed (the caller then does
        it here: a planner error is retried, halved and dead-lettered in the transaction as usual)."""
        assert self.worker is not None and isinstance(self.planner, RemotePlanner)
        parts = [(tp.topic.removeprefix(self.topic_prefix), [rec.value for rec in records])
                 for tp, records in batch.items()]
        try:
            exported, rejected = await self.worker.plan(parts)
            plan = self.planner.adopt(exported)
        except Exception:
            log.warning("consumer %s: the worker process failed to plan a batch; planning it here",
                        self.name, exc_info=True)
            return None
        decoded = _Decoded([], [], plan)
        append = decoded.deliveries.append
        refused = {(p, i): reason for p, i, reason in rejected}
        for p, (tp, records) in enumerate(batch.items()):
            logical = parts[p][0]
            for i, rec in enumerate(records):
                if refused and (reason := refused.get((p, i))) is not None:
                    if not reason.startswith(INVALID):  # a decoder bug, logged as the in-process path does
                        log.error("consumer %s: decoder failed on %s[%d]@%d in the worker process: %s",
                                  self.name, rec.topic, rec.partition, rec.offset, reason)
                    decoded.rejected.append((rec, reason))
                else:
                    append(Delivery(rec, logical, None, tp))
        return decoded

    def _events(self, deliveries: Sequence[Delivery]) -> list[Any]:
        """The deliveries' events, decoding those planned in the worker process (needed again only for
        the halves of a failing batch)."""
        for d in deliveries:
            if d.event is None:
                d.event = self.decode(d.record.value, d.topic)
        return [d.event for d in deliveries]

    def _plan_ahead(self, plan: BatchPlan, events: list[Any] | None) -> BatchPlan | None:
        """``plan.add(events)`` (``complete()`` when None), or None if the planner failed: the batch is then
        planned in its transaction, where a failure is retried, halved and dead-lettered like any other."""
        try:
            if events is None:
                plan.complete()
            else:
                plan.add(events)
        except Exception:
            log.warning("consumer %s: planning a batch ahead failed; planning it in its transaction",
                        self.name, exc_info=True)
            return None
        return plan

    async def _apply_and_commit(self, batch: Batch, deliveries: list[Delivery], plan: BatchPlan | None) -> None:
        try:
            await self._apply(deliveries, plan=plan)
        except _Stopping:
            return  # nothing committed: the batch is read again on restart
        except Exception as exc:
            # The batch still fails after retries: isolate the poison message(s).
            log.warning("consumer %s: batch of %d failed (%s); isolating the failing event(s)",
                        self.name, len(deliveries), exc)
            try:
                if len(deliveries) == 1:  # already alone and already retried
                    await self._dead_letter(deliveries[0].record, _handler_error(exc))
                else:
                    await self._isolate(deliveries)
            except _Stopping:
                return
        await self._commit({tp: records[-1].offset + 1 for tp, records in batch.items()})

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
                await self._dead_letter(deliveries[0].record, _handler_error(exc))
            return
        mid = len(deliveries) // 2
        for half in (deliveries[:mid], deliveries[mid:]):
            try:
                await self._apply(half, max_retries=0)
            except _Stopping:
                raise
            except Exception:
                await self._isolate(half)

    async def _apply(self, deliveries: list[Delivery], *, max_retries: int | None = None,
                     plan: BatchPlan | None = None) -> None:
        """Apply deliveries in one transaction: an outage is waited out, other errors retried a bounded
        number of times (then raised, for the caller to isolate and dead-letter)."""
        if not deliveries:
            return
        limit = self.retry.max_retries if max_retries is None else max_retries
        attempt = outages = 0
        while True:
            if self._stop.is_set():
                raise _Stopping
            try:
                await self._apply_once(deliveries, plan)
                self.health.recovered()
                return
            except PermanentError:
                self.health.recovered()
                raise
            except Exception as exc:
                if is_infrastructure_error(exc):
                    # The database (not the event) is the problem: wait for it, never dead-letter.
                    outages += 1
                    self.health.waiting(exc)
                    if outages == 1 or outages % 20 == 0:
                        log.warning("consumer %s: database unavailable (%s); waiting", self.name, exc)
                    await asyncio.sleep(self.retry.outage_delay(outages))
                    continue
                self.health.recovered()
                attempt += 1
                if attempt > limit:
                    raise
                delay = self.retry.retry_delay(attempt)
                log.info("consumer %s: attempt %d failed (%s: %s); retrying in %.2fs",
                         self.name, attempt, type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)

    async def _apply_once(self, deliveries: list[Delivery], plan: BatchPlan | None = None) -> None:
        """One transaction; ``plan``: the planner's plan of exactly ``deliveries``, when made ahead."""
        started = time.perf_counter()
        reached: dict[TopicPartition, int] = {}
        for d in deliveries:  # in offset order within a partition: the last one is where it reached
            reached[d.partition] = d.record.offset + 1
        if self.dedup:  # a redelivery inside one batch is applied once (a batch handler without dedup sees all)
            seen: set[tuple[str, str]] = set()
            unique: list[Delivery] = []
            for d, ev in zip(deliveries, self._events(deliveries), strict=True):
                if (key := ev.dedup_key) not in seen:
                    seen.add(key)
                    unique.append(d)
        else:
            unique = deliveries
        async with self.session_factory() as session, session.begin():
            if _FAILPOINTS:
                _failpoint(self.name, "before_write", reached)
            if self.dedup:
                events = self._events(unique)
                new_keys = await self.processed.record_new(session, events)
                fresh = [d for d, ev in zip(unique, events, strict=True) if ev.dedup_key in new_keys]
            else:
                fresh = unique
            if fresh:
                if self.planner is not None:
                    if plan is None or fresh is not deliveries:
                        plan = self.planner.plan()
                        plan.add(self._events(fresh))
                        plan.complete()
                    await self.planner.apply(session, plan)
                elif self.batch_handler is not None:
                    await self.batch_handler(session, self._events(fresh))
                else:
                    assert self.handler is not None
                    for ev in cast(list[CloudEvent], self._events(fresh)):
                        token = set_event_id(ev.id)
                        try:
                            with consuming(ev, self.name):
                                await self.handler(session, ev)
                                log.debug("consumer %s applied %s", self.name, ev.type)
                        finally:
                            reset_event_id(token)
            await self.offsets.in_transaction(session, reached)
            if _FAILPOINTS:
                await session.flush()  # what the ORM still holds is written too: only the COMMIT is missing
                _failpoint(self.name, "before_commit", reached)
        if _FAILPOINTS:
            _failpoint(self.name, "after_commit", reached)
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

    async def _dead_letter(self, rec: ConsumerRecord, error: str) -> None:
        await self.dlq.publish(rec, error, stop=self._stop)
        self.stats["dlq"] += 1

    def _update_lag(self, batch: Batch) -> None:
        owned = self.kafka.assignment()
        for tp in batch:
            if tp not in owned:  # highwater() asserts on a partition that moved away
                continue
            hw = self.kafka.highwater(tp)
            self.progress.observe(tp, hw)
            if hw is not None and self.metrics:
                lag = max(0, hw - batch[tp][-1].offset - 1)
                self.metrics.consumer_lag.labels(self.name, tp.topic, str(tp.partition)).set(lag)


def _handler_error(exc: BaseException) -> str:
    return f"handler failed: {type(exc).__name__}: {exc}"


class _Stopping(Exception):
    """The consumer is stopping while a batch waits on the database: leave its offsets alone."""
