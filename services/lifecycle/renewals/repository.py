"""Queries on renewals and on the renewal-window ledger."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.lifecycle.models import Account, Renewal, RenewalWindowFired
from shared.db import dialect_insert
from shared.http import keyset_page


async def page(session: AsyncSession, account_id: str, *, cursor: str | None,
               limit: int) -> tuple[list[Renewal], str | None]:
    stmt = select(Renewal).where(Renewal.account_id == account_id)
    return await keyset_page(session, stmt, order_by=[Renewal.recorded_at, Renewal.id], cursor=cursor,
                             limit=limit)


async def accounts_with_due_windows(session: AsyncSession, *, today: dt.date, windows: Sequence[int],
                                    limit: int) -> list[Account]:
    """Live accounts with a renewal ahead and a window entered but not yet in the ledger.

    The rows are locked FOR UPDATE SKIP LOCKED on PostgreSQL, so concurrent passes (replicas) split the
    work instead of doing it twice; SQLite serializes writers anyway."""
    fired = RenewalWindowFired
    pending = [
        and_(Account.renewal_date <= today + dt.timedelta(days=w),
             ~exists().where(fired.account_id == Account.id, fired.renewal_date == Account.renewal_date,
                             fired.window_days == w))
        for w in windows
    ]
    stmt = (select(Account)
            .where(Account.renewal_date >= today, Account.stage != "churned", or_(*pending))
            .order_by(Account.renewal_date, Account.id).limit(limit)
            .with_for_update(skip_locked=True, of=Account))
    return list((await session.execute(stmt)).scalars())


async def fired_windows(session: AsyncSession, accounts: Sequence[Account]) -> set[tuple[str, dt.date, int]]:
    if not accounts:
        return set()
    f = RenewalWindowFired
    rows = await session.execute(select(f.account_id, f.renewal_date, f.window_days)
                                 .where(f.account_id.in_([a.id for a in accounts])))
    return {(a, d, w) for a, d, w in rows.all()}


async def claim_window(session: AsyncSession, *, account_id: str, renewal_date: dt.date, window_days: int,
                       at: dt.datetime) -> bool:
    """Insert the ledger row; False when it already exists (another pass fired this window)."""
    values = {"account_id": account_id, "renewal_date": renewal_date, "window_days": window_days, "fired_at": at}
    result = await session.execute(
        dialect_insert(session, RenewalWindowFired).values(**values).on_conflict_do_nothing())
    return bool(getattr(result, "rowcount", 0) == 1)
