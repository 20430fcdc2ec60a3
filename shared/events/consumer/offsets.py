"""Where a consumer's progress lives: the seam between the pipeline and its offset store.

The pipeline calls the store at three points:

- :meth:`OffsetStore.assigned` when partitions are assigned, before anything is fetched from them;
- :meth:`OffsetStore.in_transaction` inside every transaction that applies events, with the offsets
  that transaction's events reach (the next offset to read, per partition);
- :meth:`OffsetStore.commit` after a batch is settled (applied or dead-lettered), with the next offset
  to read per partition.

:class:`KafkaOffsets`, the only store today, keeps progress in the consumer group's committed offsets:
nothing on assignment (Kafka resumes from the committed offsets), nothing in the transaction (a crash
between the transaction and the commit replays the batch, and ``processed_events`` makes it a no-op),
``commit`` commits to the group.

A database store (offsets in the same transaction as the batch's effects) would write a row per
partition in ``in_transaction``, ``seek()`` each assigned partition to its stored offset in
``assigned``, and record in ``commit`` only what no transaction carried (dead-lettered messages at the
end of a batch). Note that ``in_transaction`` may be called several times per batch (halves, while a
failing batch is isolated) and that messages dead-lettered without a transaction only reach the store
through the next ``in_transaction`` or ``commit``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Set
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger("postsales.consumer")


class OffsetStore(Protocol):
    async def assigned(self, kafka: AIOKafkaConsumer, partitions: Set[TopicPartition]) -> None: ...

    async def in_transaction(self, session: AsyncSession, offsets: Mapping[TopicPartition, int]) -> None: ...

    async def commit(self, kafka: AIOKafkaConsumer, offsets: Mapping[TopicPartition, int]) -> None: ...


class KafkaOffsets:
    """Progress as the consumer group's committed offsets (the default)."""

    def __init__(self, consumer: str) -> None:
        self.consumer = consumer

    async def assigned(self, kafka: AIOKafkaConsumer, partitions: Set[TopicPartition]) -> None:
        return None

    async def in_transaction(self, session: AsyncSession, offsets: Mapping[TopicPartition, int]) -> None:
        return None

    async def commit(self, kafka: AIOKafkaConsumer, offsets: Mapping[TopicPartition, int]) -> None:
        if not offsets:
            return
        try:
            await kafka.commit(dict(offsets))
        except (CommitFailedError, KafkaError) as exc:
            # Partitions moved or the broker blipped; whoever reads them next dedups what we applied.
            log.warning("consumer %s: offset commit failed (%s)", self.consumer, exc)
