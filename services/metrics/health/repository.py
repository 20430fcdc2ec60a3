"""Queries of health scoring: the dirty set, stored scores, the model versions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.bulk import BulkInsert
from services.metrics.models import HealthDirty, HealthModel, HealthScore
from shared.db import utcnow

_DIRTY = BulkInsert(HealthDirty.__table__, ["account_id", "marked_at"],  # type: ignore[arg-type]
                    conflict=["account_id"], update={"marked_at": "{new}.marked_at"})


async def mark_dirty(session: AsyncSession, account_ids: Iterable[str]) -> None:
    """Queue accounts for re-scoring (one statement, whatever the number of accounts)."""
    now = utcnow()
    # Sorted: concurrent batches upsert shared rows in the same order (no deadlock on PostgreSQL).
    await _DIRTY.execute(session, [(a, now) for a in sorted(set(account_ids))])


async def dirty_accounts(session: AsyncSession, limit: int) -> list[tuple[str, dt.datetime]]:
    rows = await session.execute(
        select(HealthDirty.account_id, HealthDirty.marked_at).order_by(HealthDirty.marked_at).limit(limit))
    return [(a, m) for a, m in rows.all()]


async def clear_dirty(session: AsyncSession, seen: list[tuple[str, dt.datetime]]) -> None:
    # A mark newer than the one we scored from stays, so that change is scored next pass.
    if seen:
        await session.execute(delete(HealthDirty).where(
            tuple_(HealthDirty.account_id, HealthDirty.marked_at).in_(seen)))


async def outdated_accounts(session: AsyncSession, version: int, limit: int) -> list[str]:
    """Accounts whose stored score rests on another model version than ``version``."""
    rows = await session.execute(select(HealthScore.account_id).where(HealthScore.model_version != version)
                                 .order_by(HealthScore.account_id).limit(limit))
    return list(rows.scalars().all())


async def stale_accounts(session: AsyncSession, before: dt.datetime, limit: int) -> list[str]:
    rows = await session.execute(select(HealthScore.account_id).where(HealthScore.computed_at < before)
                                 .order_by(HealthScore.computed_at).limit(limit))
    return list(rows.scalars().all())


async def get_score(session: AsyncSession, account_id: str) -> HealthScore | None:
    return (await session.execute(select(HealthScore).where(HealthScore.account_id == account_id))
            ).scalar_one_or_none()


async def scores_for(session: AsyncSession, account_ids: list[str]) -> dict[str, HealthScore]:
    rows = await session.execute(select(HealthScore).where(HealthScore.account_id.in_(account_ids))
                                 .order_by(HealthScore.account_id).with_for_update())
    return {h.account_id: h for h in rows.scalars().all()}


async def latest_model(session: AsyncSession) -> HealthModel | None:
    return (await session.execute(
        select(HealthModel).order_by(HealthModel.version.desc()).limit(1))).scalar_one_or_none()


async def model_versions(session: AsyncSession) -> list[HealthModel]:
    return list((await session.execute(select(HealthModel).order_by(HealthModel.version.desc()))).scalars().all())


async def max_model_version(session: AsyncSession) -> int:
    return int((await session.execute(select(func.coalesce(func.max(HealthModel.version), 0)))).scalar_one())


async def all_scored_accounts(session: AsyncSession) -> list[str]:
    return list((await session.execute(select(HealthScore.account_id))).scalars().all())
