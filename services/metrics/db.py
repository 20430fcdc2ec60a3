"""The rollup lock (and ``upsert``, the shared dialect INSERT under the name the metrics code uses)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import dialect_insert, is_postgresql

# Taken shared by ingest batches and exclusively by a recompute, so a rebuild never interleaves
# with an incremental update (PostgreSQL only: SQLite already serialises writers).
ROLLUP_LOCK_KEY = 0x6D657472  # "metr"


upsert = dialect_insert


async def lock_rollups(session: AsyncSession, *, exclusive: bool) -> None:
    if not is_postgresql(session):
        return
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await session.execute(text(f"SELECT {fn}(:k)"), {"k": ROLLUP_LOCK_KEY})
