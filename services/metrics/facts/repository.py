"""Queries on account facts: accounts, renewals, opportunities, commitments."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.models import Account, Commitment, Opportunity, Renewal


async def get_account(session: AsyncSession, account_id: str, *, for_update: bool = False) -> Account | None:
    stmt = select(Account).where(Account.account_id == account_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_renewal(session: AsyncSession, account_id: str, day: dt.date) -> Renewal | None:
    return (await session.execute(select(Renewal).where(Renewal.account_id == account_id,
                                                        Renewal.renewal_date == day).with_for_update())
            ).scalar_one_or_none()


async def get_opportunity(session: AsyncSession, opportunity_id: str) -> Opportunity | None:
    return (await session.execute(select(Opportunity).where(Opportunity.opportunity_id == opportunity_id)
                                  .with_for_update())).scalar_one_or_none()


async def get_commitment(session: AsyncSession, commitment_id: str) -> Commitment | None:
    return (await session.execute(select(Commitment).where(Commitment.commitment_id == commitment_id)
                                  .with_for_update())).scalar_one_or_none()


async def accounts(session: AsyncSession, *, segment: str | None, owner: str | None) -> list[Account]:
    stmt = select(Account)
    if segment is not None:
        stmt = stmt.where(Account.segment == segment)
    if owner is not None:
        stmt = stmt.where(Account.owner == owner)
    return list((await session.execute(stmt)).scalars().all())


async def renewals_between(session: AsyncSession, start: dt.date, end: dt.date) -> list[Renewal]:
    return list((await session.execute(select(Renewal).where(Renewal.renewal_date >= start,
                                                             Renewal.renewal_date <= end))).scalars().all())


async def opportunities_won_between(session: AsyncSession, start: dt.datetime, end: dt.datetime) -> list[Opportunity]:
    return list((await session.execute(select(Opportunity).where(
        Opportunity.status == "won", Opportunity.won_at >= start, Opportunity.won_at < end))).scalars().all())


async def accounts_by_id(session: AsyncSession, account_ids: list[str]) -> dict[str, Account]:
    rows = await session.execute(select(Account).where(Account.account_id.in_(account_ids)))
    return {a.account_id: a for a in rows.scalars().all()}


async def commitments_for(session: AsyncSession, account_ids: list[str]) -> list[Commitment]:
    return list((await session.execute(select(Commitment).where(Commitment.account_id.in_(account_ids))))
                .scalars().all())


async def onboardings_between(session: AsyncSession, start: dt.date, end: dt.date,
                              start_at: dt.datetime, end_at: dt.datetime) -> list[Account]:
    """Accounts that completed onboarding in the period or whose planned go-live fell in it."""
    return list((await session.execute(select(Account).where(or_(
        Account.onboarding_completed_at.between(start_at, end_at),
        Account.planned_go_live.between(start, end),
    )))).scalars().all())
