"""Usage ingestion (the batch handler of the usage consumer), reads of rollups, and recompute."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.db import lock_rollups
from services.metrics.health import repository as health_repo
from services.metrics.models import ID
from services.metrics.usage import repository as repo
from services.metrics.usage.schemas import UsageDay
from shared.db import utcnow
from shared.events.consumer import PermanentError
from shared.events.envelope import CloudEvent


def raw_row(event: CloudEvent, received_at: dt.datetime) -> dict[str, Any]:
    data = event.data
    user_id = data.get("user_id")
    feature = data.get("feature")
    if not isinstance(user_id, str) or not user_id or len(user_id) > ID:
        raise PermanentError(f"event {event.id}: data.user_id must be a string of 1-{ID} characters")
    if feature is not None and (not isinstance(feature, str) or not feature or len(feature) > ID):
        raise PermanentError(f"event {event.id}: data.feature must be a string of 1-{ID} characters")
    at = event.time.astimezone(dt.UTC)
    return {"source": event.source, "event_id": event.id, "account_id": event.subject, "type": event.type,
            "user_id": user_id, "feature": feature, "quantity": float(data.get("quantity", 1)),
            "occurred_at": at, "day": at.date(), "received_at": received_at}


async def apply_usage_batch(session: AsyncSession, events: Sequence[CloudEvent]) -> None:
    """Count a batch of usage events into the rollups, in the caller's (single) transaction.

    The raw insert decides what is new (its primary key is ``(source, id)``); only those rows
    are aggregated, in memory, and added to the rollups with one upsert per table.
    """
    if not events:
        return
    now = utcnow()
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for ev in events:
        rows.setdefault((ev.source, ev.id), raw_row(ev, now))
    await lock_rollups(session, exclusive=False)
    inserted = await repo.insert_raw(session, list(rows.values()))
    if not inserted:
        return
    new = [rows[k] for k in inserted]
    daily: dict[tuple[str, dt.date], list[Any]] = defaultdict(lambda: [0.0, 0, None])
    types: dict[tuple[str, dt.date, str], float] = defaultdict(float)
    features: dict[tuple[str, dt.date, str], float] = defaultdict(float)
    users: set[tuple[str, dt.date, str]] = set()
    for r in new:
        key = (r["account_id"], r["day"])
        agg = daily[key]
        agg[0] += r["quantity"]
        agg[1] += 1
        if agg[2] is None or r["occurred_at"] > agg[2]:
            agg[2] = r["occurred_at"]
        types[(*key, r["type"])] += r["quantity"]
        if r["feature"] is not None:
            features[(*key, r["feature"])] += r["quantity"]
        users.add((*key, r["user_id"]))
    new_users = Counter(await repo.insert_users(
        session, [{"account_id": a, "day": d, "user_id": u} for a, d, u in users]))
    await repo.add_daily(session, [
        {"account_id": a, "day": d, "events": q, "event_count": n, "active_users": new_users.get((a, d), 0),
         "last_at": last} for (a, d), (q, n, last) in daily.items()
    ])
    await repo.add_counts(session, repo.TYPES, "type", [
        {"account_id": a, "day": d, "type": t, "events": q} for (a, d, t), q in types.items()])
    await repo.add_counts(session, repo.FEATURES, "feature", [
        {"account_id": a, "day": d, "feature": f, "events": q} for (a, d, f), q in features.items()])
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
