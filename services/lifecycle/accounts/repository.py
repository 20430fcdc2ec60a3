"""Queries on accounts, their stage history and health."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.lifecycle.models import Account, AccountHealth, AccountRisk, StageChange
from shared.http import keyset_page


async def get(session: AsyncSession, account_id: str, *, lock: bool = False) -> Account | None:
    stmt = select(Account).where(Account.id == account_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


@dataclass(frozen=True)
class AccountFilters:
    stage: str | None = None
    owner: str | None = None
    segment: str | None = None
    health_band: str | None = None
    renewal_before: dt.date | None = None
    renewal_from: dt.date | None = None


def _filtered(filters: AccountFilters) -> Select[Any]:
    stmt = select(Account)
    if filters.stage:
        stmt = stmt.where(Account.stage == filters.stage)
    if filters.owner:
        stmt = stmt.where(Account.owner == filters.owner)
    if filters.segment:
        stmt = stmt.where(Account.segment == filters.segment)
    if filters.health_band:
        stmt = stmt.join(AccountHealth, AccountHealth.account_id == Account.id).where(
            AccountHealth.band == filters.health_band)
    if filters.renewal_before is not None:
        stmt = stmt.where(Account.renewal_date <= filters.renewal_before)
    if filters.renewal_from is not None:
        stmt = stmt.where(Account.renewal_date >= filters.renewal_from)
    return stmt


async def page(session: AsyncSession, filters: AccountFilters, *, cursor: str | None,
               limit: int) -> tuple[list[Account], str | None]:
    """Accounts, newest first."""
    return await keyset_page(session, _filtered(filters), order_by=[Account.created_at, Account.id],
                             cursor=cursor, limit=limit)


async def upcoming_renewals(session: AsyncSession, *, start: dt.date, end: dt.date, cursor: str | None,
                            limit: int) -> tuple[list[Account], str | None]:
    """Live accounts renewing between ``start`` and ``end``, soonest first."""
    stmt = select(Account).where(Account.renewal_date >= start, Account.renewal_date <= end,
                                 Account.stage != "churned")
    return await keyset_page(session, stmt, order_by=[Account.renewal_date, Account.id], cursor=cursor,
                             limit=limit, descending=False)


async def health_for(session: AsyncSession, account_ids: Sequence[str]) -> dict[str, AccountHealth]:
    if not account_ids:
        return {}
    rows = await session.execute(select(AccountHealth).where(AccountHealth.account_id.in_(account_ids)))
    return {h.account_id: h for h in rows.scalars()}


async def risk_for(session: AsyncSession, account_ids: Sequence[str]) -> dict[str, AccountRisk]:
    if not account_ids:
        return {}
    rows = await session.execute(select(AccountRisk).where(AccountRisk.account_id.in_(account_ids)))
    return {r.account_id: r for r in rows.scalars()}


async def get_risk(session: AsyncSession, account_id: str) -> AccountRisk | None:
    stmt = select(AccountRisk).where(AccountRisk.account_id == account_id).with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def get_health(session: AsyncSession, account_id: str, *, lock: bool = False) -> AccountHealth | None:
    stmt = select(AccountHealth).where(AccountHealth.account_id == account_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def stage_history(session: AsyncSession, account_id: str, *, cursor: str | None,
                        limit: int) -> tuple[list[StageChange], str | None]:
    stmt = select(StageChange).where(StageChange.account_id == account_id)
    return await keyset_page(session, stmt, order_by=[StageChange.seq], cursor=cursor, limit=limit)


async def last_stage_seq(session: AsyncSession, account_id: str) -> int:
    stmt = select(func.max(StageChange.seq)).where(StageChange.account_id == account_id)
    return int((await session.execute(stmt)).scalar_one() or 0)
