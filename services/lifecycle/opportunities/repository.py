"""Queries on opportunities."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.lifecycle.models import Opportunity
from shared.http import keyset_page


async def get(session: AsyncSession, account_id: str, opportunity_id: str, *,
              lock: bool = False) -> Opportunity | None:
    stmt = select(Opportunity).where(Opportunity.id == opportunity_id, Opportunity.account_id == account_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def page(session: AsyncSession, account_id: str, *, status: str | None, cursor: str | None,
               limit: int) -> tuple[list[Opportunity], str | None]:
    """An account's opportunities, newest first."""
    stmt = select(Opportunity).where(Opportunity.account_id == account_id)
    if status:
        stmt = stmt.where(Opportunity.status == status)
    return await keyset_page(session, stmt, order_by=[Opportunity.created_at, Opportunity.id], cursor=cursor,
                             limit=limit)
