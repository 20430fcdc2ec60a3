"""Every query on commitments and their change history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, not_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from services.handoff.commitments.schemas import PENDING_STATUSES
from services.handoff.models import Commitment, CommitmentChange, Handoff
from shared.db import is_postgresql
from shared.http import keyset_page

ORDER: list[QueryableAttribute[Any]] = [Commitment.created_at, Commitment.id]
HANDOFF_ORDER: list[QueryableAttribute[Any]] = [Commitment.position, Commitment.id]


async def get(session: AsyncSession, commitment_id: str, *, for_update: bool = False) -> Commitment | None:
    stmt = select(Commitment).where(Commitment.id == commitment_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def history(session: AsyncSession, commitment_id: str) -> list[CommitmentChange]:
    stmt = (select(CommitmentChange).where(CommitmentChange.commitment_id == commitment_id)
            .order_by(CommitmentChange.at, CommitmentChange.id))
    return list((await session.execute(stmt)).scalars())


@dataclass(frozen=True)
class CommitmentFilters:
    status: Sequence[str] | None = None
    owner: str | None = None
    overdue: bool | None = None
    handoff_id: str | None = None
    account_id: str | None = None
    handoff_status: Sequence[str] | None = None
    due_before: dt.date | None = None


def _overdue(today: dt.date) -> ColumnElement[bool]:
    return and_(Commitment.due_date.is_not(None), Commitment.due_date < today,
                Commitment.status.in_(PENDING_STATUSES))


async def page(session: AsyncSession, f: CommitmentFilters, *, today: dt.date, cursor: str | None,
               limit: int) -> tuple[list[Commitment], str | None]:
    stmt = select(Commitment)
    if f.status:
        stmt = stmt.where(Commitment.status.in_(f.status))
    if f.owner:
        stmt = stmt.where(Commitment.owner == f.owner)
    if f.handoff_id:
        stmt = stmt.where(Commitment.handoff_id == f.handoff_id)
    if f.account_id:
        stmt = stmt.where(Commitment.account_external_id == f.account_id)
    if f.due_before:
        stmt = stmt.where(Commitment.due_date < f.due_before)
    if f.handoff_status:
        stmt = stmt.where(Commitment.handoff_id.in_(select(Handoff.id).where(Handoff.status.in_(f.handoff_status))))
    if f.overdue is not None:
        clause = _overdue(today)
        stmt = stmt.where(clause if f.overdue else not_(clause))
    if f.handoff_id:
        # One handoff's commitments read in the order presales listed them.
        return await keyset_page(session, stmt, order_by=HANDOFF_ORDER, cursor=cursor, limit=limit,
                                 descending=False)
    return await keyset_page(session, stmt, order_by=ORDER, cursor=cursor,
                             limit=limit)


def _flaggable(today: dt.date) -> list[ColumnElement[bool]]:
    return [
        Commitment.due_date.is_not(None),
        Commitment.due_date < today,
        Commitment.status.in_(("open", "in_progress")),
        or_(Commitment.overdue_flagged_due.is_(None), Commitment.overdue_flagged_due != Commitment.due_date),
    ]


async def claim_overdue(session: AsyncSession, *, today: dt.date, live_statuses: Sequence[str],
                        limit: int) -> list[str]:
    """Ids of overdue commitments not yet flagged; on PostgreSQL locked so other replicas skip them."""
    stmt = (select(Commitment.id)
            .where(*_flaggable(today),
                   Commitment.handoff_id.in_(select(Handoff.id).where(Handoff.status.in_(live_statuses))))
            .order_by(Commitment.due_date, Commitment.id).limit(limit))
    if is_postgresql(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.execute(stmt)).scalars())


async def flag_at_risk(session: AsyncSession, commitment_id: str, *, today: dt.date, now: dt.datetime) -> bool:
    """Mark one commitment at_risk if it still qualifies; True only for the caller that changed it."""
    result = await session.execute(
        update(Commitment)
        .where(Commitment.id == commitment_id, *_flaggable(today))
        .values(status="at_risk", overdue_flagged_due=Commitment.due_date, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
