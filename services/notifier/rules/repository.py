"""Queries on rules."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.models import Rule


async def by_name(session: AsyncSession, name: str) -> Rule | None:
    return (await session.execute(select(Rule).where(Rule.name == name))).scalar_one_or_none()


async def enabled(session: AsyncSession) -> list[Rule]:
    stmt = select(Rule).where(Rule.enabled.is_(True)).order_by(Rule.created_at, Rule.id)
    return list((await session.execute(stmt)).scalars().all())


async def existing_ids(session: AsyncSession, ids: Sequence[str]) -> set[str]:
    if not ids:
        return set()
    return set((await session.execute(select(Rule.id).where(Rule.id.in_(list(ids))))).scalars().all())


async def inhibitors_of(session: AsyncSession, rule_id: str) -> list[Rule]:
    """Rules whose alerts mute ``rule_id``'s alerts."""
    rows = (await session.execute(select(Rule))).scalars().all()
    return [r for r in rows if rule_id in ((r.inhibits or {}).get("rules") or [])]
