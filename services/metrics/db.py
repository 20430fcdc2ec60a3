"""The rollup and scoring locks (and ``upsert``, the shared dialect INSERT under the name the metrics code uses)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import dialect_insert, is_postgresql

# Taken shared by ingest batches and exclusively by a recompute, so a rebuild never interleaves
# with an incremental update (PostgreSQL only: SQLite already serialises writers).
ROLLUP_LOCK_KEY = 0x6D657472  # "metr"
# Taken by every scoring pass (the health loop, a recompute, other replicas): two passes scoring an account
# never scored before would both insert its row. Always after the rollup lock, never before it.
SCORES_LOCK_KEY = 0x68656C74  # "helt"


upsert = dialect_insert


async def lock_rollups(session: AsyncSession, *, exclusive: bool) -> None:
    if not is_postgresql(session):
        return
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await session.execute(text(f"SELECT {fn}(:k)"), {"k": ROLLUP_LOCK_KEY})


async def lock_scores(session: AsyncSession) -> None:
    if is_postgresql(session):
        await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCORES_LOCK_KEY})
