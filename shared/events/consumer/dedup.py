"""The ``processed_events`` store: which events a consumer has already applied, keyed by source + id."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import dialect_insert, utcnow
from shared.events.envelope import Envelope


class ProcessedEvents:
    """Records, inside the batch's own transaction, the events ``consumer`` applies."""

    def __init__(self, table: Table, consumer: str) -> None:
        self.table = table
        self.consumer = consumer

    async def record_new(self, session: AsyncSession, events: Sequence[Envelope]) -> set[tuple[str, str]]:
        """Record the events as processed; return the keys that were not recorded before.

        One ``INSERT .. ON CONFLICT DO NOTHING RETURNING`` per batch: the rows that come back are the
        events this consumer has never applied (a duplicate hits the primary key and returns nothing).
        ``events`` must hold each key once.
        """
        if not events:
            return set()
        t = self.table
        stmt = dialect_insert(session, t).on_conflict_do_nothing().returning(t.c.source, t.c.event_id)
        now = utcnow()
        rows = await session.execute(stmt, [
            {"consumer": self.consumer, "source": e.source, "event_id": e.id, "processed_at": now}
            for e in events
        ])
        return {(source, event_id) for source, event_id in rows.all()}
