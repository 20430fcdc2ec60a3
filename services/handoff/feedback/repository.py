"""Every query on feedback notes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from services.handoff.models import Feedback, Handoff
from shared.http import keyset_page

ORDER: list[QueryableAttribute[Any]] = [Feedback.created_at, Feedback.id]


async def page(session: AsyncSession, *, handoff_id: str | None = None, presales_owner: str | None = None,
               category: str | None = None, cursor: str | None, limit: int) -> tuple[list[Feedback], str | None]:
    stmt = select(Feedback)
    if handoff_id:
        stmt = stmt.where(Feedback.handoff_id == handoff_id)
    if presales_owner:
        stmt = stmt.join(Handoff, Handoff.id == Feedback.handoff_id).where(Handoff.presales_owner == presales_owner)
    if category:
        stmt = stmt.where(Feedback.category == category)
    return await keyset_page(session, stmt, order_by=ORDER, cursor=cursor, limit=limit)


async def handoffs_by_id(session: AsyncSession, ids: Sequence[str]) -> dict[str, Handoff]:
    if not ids:
        return {}
    rows = await session.execute(select(Handoff).where(Handoff.id.in_(set(ids))))
    return {h.id: h for h in rows.scalars()}
