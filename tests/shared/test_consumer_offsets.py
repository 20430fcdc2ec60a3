"""The offset-store seam: the pipeline tells its store about assignments, about the offsets each transaction
reaches (inside that transaction), and about what to commit once a batch is settled."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Set
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from shared.events import CloudEvent
from shared.events.consumer import EventConsumer, KafkaOffsets
from shared.events.registry import LIFECYCLE_TOPIC
from shared.testing import eventually
from tests.shared import demo


class RecordingOffsets(KafkaOffsets):
    """The Kafka store (progress stays in the group), recording every call the pipeline makes."""

    def __init__(self) -> None:
        super().__init__("offsets-consumer")
        self.assigned_calls: list[set[TopicPartition]] = []
        self.in_tx: list[tuple[bool, dict[TopicPartition, int], set[str]]] = []
        self.commits: list[dict[TopicPartition, int]] = []

    async def assigned(self, kafka: AIOKafkaConsumer, partitions: Set[TopicPartition]) -> None:
        self.assigned_calls.append(set(partitions))

    async def in_transaction(self, session: AsyncSession, offsets: Mapping[TopicPartition, int]) -> None:
        # What this transaction wrote is visible here: a store writing its offsets now commits them with it.
        await session.flush()
        rows = set((await session.execute(select(demo.Applied.event_id))).scalars())
        self.in_tx.append((session.in_transaction(), dict(offsets), rows))

    async def commit(self, kafka: AIOKafkaConsumer, offsets: Mapping[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))
        await super().commit(kafka, offsets)


async def test_the_pipeline_calls_its_offset_store_on_assignment_in_each_transaction_and_at_commit(
        demo_service: Any, kafka: Any) -> None:
    events = [CloudEvent.new(type="postsales.account.updated", source="/tests/offsets", subject="acct",
                             data={"account_id": "acct", "name": "ok", "seats": i}) for i in range(5)]
    store = RecordingOffsets()
    async with demo_service(run_consumers=False) as svc:
        consumer = EventConsumer(name="offsets-consumer", topics=[LIFECYCLE_TOPIC],
                                 bootstrap=svc.settings.kafka_bootstrap_servers,
                                 session_factory=svc.ctx.session_factory, infra=svc.ctx.infra,
                                 handler=demo.apply_event, topic_prefix=svc.settings.kafka_topic_prefix,
                                 dlq_producer=svc.ctx.producer, offsets=store)
        task = asyncio.create_task(consumer.run())
        try:
            async def assigned() -> bool:
                return bool(store.assigned_calls) and len(store.assigned_calls[-1]) == 4

            await eventually(assigned, timeout=30, message="the store hears of the assignment")
            await kafka.publish(LIFECYCLE_TOPIC, events, key="acct")

            async def all_reached() -> bool:
                return any(sum(c.values()) >= 5 for c in store.commits)

            await eventually(all_reached, timeout=30, message="the commit reaches the last event")
        finally:
            consumer.stop()
            await asyncio.wait_for(task, 30)
    tp = next(iter({tp for c in store.commits for tp in c if c[tp] > 0}))
    assert tp.topic == svc.settings.kafka_topic_prefix + LIFECYCLE_TOPIC
    assert all(inside for inside, _, _ in store.in_tx), "in_transaction is called inside the transaction"
    # Each transaction reports the offsets its own events reach, with those events' effects in hand...
    reached = [offsets[tp] for _, offsets, _ in store.in_tx if tp in offsets]
    assert reached == sorted(reached) and reached[-1] == 5
    assert {e.id for e in events} <= store.in_tx[-1][2]
    # ...and the commit after it carries the same position.
    assert max(c.get(tp, 0) for c in store.commits) == 5
