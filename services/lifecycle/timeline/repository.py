"""Queries on the timeline."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.lifecycle.models import TimelineEntry
from shared.http import keyset_page


async def page(session: AsyncSession, account_id: str, *, type_prefix: str | None, cursor: str | None,
               limit: int) -> tuple[list[TimelineEntry], str | None]:
    """The account's timeline, newest first."""
    stmt = select(TimelineEntry).where(TimelineEntry.account_id == account_id)
    if type_prefix:
        stmt = stmt.where(TimelineEntry.type.startswith(type_prefix, autoescape=True))
    return await keyset_page(session, stmt, order_by=[TimelineEntry.occurred_at, TimelineEntry.id], cursor=cursor,
                             limit=limit)
