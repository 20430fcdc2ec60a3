"""Where a consumer's progress lives: the seam between the pipeline and its offset store.

The pipeline calls the store at three points:

- :meth:`OffsetStore.assigned` when partitions are assigned, before anything is fetched from them;
- :meth:`OffsetStore.in_transaction` inside every transaction that applies events, with the offsets
  that transaction's events reach (the next offset to read, per partition);
- :meth:`OffsetStore.commit` after a batch is settled (applied or dead-lettered), with the next offset
  to read per partition.

:class:`KafkaOffsets`, the default store, keeps progress in the consumer group's committed offsets:
nothing on assignment (Kafka resumes from the committed offsets), nothing in the transaction (a crash
between the transaction and the commit replays the batch, and ``processed_events`` makes it a no-op),
``commit`` commits to the group.

:class:`DatabaseOffsets` keeps them in the service's database, in the same transaction as the batch's
effects: it writes a row per partition in ``in_transaction``, ``seek()`` s each assigned partition to
its stored offset in ``assigned``, and records in ``commit`` only what no transaction carried
(dead-lettered messages at the end of a batch). Note that ``in_transaction`` may be called several
times per batch (halves, while a failing batch is isolated) and that messages dead-lettered without a
transaction only reach the store through the next ``in_transaction`` or ``commit``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Set
from typing import Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, event, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import dialect_insert, is_sqlite

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


def consumer_offsets_table(metadata: MetaData) -> Table:
    """Declare ``consumer_offsets`` on ``metadata``: the next offset to read per group and partition."""
    return Table(
        "consumer_offsets",
        metadata,
        Column("group", String(300), primary_key=True),
        Column("topic", String(300), primary_key=True),
        Column("partition", Integer, primary_key=True, autoincrement=False),
        Column("next_offset", BigInteger, nullable=False),
    )


class DatabaseOffsets:
    """Progress in the service's database, written in the same transaction as the batch's effects.

    The batch's effects and the offset it reaches commit (or roll back) together, so the database alone
    says where to resume: on assignment each partition is sought to its stored offset (a partition with
    no row starts from the group's committed offset, or the earliest). A rebalance therefore hands over
    through the database. The group's Kafka commit is still made after each batch, but only so that
    lag tooling sees progress: it is never read back. If the database loses a commit (SQLite with
    ``synchronous=NORMAL`` after a power loss), it loses the offset with it, and the events are read
    again from the stored offset even though the Kafka offset is past them.
    """

    def __init__(self, table: Table, session_factory: async_sessionmaker[AsyncSession], group: str, *,
                 kafka_commit: bool = True, attempts: int = 5) -> None:
        self.table = table
        self.session_factory = session_factory
        self.group = group
        self.kafka = KafkaOffsets(group) if kafka_commit else None
        self.attempts = attempts
        # What a transaction of this member stored last, per partition: ``commit`` writes only what no
        # transaction carried (messages dead-lettered with nothing applied after them).
        self.stored: dict[TopicPartition, int] = {}

    async def load(self, partitions: Set[TopicPartition] | None = None) -> dict[TopicPartition, int]:
        """The stored next offsets of this group (of ``partitions`` only, when given)."""
        t = self.table
        async with self.session_factory() as session:
            rows = (await session.execute(
                select(t.c.topic, t.c.partition, t.c.next_offset).where(t.c.group == self.group))).all()
        found = {TopicPartition(topic, int(partition)): int(offset) for topic, partition, offset in rows}
        return found if partitions is None else {tp: o for tp, o in found.items() if tp in partitions}

    async def assigned(self, kafka: AIOKafkaConsumer, partitions: Set[TopicPartition]) -> None:
        for tp in partitions:
            self.stored.pop(tp, None)
        if not partitions:
            return
        # Paused before the first await: the fetcher may otherwise get a position from the group's Kafka
        # commit while the database is read, and hand out records that the seek then reads again.
        kafka.pause(*partitions)
        try:
            attempt = 0
            while True:
                try:
                    stored = await self.load(partitions)
                    break
                except Exception as exc:
                    attempt += 1
                    if attempt >= self.attempts:
                        raise
                    log.warning("consumer %s: reading stored offsets failed (%s); retrying", self.group, exc)
                    await asyncio.sleep(0.5 * attempt)
            for tp, offset in stored.items():
                kafka.seek(tp, offset)
                self.stored[tp] = offset
        finally:
            kafka.resume(*partitions)
        if stored:
            log.info("consumer %s: resuming %d partition(s) from the stored offsets", self.group, len(stored))

    async def in_transaction(self, session: AsyncSession, offsets: Mapping[TopicPartition, int]) -> None:
        if offsets:
            await self._write(session, offsets)
            written = dict(offsets)
            event.listen(session.sync_session, "after_commit", lambda _s: self.stored.update(written), once=True)

    async def commit(self, kafka: AIOKafkaConsumer, offsets: Mapping[TopicPartition, int]) -> None:
        ahead = {tp: o for tp, o in offsets.items() if o > self.stored.get(tp, -1)}
        if ahead:
            try:
                async with self.session_factory() as session, session.begin():
                    await self._write(session, ahead)
                self.stored.update(ahead)
            except Exception as exc:
                # Only dead-lettered messages are past the stored offset: they are dead-lettered again.
                log.warning("consumer %s: storing offsets failed (%s)", self.group, exc)
        if self.kafka is not None:
            await self.kafka.commit(kafka, offsets)

    async def _write(self, session: AsyncSession, offsets: Mapping[TopicPartition, int]) -> None:
        t = self.table
        rows = [{"group": self.group, "topic": tp.topic, "partition": tp.partition, "next_offset": o}
                for tp, o in offsets.items()]
        stmt = dialect_insert(session, t)
        # Never backwards: a member that lost its partitions without noticing cannot undo the new owner's
        # progress (what it applied twice is deduplicated by source + id).
        stmt = stmt.on_conflict_do_update(
            index_elements=[t.c.group, t.c.topic, t.c.partition],
            set_={"next_offset": func.max(t.c.next_offset, stmt.excluded.next_offset)
                  if is_sqlite(session) else func.greatest(t.c.next_offset, stmt.excluded.next_offset)},
        )
        await session.execute(stmt, rows)
