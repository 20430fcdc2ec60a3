"""Dialect helpers: the dialect-specific INSERT (for ON CONFLICT) and the rollup lock."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

# Taken shared by ingest batches and exclusively by a recompute, so a rebuild never interleaves
# with an incremental update (PostgreSQL only: SQLite already serialises writers).
ROLLUP_LOCK_KEY = 0x6D657472  # "metr"


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def upsert(session: AsyncSession, table: Any) -> Any:
    """``INSERT`` with ``on_conflict_do_nothing`` / ``on_conflict_do_update`` for the session's dialect."""
    if dialect_name(session) == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def lock_rollups(session: AsyncSession, *, exclusive: bool) -> None:
    if dialect_name(session) != "postgresql":
        return
    fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    await session.execute(text(f"SELECT {fn}(:k)"), {"k": ROLLUP_LOCK_KEY})
