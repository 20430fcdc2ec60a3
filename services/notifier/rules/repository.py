"""Queries on rules."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.models import Rule
from shared.http import keyset_page


async def get(session: AsyncSession, rule_id: str) -> Rule | None:
    return await session.get(Rule, rule_id)


async def page(session: AsyncSession, *, cursor: str | None, limit: int) -> tuple[list[Rule], str | None]:
    rows, nxt = await keyset_page(session, select(Rule), order_by=[Rule.created_at, Rule.id],
                                  cursor=cursor, limit=limit)
    return list(rows), nxt


async def add(session: AsyncSession, rule: Rule) -> None:
    session.add(rule)
    await session.flush()


async def delete(session: AsyncSession, rule: Rule) -> None:
    await session.delete(rule)
    await session.flush()


async def by_name(session: AsyncSession, name: str) -> Rule | None:
    return (await session.execute(select(Rule).where(Rule.name == name))).scalar_one_or_none()


async def enabled(session: AsyncSession) -> list[Rule]:
    stmt = select(Rule).where(Rule.enabled.is_(True)).order_by(Rule.created_at, Rule.id)
    return list((await session.execute(stmt)).scalars().all())


async def existing_ids(session: AsyncSession, ids: Sequence[str]) -> set[str]:
    if not ids:
        return set()
    return set((await session.execute(select(Rule.id).where(Rule.id.in_(list(ids))))).scalars().all())


async def inhibitors_of_any(session: AsyncSession) -> list[Rule]:
    """Rules that inhibit other rules."""
    rows = (await session.execute(select(Rule).order_by(Rule.id))).scalars().all()
    return [r for r in rows if (r.inhibits or {}).get("rules")]


async def inhibitors_of(session: AsyncSession, rule_id: str) -> list[Rule]:
    """Rules whose alerts mute ``rule_id``'s alerts."""
    rows = (await session.execute(select(Rule))).scalars().all()
    return [r for r in rows if rule_id in ((r.inhibits or {}).get("rules") or [])]
