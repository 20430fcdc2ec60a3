"""Bounded state: delivered/dead deliveries (with their attempts) and resolved alerts are deleted
once older than their retention, in batches (``RETENTION_BATCH_SIZE``), by the maintenance loop
(every ``RETENTION_INTERVAL``, like the suite's purge of dedup and idempotency keys). Active alerts,
and pending or sending deliveries, are never purged; alert dedup only looks at active alerts (``active_key``), so
purging resolved ones cannot open a duplicate."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.alerts import repository as alerts_repo
from services.notifier.deliveries import repository as deliveries_repo
from services.notifier.settings import Settings
from shared.db import utcnow

MAX_BATCHES_PER_PASS = 100


@dataclass
class Purged:
    deliveries: int = 0
    delivery_attempts: int = 0
    alerts: int = 0

    def add(self, deliveries: int = 0, attempts: int = 0, alerts: int = 0) -> None:
        self.deliveries += deliveries
        self.delivery_attempts += attempts
        self.alerts += alerts


async def _deliveries_batch(session: AsyncSession, before: dt.datetime, batch: int) -> tuple[int, int]:
    return await deliveries_repo.purge_finished(session, before, batch)


async def _alerts_batch(session: AsyncSession, before: dt.datetime, batch: int) -> tuple[int, int, int]:
    ids = await alerts_repo.resolved_before(session, before, batch)
    # An alert whose last notification is still being sent waits for the next pass.
    busy = await deliveries_repo.alerts_with_open_deliveries(session, ids)
    ids = [i for i in ids if i not in busy]
    d, a = await deliveries_repo.purge_of_alerts(session, ids)
    return await alerts_repo.delete_resolved(session, ids), d, a


async def purge(session_factory: async_sessionmaker[AsyncSession], settings: Settings,
                now: dt.datetime | None = None) -> Purged:
    """One retention pass; each batch is its own short transaction."""
    now = now or utcnow()
    out = Purged()
    batch = settings.retention_batch_size
    before = now - settings.delivery_retention
    for _ in range(MAX_BATCHES_PER_PASS):
        async with session_factory() as session, session.begin():
            d, a = await _deliveries_batch(session, before, batch)
        out.add(deliveries=d, attempts=a)
        if d < batch:
            break
    before = now - settings.resolved_alert_retention
    for _ in range(MAX_BATCHES_PER_PASS):
        async with session_factory() as session, session.begin():
            n, d, a = await _alerts_batch(session, before, batch)
        out.add(alerts=n, deliveries=d, attempts=a)
        if n < batch:
            break
    return out
