"""Feed a simulated book straight into the metrics service's own consumer handlers, in process.

For tests and the bench that need the metrics side of a book quickly: the same handlers the consumers
run, without the broker or the other services (``sim.load`` feeds a running suite through its APIs).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.metrics.facts.service import apply_fact
from services.metrics.feedback.service import apply_feedback
from services.metrics.usage.envelope import decode_usage
from services.metrics.usage.service import apply_usage_batch
from shared.events.envelope import CloudEvent
from sim.book import Book
from sim.load import events
from sim.stream import fact_events

USAGE_BATCH = 5000


async def apply_book(session_factory: async_sessionmaker[AsyncSession], book: Book, *, imported_at: dt.datetime,
                     keep: Callable[[dict[str, Any]], bool] = lambda _e: True) -> None:
    """Apply the book's lifecycle/handoff facts and feedback in one transaction, then its usage in batches."""
    evs = [e for e in events(book) if keep(e)]
    async with session_factory() as s, s.begin():
        for e in fact_events(book, imported_at):
            if keep(e):
                await apply_fact(s, CloudEvent.parse_document(e))
        for e in evs:
            if e["type"].startswith("postsales."):
                await apply_feedback(s, CloudEvent.parse_document(e))
    usage = [decode_usage(json.dumps(e).encode()) for e in evs if e["type"].startswith("usage.")]
    for i in range(0, len(usage), USAGE_BATCH):
        async with session_factory() as s, s.begin():
            await apply_usage_batch(s, usage[i:i + USAGE_BATCH])
