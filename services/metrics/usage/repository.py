"""All queries on raw usage events and their daily rollups.

The incremental path is set-based: one INSERT of the raw rows (dedup on the primary key), one of
the active users, one upsert per rollup table, each over the whole batch. Recompute rebuilds the
rollups of a period from the raw rows with INSERT … SELECT, so it never leaves the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, and_, delete, distinct, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.bulk import BulkInsert
from services.metrics.models import UsageDaily, UsageDailyFeature, UsageDailyType, UsageDailyUser, UsageEvent

RAW: Table = UsageEvent.__table__  # type: ignore[assignment]
DAILY: Table = UsageDaily.__table__  # type: ignore[assignment]
TYPES: Table = UsageDailyType.__table__  # type: ignore[assignment]
FEATURES: Table = UsageDailyFeature.__table__  # type: ignore[assignment]
USERS: Table = UsageDailyUser.__table__  # type: ignore[assignment]


# The incremental path runs once per consumed batch: driver-level statements (see bulk.py).
_RAW = BulkInsert(RAW, ["source", "event_id", "account_id", "type", "user_id", "feature", "quantity",
                        "occurred_at", "day", "received_at"],
                  conflict=["source", "event_id"], returning=["source", "event_id"])
_USERS = BulkInsert(USERS, ["account_id", "day", "user_id"], conflict=["account_id", "day", "user_id"],
                    returning=["account_id", "day"])
_DAILY = BulkInsert(DAILY, ["account_id", "day", "events", "event_count", "active_users", "last_at"],
                    conflict=["account_id", "day"],
                    update={"events": "{t}.events + {new}.events",
                            "event_count": "{t}.event_count + {new}.event_count",
                            "active_users": "{t}.active_users + {new}.active_users",
                            "last_at": "CASE WHEN {new}.last_at > {t}.last_at THEN {new}.last_at ELSE {t}.last_at END"})
_TYPES = BulkInsert(TYPES, ["account_id", "day", "type", "events"], conflict=["account_id", "day", "type"],
                    update={"events": "{t}.events + {new}.events"})
_FEATURES = BulkInsert(FEATURES, ["account_id", "day", "feature", "events"],
                       conflict=["account_id", "day", "feature"], update={"events": "{t}.events + {new}.events"})


async def insert_raw(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> list[tuple[str, str]]:
    """Insert raw events (tuples in ``_RAW.columns`` order), skipping (source, event_id) pairs already
    stored; returns the pairs inserted."""
    return [(s, e) for s, e in await _RAW.execute(session, rows)]


async def insert_users(session: AsyncSession, rows: Sequence[tuple[str, dt.date, str]]) -> list[tuple[str, dt.date]]:
    """Record (account, day, user); returns (account, day) once per user not seen that day before."""
    return [(a, d) for a, d in await _USERS.execute(session, rows)]


async def add_daily(session: AsyncSession, rows: Sequence[tuple[Any, ...]]) -> None:
    """Add (account, day, events, event_count, new active users, last_at) to the daily rollup."""
    await _DAILY.execute(session, rows)


async def add_types(session: AsyncSession, rows: Sequence[tuple[str, dt.date, str, float]]) -> None:
    await _TYPES.execute(session, rows)


async def add_features(session: AsyncSession, rows: Sequence[tuple[str, dt.date, str, float]]) -> None:
    await _FEATURES.execute(session, rows)


async def daily_rows(session: AsyncSession, account_id: str, start: dt.date, end: dt.date) -> list[UsageDaily]:
    rows = await session.execute(select(UsageDaily).where(
        UsageDaily.account_id == account_id, UsageDaily.day >= start, UsageDaily.day <= end,
    ).order_by(UsageDaily.day))
    return list(rows.scalars().all())


async def breakdown(session: AsyncSession, table: Table, key: str, account_id: str, start: dt.date,
                    end: dt.date) -> dict[dt.date, dict[str, float]]:
    rows = await session.execute(select(table.c.day, table.c[key], table.c.events).where(
        table.c.account_id == account_id, table.c.day >= start, table.c.day <= end))
    out: dict[dt.date, dict[str, float]] = {}
    for day, name, events in rows.all():
        out.setdefault(day, {})[name] = events
    return out


def _period(table: Table, start: dt.date, end: dt.date, account_id: str | None) -> Any:
    cond = and_(table.c.day >= start, table.c.day <= end)
    return and_(cond, table.c.account_id == account_id) if account_id else cond


async def accounts_in_period(session: AsyncSession, start: dt.date, end: dt.date,
                             account_id: str | None) -> set[str]:
    raw = select(RAW.c.account_id).where(_period(RAW, start, end, account_id)).distinct()
    rolled = select(DAILY.c.account_id).where(_period(DAILY, start, end, account_id)).distinct()
    found = set((await session.execute(raw)).scalars().all())
    return found | set((await session.execute(rolled)).scalars().all())


async def rebuild(session: AsyncSession, start: dt.date, end: dt.date, account_id: str | None) -> dict[str, int]:
    """Replace the rollups of the period by aggregates of the raw events (one statement per table)."""
    for table in (DAILY, TYPES, FEATURES, USERS):
        await session.execute(delete(table).where(_period(table, start, end, account_id)))
    where = _period(RAW, start, end, account_id)
    await session.execute(USERS.insert().from_select(
        ["account_id", "day", "user_id"],
        select(RAW.c.account_id, RAW.c.day, RAW.c.user_id).where(where).distinct()))
    await session.execute(DAILY.insert().from_select(
        ["account_id", "day", "events", "event_count", "active_users", "last_at"],
        select(RAW.c.account_id, RAW.c.day, func.sum(RAW.c.quantity), func.count(),
               func.count(distinct(RAW.c.user_id)), func.max(RAW.c.occurred_at))
        .where(where).group_by(RAW.c.account_id, RAW.c.day)))
    await session.execute(TYPES.insert().from_select(
        ["account_id", "day", "type", "events"],
        select(RAW.c.account_id, RAW.c.day, RAW.c.type, func.sum(RAW.c.quantity)).where(where)
        .group_by(RAW.c.account_id, RAW.c.day, RAW.c.type)))
    await session.execute(FEATURES.insert().from_select(
        ["account_id", "day", "feature", "events"],
        select(RAW.c.account_id, RAW.c.day, RAW.c.feature, func.sum(RAW.c.quantity))
        .where(where, RAW.c.feature.is_not(None)).group_by(RAW.c.account_id, RAW.c.day, RAW.c.feature)))
    raw_count = (await session.execute(select(func.count()).select_from(RAW).where(where))).scalar_one()
    days = (await session.execute(select(func.count()).select_from(DAILY)
                                  .where(_period(DAILY, start, end, account_id)))).scalar_one()
    return {"raw_events": int(raw_count), "rollup_days": int(days)}


async def active_users(session: AsyncSession, account_ids: Sequence[str], start: dt.date,
                       end: dt.date) -> dict[str, int]:
    """Distinct users per account active on any day in [start, end]."""
    if not account_ids:
        return {}
    rows = await session.execute(
        select(USERS.c.account_id, func.count(distinct(USERS.c.user_id)))
        .where(USERS.c.account_id.in_(list(account_ids)), USERS.c.day >= start, USERS.c.day <= end)
        .group_by(USERS.c.account_id))
    return {a: int(n) for a, n in rows.all()}


async def recent_days(session: AsyncSession, account_ids: Sequence[str], since: dt.date
                      ) -> list[tuple[str, dt.date, float]]:
    """(account, day, events) of the accounts from ``since`` on."""
    rows = await session.execute(select(DAILY.c.account_id, DAILY.c.day, DAILY.c.events).where(
        DAILY.c.account_id.in_(list(account_ids)), DAILY.c.day >= since))
    return [(a, d, float(e)) for a, d, e in rows.all()]


async def last_usage(session: AsyncSession, account_ids: Sequence[str]) -> dict[str, dt.datetime]:
    """Time of the latest usage event per account (accounts without usage are absent)."""
    latest = (select(DAILY.c.account_id, func.max(DAILY.c.day).label("day"))
              .where(DAILY.c.account_id.in_(list(account_ids))).group_by(DAILY.c.account_id).subquery())
    rows = await session.execute(select(DAILY.c.account_id, DAILY.c.last_at).join(
        latest, and_(DAILY.c.account_id == latest.c.account_id, DAILY.c.day == latest.c.day)))
    return {a: t for a, t in rows.all()}
