"""Offsets in the database (``DatabaseOffsets``), on the real broker.

The handler here has NO deduplication (``dedup=False``, one row per application, no unique key): any
event applied twice, or never, shows in the counts. Exactly-once in effect must then come from the
offsets alone, committed in the same transaction as the effects and read back on assignment.

A "crash" is the consumer abandoned at a hook: :class:`CrashingOffsets` raises :class:`Crash` (a
``BaseException``, which the pipeline does not handle) at the chosen step, the member stops, and a fresh
member of the same group takes over from what the database holds.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import Integer, MetaData, String, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from shared.db import TYPE_ANNOTATION_MAP, create_engine, service_metadata
from shared.events import CloudEvent
from shared.events.consumer import DatabaseOffsets, EventConsumer, consumer_offsets_table
from shared.events.registry import LIFECYCLE_TOPIC
from shared.testing import KafkaProbe, RunningService, eventually

GROUP = "offsets-db"
pytestmark = pytest.mark.timeout(300)


class Base(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class Counted(Base):
    """One row per application of an event (deliberately not unique by event)."""

    __tablename__ = "offsets_db_counted"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(200))


OFFSETS = consumer_offsets_table(MetaData())
consumer_offsets_table(Base.metadata)  # created with the test's tables


async def count_batch(session: AsyncSession, events: Sequence[CloudEvent]) -> None:
    for ev in events:
        session.add(Counted(event_id=ev.id))


class Crash(BaseException):
    """The process dies here (nothing in the pipeline handles a BaseException)."""


class CrashingOffsets(DatabaseOffsets):
    """``DatabaseOffsets`` that dies at one step, once at least ``after`` offsets were stored."""

    def __init__(self, *args: Any, at: str | None = None, after: int = 0, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.at = at
        self.after = after
        self.crashed = asyncio.Event()

    def _due(self, step: str) -> bool:
        return self.at == step and sum(self.stored.values()) >= self.after and not self.crashed.is_set()

    def _crash(self) -> None:
        self.crashed.set()
        raise Crash(self.at)

    async def in_transaction(self, session: AsyncSession, offsets: Mapping[TopicPartition, int]) -> None:
        if self._due("before-db-commit"):
            await super().in_transaction(session, offsets)
            await session.flush()  # the effects and the offsets are written, not committed
            self._crash()
        await super().in_transaction(session, offsets)

    async def commit(self, kafka: AIOKafkaConsumer, offsets: Mapping[TopicPartition, int]) -> None:
        if self._due("after-db-commit"):
            self._crash()  # committed to the database, not to Kafka
        await super().commit(kafka, offsets)
        if self._due("after-kafka-commit"):
            self._crash()


@contextlib.asynccontextmanager
async def member(svc: RunningService, offsets: DatabaseOffsets | None = None,
                 batch_size: int = 50) -> AsyncIterator[tuple[EventConsumer, asyncio.Task[None]]]:
    group = svc.settings.kafka_topic_prefix + GROUP
    store = offsets or DatabaseOffsets(OFFSETS, svc.ctx.session_factory, group)
    consumer = EventConsumer(name=GROUP, topics=[LIFECYCLE_TOPIC], bootstrap=svc.settings.kafka_bootstrap_servers,
                             session_factory=svc.ctx.session_factory, infra=svc.ctx.infra,
                             batch_handler=count_batch, dedup=False, topic_prefix=svc.settings.kafka_topic_prefix,
                             dlq_producer=svc.ctx.producer, offsets=store, batch_size=batch_size, batch_wait=0.0)
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer, task
    finally:
        consumer.stop()
        with contextlib.suppress(Crash):
            await asyncio.wait_for(task, 60)


def events(n: int, start: int = 0) -> list[CloudEvent]:
    return [CloudEvent.new(type="postsales.account.updated", source="/tests/offsets-db", subject=f"acct-{i % 8}",
                           data={"account_id": f"acct-{i % 8}", "name": "n", "seats": i})
            for i in range(start, start + n)]


async def counts(svc: RunningService) -> Counter[str]:
    async with svc.ctx.session_factory() as s:
        return Counter((await s.execute(select(Counted.event_id))).scalars())


async def stored(svc: RunningService) -> dict[tuple[str, int], int]:
    async with svc.ctx.session_factory() as s:
        rows = (await s.execute(select(OFFSETS.c.topic, OFFSETS.c.partition, OFFSETS.c.next_offset))).all()
    return {(t, p): o for t, p, o in rows}


async def all_counted(svc: RunningService, n: int) -> bool:
    return sum((await counts(svc)).values()) >= n


def exactly_once(got: Counter[str], sent: list[CloudEvent]) -> None:
    twice = {k: v for k, v in got.items() if v > 1}
    assert not twice, f"counted more than once: {list(twice.items())[:5]}"
    missing = {e.id for e in sent} - set(got)
    assert not missing, f"{len(missing)} event(s) lost"
    assert set(got) == {e.id for e in sent}


@pytest.fixture
def offsets_service(demo_service: Any) -> Any:
    @contextlib.asynccontextmanager
    async def start() -> AsyncIterator[RunningService]:
        async with demo_service(run_consumers=False) as svc:
            engine = create_engine(svc.settings.effective_database_url)
            async with engine.begin() as conn:
                await conn.run_sync(Base.metadata.create_all)
            await engine.dispose()
            yield svc

    return start


@pytest.mark.parametrize("step", ["before-db-commit", "after-db-commit", "after-kafka-commit"])
async def test_a_member_that_dies_at_any_step_loses_nothing_and_counts_nothing_twice(
        offsets_service: Any, kafka: KafkaProbe, step: str) -> None:
    sent = events(400)
    async with offsets_service() as svc:
        group = svc.settings.kafka_topic_prefix + GROUP
        await kafka.publish(LIFECYCLE_TOPIC, sent)
        dying = CrashingOffsets(OFFSETS, svc.ctx.session_factory, group, at=step, after=100)
        async with member(svc, dying) as (_, task):
            await eventually(lambda: _set(dying.crashed), timeout=60, message=f"the member dies at {step}")
            with contextlib.suppress(Crash):
                await asyncio.wait_for(task, 60)
        before = await counts(svc)
        assert 0 < sum(before.values()) < len(sent), "the member died mid-stream"
        assert max(before.values()) == 1
        async with member(svc):
            await eventually(lambda: all_counted(svc, len(sent)), timeout=90, message="the next member finishes")
            # Every partition's stored offset reaches its end: nothing is left to read.
            ends = await _ends(kafka, svc)
            await eventually(lambda: _stored_is(svc, ends), timeout=30, message="stored offsets at the end")
        exactly_once(await counts(svc), sent)


async def test_two_members_split_the_partitions_and_one_leaving_mid_stream_hands_over_exactly(
        offsets_service: Any, kafka: KafkaProbe) -> None:
    first, second = events(300), events(300, start=300)
    async with offsets_service() as svc:
        async with member(svc, batch_size=20) as (a, _):
            await eventually(lambda: _set(a.started), timeout=60, message="member a started")
            async with member(svc, batch_size=20) as (b, _):
                async def split() -> bool:
                    return len(a.kafka.assignment()) + len(b.kafka.assignment()) == 4 and \
                        bool(a.kafka.assignment()) and bool(b.kafka.assignment())

                await eventually(split, timeout=90, message="the two members split the partitions")
                await kafka.publish(LIFECYCLE_TOPIC, first)
                await eventually(lambda: all_counted(svc, 150), timeout=90, message="half the first wave counted")

                async def both_at_work() -> bool:
                    return a.stats["applied"] > 0 and b.stats["applied"] > 0

                # Each member owns two partitions of the first wave: both have applied some before b leaves.
                await eventually(both_at_work, timeout=90, message="both members applied events")
                # b leaves while the stream goes on: a takes over b's partitions from the database.
                publishing = asyncio.create_task(kafka.publish(LIFECYCLE_TOPIC, second))
            await publishing

            async def a_owns_all() -> bool:
                return len(a.kafka.assignment()) == 4

            await eventually(a_owns_all, timeout=90, message="a takes over b's partitions")
            await eventually(lambda: all_counted(svc, 600), timeout=120, message="everything counted")
            ends = await _ends(kafka, svc)
            await eventually(lambda: _stored_is(svc, ends), timeout=30, message="stored offsets at the end")
        exactly_once(await counts(svc), first + second)


async def test_a_database_that_loses_its_last_commit_is_read_again_from_the_stored_offset(
        offsets_service: Any, kafka: KafkaProbe) -> None:
    """SQLite with synchronous=NORMAL may lose its last commits on power loss, after the Kafka commit was made.
    With the offsets in the database, the lost commit takes the offset back with it: nothing is lost."""
    sent = events(200)
    async with offsets_service() as svc:
        await kafka.publish(LIFECYCLE_TOPIC, sent)
        async with member(svc):
            await eventually(lambda: all_counted(svc, 200), timeout=90, message="everything counted")
            ends = await _ends(kafka, svc)
            await eventually(lambda: _stored_is(svc, ends), timeout=30, message="stored offsets at the end")
        kafka_committed = await _committed(kafka, svc)
        assert kafka_committed == ends, "the Kafka commit (for lag) is past every event"
        # The database comes back without its last commits: every partition's tail of 10 events and their
        # offsets are gone together, as one rolled-back transaction would take them.
        async with svc.ctx.session_factory() as s, s.begin():
            rewound = {(t, p): o - 10 for (t, p), o in ends.items()}
            for (t, p), o in rewound.items():
                await s.execute(update(OFFSETS).where(OFFSETS.c.topic == t, OFFSETS.c.partition == p)
                                .values(next_offset=o))
            lost = [r for r in await kafka.read_all(LIFECYCLE_TOPIC) if r.offset >= rewound[(r.topic, r.partition)]]
            lost_ids = [CloudEvent.from_bytes(r.value).id for r in lost]
            await s.execute(delete(Counted).where(Counted.event_id.in_(lost_ids)))
        assert len(lost_ids) == 40
        async with member(svc):
            await eventually(lambda: all_counted(svc, 200), timeout=90, message="the lost tail is read again")
            await eventually(lambda: _stored_is(svc, ends), timeout=30, message="stored offsets at the end")
        exactly_once(await counts(svc), sent)


# --- helpers ----------------------------------------------------------------------------------------

async def _set(event: asyncio.Event) -> bool:
    return event.is_set()


async def _ends(kafka: KafkaProbe, svc: RunningService) -> dict[tuple[str, int], int]:
    records = await kafka.read_all(LIFECYCLE_TOPIC)
    ends: dict[tuple[str, int], int] = {}
    for r in records:
        ends[(r.topic, r.partition)] = max(ends.get((r.topic, r.partition), 0), r.offset + 1)
    return ends


async def _stored_is(svc: RunningService, ends: dict[tuple[str, int], int]) -> bool:
    return await stored(svc) == ends


async def _committed(kafka: KafkaProbe, svc: RunningService) -> dict[tuple[str, int], int]:
    probe = AIOKafkaConsumer(bootstrap_servers=kafka.bootstrap, group_id=svc.settings.kafka_topic_prefix + GROUP,
                             enable_auto_commit=False)
    await probe.start()
    try:
        topic = kafka.prefix + LIFECYCLE_TOPIC
        out = {}
        for p in range(4):
            tp = TopicPartition(topic, p)
            c = await probe.committed(tp)
            if c is not None:
                out[(topic, p)] = c
        return out
    finally:
        await probe.stop()
