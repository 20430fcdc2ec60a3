"""Usage ingestion (the batch handler of the usage consumer), reads of rollups, and recompute."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.db import lock_rollups
from services.metrics.health import repository as health_repo
from services.metrics.usage import repository as repo
from services.metrics.usage.envelope import UsageEnvelope
from services.metrics.usage.schemas import UsageDay
from shared.db import utcnow


async def apply_usage_batch(session: AsyncSession, events: Sequence[UsageEnvelope]) -> None:
    """Count a batch of usage events into the rollups, in the caller's (single) transaction.

    The raw insert decides what is new (its primary key is ``(source, id)``); only those rows
    are aggregated, in memory, and added to the rollups with one statement per table.
    """
    if not events:
        return
    now = utcnow()
    rows: dict[tuple[str, str], tuple[Any, ...]] = {}
    for ev in events:
        key = (ev.source, ev.id)
        if key not in rows:
            at = ev.time.astimezone(dt.UTC)
            data = ev.data
            rows[key] = (ev.source, ev.id, ev.subject, ev.type, data.user_id, data.feature, data.quantity,
                         at, at.date(), now)
    await lock_rollups(session, exclusive=False)
    inserted = await repo.insert_raw(session, [rows[k] for k in sorted(rows)])
    if not inserted:
        return
    daily: dict[tuple[str, dt.date], list[Any]] = {}
    types: dict[tuple[str, dt.date, str], float] = defaultdict(float)
    features: dict[tuple[str, dt.date, str], float] = defaultdict(float)
    users: set[tuple[str, dt.date, str]] = set()
    for k in inserted:
        _, _, account, etype, user, feature, quantity, at, day, _ = rows[k]
        agg = daily.get((account, day))
        if agg is None:
            daily[(account, day)] = [quantity, 1, at]
        else:
            agg[0] += quantity
            agg[1] += 1
            if at > agg[2]:
                agg[2] = at
        types[(account, day, etype)] += quantity
        if feature is not None:
            features[(account, day, feature)] += quantity
        users.add((account, day, user))
    # Rows go in key order: batches applied concurrently (other partitions, other processes) then
    # take their row locks in the same order and cannot deadlock on PostgreSQL.
    new_users = Counter(await repo.insert_users(session, sorted(users)))
    await repo.add_daily(session, [(a, d, q, n, new_users.get((a, d), 0), last)
                                   for (a, d), (q, n, last) in sorted(daily.items())])
    await repo.add_types(session, [(a, d, t, q) for (a, d, t), q in sorted(types.items())])
    await repo.add_features(session, [(a, d, f, q) for (a, d, f), q in sorted(features.items())])
    await health_repo.mark_dirty(session, {a for a, _ in daily})


async def usage_between(session: AsyncSession, account_id: str, start: dt.date, end: dt.date) -> list[UsageDay]:
    days = await repo.daily_rows(session, account_id, start, end)
    by_type = await repo.breakdown(session, repo.TYPES, "type", account_id, start, end)
    by_feature = await repo.breakdown(session, repo.FEATURES, "feature", account_id, start, end)
    return [UsageDay(date=d.day, events=round(d.events, 6), event_count=d.event_count,
                     active_users=d.active_users,
                     by_type={k: round(v, 6) for k, v in sorted(by_type.get(d.day, {}).items())},
                     features={k: round(v, 6) for k, v in sorted(by_feature.get(d.day, {}).items())})
            for d in days]


async def rebuild_rollups(session: AsyncSession, start: dt.date, end: dt.date,
                          account_id: str | None) -> tuple[dict[str, int], set[str]]:
    """Rebuild the period's rollups from raw events; returns counts and the accounts touched."""
    await lock_rollups(session, exclusive=True)
    accounts = await repo.accounts_in_period(session, start, end, account_id)
    counts = await repo.rebuild(session, start, end, account_id)
    return counts, accounts
