"""Bounded state: old rows of the infrastructure tables are purged by a periodic loop every service runs.

- ``processed_events`` (consumers' dedup keys): kept ``DEDUP_RETENTION`` (never less than
  ``MAX_EVENT_AGE``) plus ``MAX_FUTURE_SKEW``. Consumers refuse an event whose time is out of those
  bounds, so a duplicate is only accepted while its event is younger than the max age, and it was first
  processed no earlier than the skew before its own time: its key is still there.
- ``idempotency_keys``: kept ``IDEMPOTENCY_RETENTION`` (7 days): a client retry comes within that.
- ``outbox``: published rows are purged by the relay itself (``OUTBOX_RETENTION_HOURS``).

Rows go in batches of ``RETENTION_BATCH_SIZE``, one short transaction each, oldest first, and are
counted in ``retention_purged_rows_total{table}``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from sqlalchemy import Column, Table, delete, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.app.context import ServiceContext
from shared.app.periodic import Periodic
from shared.db import READ_ONLY, is_postgresql, utcnow


async def purge_older_than(factory: async_sessionmaker[AsyncSession], table: Table, column: Column[Any],
                           cutoff: dt.datetime, *, batch_size: int) -> int:
    """Delete the rows of ``table`` whose ``column`` is before ``cutoff``, ``batch_size`` at a time."""
    key = list(table.primary_key.columns)
    total = 0
    while True:
        async with factory() as session:
            # Look first, without a write lock: most passes find nothing, and then lock nothing.
            async with session.begin():
                await session.connection(execution_options={READ_ONLY: True})
                due = (await session.execute(select(literal(1)).where(column < cutoff).limit(1))).first()
            if due is None:
                return total
            async with session.begin():
                deleted = await _delete_batch(session, table, key, column, cutoff, batch_size)
        total += deleted
        if deleted < batch_size:
            return total
        await asyncio.sleep(0)  # let requests and consumers in between batches


async def _delete_batch(session: AsyncSession, table: Table, key: list[Column[Any]], column: Column[Any],
                        cutoff: dt.datetime, batch_size: int) -> int:
    victims = select(*key).where(column < cutoff).order_by(column).limit(batch_size)
    if is_postgresql(session):
        # Replicas purging at the same time split the rows instead of waiting on each other.
        victims = victims.with_for_update(skip_locked=True)
    match = key[0].in_(victims) if len(key) == 1 else tuple_(*key).in_(victims)
    result = await session.execute(delete(table).where(match))
    return int(getattr(result, "rowcount", 0) or 0)


async def purge_infra(ctx: ServiceContext) -> int:
    """One retention pass over the dedup and idempotency keys; returns the rows deleted."""
    s, infra, now = ctx.settings, ctx.infra, utcnow()
    purged = 0
    for table, column, kept in (
        (infra.processed_events, infra.processed_events.c.processed_at, s.dedup_keys_kept),
        (infra.idempotency_keys, infra.idempotency_keys.c.created_at, s.idempotency_retention),
    ):
        n = await purge_older_than(ctx.session_factory, table, column, now - kept, batch_size=s.retention_batch_size)
        ctx.metrics.retention_purged.labels(table=table.name).inc(n)
        purged += n
    return purged


RETENTION = Periodic("retention", every="retention_interval", run=purge_infra)
"""Run by every service (the runtime adds it to the service's own loops)."""
