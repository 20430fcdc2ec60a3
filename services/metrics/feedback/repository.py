"""Queries on survey responses and support tickets."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.db import upsert
from services.metrics.models import Survey, Ticket


async def add_survey(session: AsyncSession, *, source: str, event_id: str, account_id: str, kind: str, score: int,
                     respondent: str | None, comment: str | None, at: dt.datetime) -> None:
    t = Survey.__table__
    await session.execute(upsert(session, t).on_conflict_do_nothing(index_elements=[t.c.source, t.c.event_id]),
                          [{"id": str(uuid.uuid4()), "source": source, "event_id": event_id,
                            "account_id": account_id, "kind": kind, "score": score, "respondent": respondent,
                            "comment": comment, "responded_at": at}])


async def get_ticket(session: AsyncSession, ticket_id: str) -> Ticket | None:
    return (await session.execute(select(Ticket).where(Ticket.ticket_id == ticket_id).with_for_update())
            ).scalar_one_or_none()


async def surveys_between(session: AsyncSession, start: dt.datetime, end: dt.datetime,
                          account_ids: set[str] | None = None) -> list[Survey]:
    stmt = select(Survey).where(Survey.responded_at >= start, Survey.responded_at < end)
    if account_ids is not None:
        stmt = stmt.where(Survey.account_id.in_(account_ids))
    return list((await session.execute(stmt)).scalars().all())


async def tickets_opened_between(session: AsyncSession, start: dt.datetime, end: dt.datetime,
                                 account_ids: set[str] | None = None) -> list[Ticket]:
    stmt = select(Ticket).where(Ticket.opened_at >= start, Ticket.opened_at < end)
    if account_ids is not None:
        stmt = stmt.where(Ticket.account_id.in_(account_ids))
    return list((await session.execute(stmt)).scalars().all())


async def tickets_for(session: AsyncSession, account_ids: list[str], since: dt.datetime) -> list[Ticket]:
    """Tickets of the accounts opened since ``since`` or still unresolved."""
    return list((await session.execute(select(Ticket).where(
        Ticket.account_id.in_(account_ids), or_(Ticket.resolved_at.is_(None), Ticket.opened_at >= since))
    )).scalars().all())


async def surveys_for(session: AsyncSession, account_ids: list[str], since: dt.datetime) -> list[Survey]:
    return list((await session.execute(
        select(Survey).where(Survey.account_id.in_(account_ids), Survey.responded_at >= since)
        .order_by(Survey.responded_at))).scalars().all())
