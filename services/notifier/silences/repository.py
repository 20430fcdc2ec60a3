"""Queries on silences."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.models import Silence
from shared.http import keyset_page


async def get(session: AsyncSession, silence_id: str) -> Silence | None:
    return await session.get(Silence, silence_id)


async def page(session: AsyncSession, *, status: Literal["active", "expired"] | None, now: dt.datetime,
               cursor: str | None, limit: int) -> tuple[list[Silence], str | None]:
    stmt = select(Silence)
    if status == "active":
        stmt = stmt.where(Silence.ends_at > now)
    elif status == "expired":
        stmt = stmt.where(Silence.ends_at <= now)
    rows, nxt = await keyset_page(session, stmt, order_by=[Silence.created_at, Silence.id],
                                  cursor=cursor, limit=limit)
    return list(rows), nxt


async def active(session: AsyncSession, now: dt.datetime) -> list[Silence]:
    stmt = select(Silence).where(Silence.starts_at <= now, Silence.ends_at > now)
    return list((await session.execute(stmt)).scalars().all())


async def add(session: AsyncSession, silence: Silence) -> None:
    session.add(silence)
    await session.flush()
