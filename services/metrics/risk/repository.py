"""Queries of the churn-risk model: account histories, model versions, scores and the worklist."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, func, select, union
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from services.metrics.models import (
    Account,
    FactHistory,
    RiskModel,
    RiskScore,
    Survey,
    Ticket,
    UsageDaily,
    UsageDailyUser,
)
from services.metrics.risk.features import Fact, History
from shared.http import keyset_page


async def known_accounts(session: AsyncSession) -> list[str]:
    """Every account metrics has facts or usage for."""
    stmt = union(select(Account.account_id), select(FactHistory.account_id).distinct(),
                 select(UsageDaily.account_id).distinct())
    return sorted(r[0] for r in (await session.execute(stmt)).all())


async def is_known(session: AsyncSession, account_id: str) -> bool:
    for stmt in (select(Account.account_id).where(Account.account_id == account_id),
                 select(FactHistory.account_id).where(FactHistory.account_id == account_id).limit(1),
                 select(UsageDaily.account_id).where(UsageDaily.account_id == account_id).limit(1),
                 select(Survey.account_id).where(Survey.account_id == account_id).limit(1),
                 select(Ticket.account_id).where(Ticket.account_id == account_id).limit(1)):
        if (await session.execute(stmt)).first() is not None:
            return True
    return False


async def histories(session: AsyncSession, account_ids: Sequence[str], *, since: dt.date | None = None
                    ) -> dict[str, History]:
    """The histories of ``account_ids``; usage, surveys and tickets only from ``since`` when given
    (facts always whole: an attribute's first value matters)."""
    ids = list(account_ids)
    out = {a: History(account_id=a) for a in ids}
    for f in (await session.execute(select(FactHistory).where(FactHistory.account_id.in_(ids))
                                     .order_by(FactHistory.seq))).scalars():
        out[f.account_id].facts.append(Fact(seq=f.seq, at=f.at, kind=f.kind, data=f.data))
    usage = select(UsageDaily.account_id, UsageDaily.day, UsageDaily.events).where(UsageDaily.account_id.in_(ids))
    users = select(UsageDailyUser.account_id, UsageDailyUser.day, UsageDailyUser.user_id).where(
        UsageDailyUser.account_id.in_(ids))
    surveys = select(Survey.account_id, Survey.responded_at, Survey.kind, Survey.score).where(
        Survey.account_id.in_(ids)).order_by(Survey.responded_at)
    tickets = select(Ticket.account_id, Ticket.opened_at, Ticket.first_response_at, Ticket.resolved_at).where(
        Ticket.account_id.in_(ids))
    if since is not None:
        start = dt.datetime.combine(since, dt.time(), tzinfo=dt.UTC)
        usage = usage.where(UsageDaily.day >= since)
        users = users.where(UsageDailyUser.day >= since)
        surveys = surveys.where(Survey.responded_at >= start)
        tickets = tickets.where((Ticket.resolved_at.is_(None)) | (Ticket.opened_at >= start))
    for a, day, events in (await session.execute(usage)).all():
        out[a].usage[day] = float(events)
    for a, day, user in (await session.execute(users)).all():
        out[a].users.setdefault(day, set()).add(user)
    for a, at, kind, score in (await session.execute(surveys)).all():
        out[a].surveys.append((at, kind, int(score)))
    for a, opened, responded, resolved in (await session.execute(tickets)).all():
        out[a].tickets.append((opened, responded, resolved))
    for acc in (await session.execute(select(Account).where(Account.account_id.in_(ids)))).scalars():
        out[acc.account_id].current = {"owner": acc.owner, "segment": acc.segment, "seats": acc.seats,
                                       "arr": acc.arr, "renewal_date": acc.renewal_date, "stage": acc.stage,
                                       "contract_start": acc.contract_start}
    return out


async def accounts_by_id(session: AsyncSession, account_ids: Sequence[str]) -> dict[str, Account]:
    rows = await session.execute(select(Account).where(Account.account_id.in_(list(account_ids))))
    return {a.account_id: a for a in rows.scalars().all()}


async def latest_model(session: AsyncSession) -> RiskModel | None:
    return (await session.execute(select(RiskModel).order_by(RiskModel.version.desc()).limit(1))
            ).scalar_one_or_none()


async def model_versions(session: AsyncSession) -> list[RiskModel]:
    return list((await session.execute(select(RiskModel).order_by(RiskModel.version.desc()))).scalars().all())


async def next_model_version(session: AsyncSession) -> int:
    return int((await session.execute(select(func.coalesce(func.max(RiskModel.version), 0)))).scalar_one()) + 1


async def get_score(session: AsyncSession, account_id: str) -> RiskScore | None:
    return (await session.execute(select(RiskScore).where(RiskScore.account_id == account_id))).scalar_one_or_none()


async def scores_for(session: AsyncSession, account_ids: Sequence[str]) -> dict[str, RiskScore]:
    rows = await session.execute(select(RiskScore).where(RiskScore.account_id.in_(list(account_ids)))
                                 .order_by(RiskScore.account_id).with_for_update())
    return {s.account_id: s for s in rows.scalars().all()}


async def drop_score(session: AsyncSession, account_id: str) -> None:
    await session.execute(delete(RiskScore).where(RiskScore.account_id == account_id))


async def last_scored_at(session: AsyncSession) -> dt.datetime | None:
    value: Any = (await session.execute(select(func.max(RiskScore.as_of)))).scalar_one()
    return value  # type: ignore[no-any-return]


WORKLIST_ORDER: list[QueryableAttribute[Any]] = [RiskScore.arr_at_risk, RiskScore.account_id]


async def worklist(session: AsyncSession, *, band: str | None, owner: str | None, segment: str | None,
                   cursor: str | None, limit: int) -> tuple[list[RiskScore], str | None]:
    stmt = select(RiskScore)
    if band is not None:
        stmt = stmt.where(RiskScore.band == band)
    if owner is not None:
        stmt = stmt.where(RiskScore.owner == owner)
    if segment is not None:
        stmt = stmt.where(RiskScore.segment == segment)
    return await keyset_page(session, stmt, order_by=WORKLIST_ORDER, cursor=cursor, limit=limit)
