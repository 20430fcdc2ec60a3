"""Queries on touchpoints."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.lifecycle.models import Touchpoint
from shared.http import keyset_page


async def page(session: AsyncSession, account_id: str, *, kind: str | None, cursor: str | None,
               limit: int) -> tuple[list[Touchpoint], str | None]:
    """An account's touchpoints, most recent first."""
    stmt = select(Touchpoint).where(Touchpoint.account_id == account_id)
    if kind:
        stmt = stmt.where(Touchpoint.kind == kind)
    return await keyset_page(session, stmt, order_by=[Touchpoint.at, Touchpoint.id], cursor=cursor, limit=limit)
