"""Queries on channels."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.models import Channel, Rule
from shared.http import keyset_page


async def get(session: AsyncSession, channel_id: str) -> Channel | None:
    return await session.get(Channel, channel_id)


async def page(session: AsyncSession, *, cursor: str | None, limit: int) -> tuple[list[Channel], str | None]:
    rows, nxt = await keyset_page(session, select(Channel), order_by=[Channel.created_at, Channel.id],
                                  cursor=cursor, limit=limit)
    return list(rows), nxt


async def with_secrets(session: AsyncSession) -> list[Channel]:
    stmt = select(Channel).where(Channel.secret_enc.is_not(None)).order_by(Channel.id)
    return list((await session.execute(stmt)).scalars().all())


async def add(session: AsyncSession, channel: Channel) -> None:
    session.add(channel)
    await session.flush()


async def delete(session: AsyncSession, channel: Channel) -> None:
    await session.delete(channel)
    await session.flush()


async def by_name(session: AsyncSession, name: str) -> Channel | None:
    return (await session.execute(select(Channel).where(Channel.name == name))).scalar_one_or_none()


async def by_ids(session: AsyncSession, ids: Sequence[str]) -> list[Channel]:
    if not ids:
        return []
    rows = (await session.execute(select(Channel).where(Channel.id.in_(list(ids))))).scalars().all()
    order = {cid: i for i, cid in enumerate(ids)}
    return sorted(rows, key=lambda c: order[c.id])


async def existing_ids(session: AsyncSession, ids: Sequence[str]) -> set[str]:
    if not ids:
        return set()
    return set((await session.execute(select(Channel.id).where(Channel.id.in_(list(ids))))).scalars().all())


async def defaults(session: AsyncSession) -> list[Channel]:
    stmt = select(Channel).where(Channel.is_default.is_(True)).order_by(Channel.created_at, Channel.id)
    return list((await session.execute(stmt)).scalars().all())


async def rules_using(session: AsyncSession, channel_id: str) -> list[str]:
    """Names of rules that send to the channel (directly or as escalation)."""
    rules = (await session.execute(select(Rule))).scalars().all()
    return [r.name for r in rules
            if channel_id in (r.channels or []) or (r.escalation or {}).get("channel") == channel_id]
