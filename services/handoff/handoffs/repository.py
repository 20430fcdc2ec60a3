"""Every query on handoffs and their workflow history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, delete, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from services.handoff.commitments.schemas import PENDING_STATUSES
from services.handoff.models import Commitment, Handoff, HandoffTransition
from shared.http import keyset_page

ORDER: list[QueryableAttribute[Any]] = [Handoff.created_at, Handoff.id]


async def get(session: AsyncSession, handoff_id: str, *, for_update: bool = False) -> Handoff | None:
    stmt = select(Handoff).where(Handoff.id == handoff_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def id_for_opportunity(session: AsyncSession, crm_opportunity_id: str) -> str | None:
    stmt = select(Handoff.id).where(Handoff.crm_opportunity_id == crm_opportunity_id)
    return (await session.execute(stmt)).scalar_one_or_none()


@dataclass(frozen=True)
class HandoffFilters:
    status: Sequence[str] | None = None
    owner: str | None = None
    presales_owner: str | None = None
    postsales_owner: str | None = None
    segment: str | None = None
    account_id: str | None = None
    overdue: bool | None = None


def overdue_clause(today: dt.date) -> Select[Any]:
    return select(Commitment.id).where(
        Commitment.handoff_id == Handoff.id,
        Commitment.due_date < today,
        Commitment.status.in_(PENDING_STATUSES),
    )


async def page(session: AsyncSession, f: HandoffFilters, *, today: dt.date, cursor: str | None,
               limit: int) -> tuple[list[Handoff], str | None]:
    stmt = select(Handoff)
    if f.status:
        stmt = stmt.where(Handoff.status.in_(f.status))
    if f.owner:
        stmt = stmt.where(or_(Handoff.presales_owner == f.owner, Handoff.postsales_owner == f.owner))
    if f.presales_owner:
        stmt = stmt.where(Handoff.presales_owner == f.presales_owner)
    if f.postsales_owner:
        stmt = stmt.where(Handoff.postsales_owner == f.postsales_owner)
    if f.segment:
        stmt = stmt.where(Handoff.account_segment == f.segment)
    if f.account_id:
        stmt = stmt.where(Handoff.account_external_id == f.account_id)
    if f.overdue is not None:
        has_overdue = exists(overdue_clause(today))
        stmt = stmt.where(has_overdue if f.overdue else ~has_overdue)
    return await keyset_page(session, stmt, order_by=ORDER, cursor=cursor,
                             limit=limit)


async def transitions_for(session: AsyncSession, handoff_ids: Sequence[str]) -> dict[str, list[HandoffTransition]]:
    out: dict[str, list[HandoffTransition]] = {i: [] for i in handoff_ids}
    if not handoff_ids:
        return out
    stmt = (select(HandoffTransition).where(HandoffTransition.handoff_id.in_(handoff_ids))
            .order_by(HandoffTransition.at, HandoffTransition.id))
    for t in (await session.execute(stmt)).scalars():
        out[t.handoff_id].append(t)
    return out


async def commitments_for(session: AsyncSession, handoff_ids: Sequence[str]) -> dict[str, list[Commitment]]:
    out: dict[str, list[Commitment]] = {i: [] for i in handoff_ids}
    if not handoff_ids:
        return out
    stmt = (select(Commitment).where(Commitment.handoff_id.in_(handoff_ids))
            .order_by(Commitment.position, Commitment.created_at, Commitment.id))
    for c in (await session.execute(stmt)).scalars():
        out[c.handoff_id].append(c)
    return out


async def delete_commitments(session: AsyncSession, ids: Sequence[str]) -> None:
    if ids:
        await session.execute(delete(Commitment).where(Commitment.id.in_(ids)))
