"""Usage ingestion (the batch handler of the usage consumer), reads of rollups, and recompute."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiokafka import TopicPartition
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.db import lock_rollups
from services.metrics.health import repository as health_repo
from services.metrics.usage import repository as repo
from services.metrics.usage import segments as seg
from services.metrics.usage.envelope import UsageEnvelope
from services.metrics.usage.schemas import UsageDay
from shared.app import ServiceContext
from shared.app.retention import purge_older_than
from shared.db import is_sqlite, utcnow
from shared.events.consumer import DatabaseOffsets

# session.info key: the ids of the segments a transaction wrote (its offset store fills in their offsets).
SEGMENT_IDS = "usage_segment_ids"


class ActiveUsers:
    """Committed (account, day, user) of the open days (today and yesterday, UTC), in memory.

    A user found here already has its ``usage_daily_users`` row, so a batch skips it; anyone else goes
    through ``INSERT … ON CONFLICT DO NOTHING RETURNING``, which keeps counts exact when several
    processes write the same account. Entries are added only after the transaction that wrote them
    committed, and only ever describe committed rows: correctness never depends on the cache (it may be
    empty, partial, or shared by consumers that lost their partitions). Late days go to the database.
    """

    def __init__(self, limit: int = 1_000_000) -> None:
        self.limit = limit
        self.days: dict[int, set[tuple[str, str]]] = {}
        self.size = 0

    def unknown(self, users: Iterable[tuple[str, int, str]], today: int) -> list[tuple[str, int, str]]:
        """The users of ``users`` not known to be stored, in key order."""
        days, first = self.days, today - 1
        empty: set[tuple[str, str]] = set()
        return sorted(u for u in users if u[1] < first or (u[0], u[2]) not in days.get(u[1], empty))

    def committed(self, users: Iterable[tuple[str, int, str]], today: int) -> None:
        first = today - 1
        for day in [d for d in self.days if d < first]:  # the day closed
            self.size -= len(self.days.pop(day))
        for a, d, u in users:
            if d >= first:
                known = self.days.setdefault(d, set())
                if (a, u) not in known:
                    known.add((a, u))
                    self.size += 1
        if self.size > self.limit:
            self.clear()

    def clear(self) -> None:
        self.days.clear()
        self.size = 0

    def after_commit(self, session: AsyncSession, users: set[tuple[str, int, str]], today: int) -> None:
        """Remember ``users`` once (and only if) the session's transaction commits."""
        state = {"open": True}

        def commit(_s: Any) -> None:
            if state["open"]:
                state["open"] = False
                self.committed(users, today)

        def rollback(_s: Any) -> None:
            state["open"] = False

        event.listen(session.sync_session, "after_commit", commit, once=True)
        event.listen(session.sync_session, "after_rollback", rollback, once=True)


class Plan:
    """One batch through the hot path, backend-neutral: keys to try, then what the new events add.

    The repository runs the statements (all on the driver's own thread on SQLite) and calls back into
    the plan between them: ``take`` once the database said which keys are new, ``rollups`` once it said
    which users are new.
    """

    def __init__(self, events: Sequence[UsageEnvelope], today: int, users: ActiveUsers | None) -> None:
        self.today = today
        self.cache = users
        rows: dict[str, tuple[int, seg.Row]] = {}
        epoch, us_unit, day_us = seg.EPOCH, seg.US, seg.DAY_US
        for ev in events:
            key = ev.source + seg.KEY_SEP + ev.id
            if key in rows:
                continue
            us = (ev.time - epoch) // us_unit
            data = ev.data
            rows[key] = (us // day_us, [ev.source, ev.id, ev.subject, ev.type, data.user_id, data.feature,
                                        data.quantity, us])
        self.rows = rows  # in arrival order
        self.agg = seg.Aggregate()
        self.by_day: dict[int, list[seg.Row]] = {}

    def keys(self, *, ordered: bool) -> list[tuple[str, int]]:
        """(key, day) of every distinct event; in key order when ``ordered`` (concurrent writers)."""
        items = [(k, d) for k, (d, _) in self.rows.items()]
        return sorted(items) if ordered else items

    def take(self, new: set[str]) -> None:
        """Keep the events whose keys were new, grouped by day in arrival order, and aggregate them."""
        by_day = self.by_day
        for key, (day, row) in self.rows.items():
            if key in new:
                rows = by_day.get(day)
                if rows is None:
                    by_day[day] = [row]
                else:
                    rows.append(row)
        for day, rows in by_day.items():
            self.agg.add(day, rows)

    def user_candidates(self) -> list[tuple[str, int, str]]:
        """The batch's (account, day, user) that may be new, in key order."""
        if self.cache is None:
            return sorted(self.agg.users)
        return self.cache.unknown(self.agg.users, self.today)

    def rollups(self, new_users: Iterable[tuple[str, int]]) -> tuple[list[tuple[Any, ...]], ...]:
        """(daily, types, features) rows in key order; ``new_users``: (account, day) once per new user."""
        counts: dict[tuple[str, int], int] = {}
        for k in new_users:
            counts[k] = counts.get(k, 0) + 1
        daily = [(a, d, q, n, counts.get((a, d), 0), t) for (a, d), (q, n, t) in sorted(self.agg.daily.items())]
        types = [(a, d, t, q) for (a, d, t), q in sorted(self.agg.types.items())]
        features = [(a, d, f, q) for (a, d, f), q in sorted(self.agg.features.items())]
        return daily, types, features

    def segments(self) -> list[tuple[int, int, bytes]]:
        """(day, event count, data) per day with new events."""
        return [(day, len(rows), seg.encode(rows)) for day, rows in sorted(self.by_day.items())]

    @property
    def accounts(self) -> set[str]:
        return {a for a, _ in self.agg.daily}


async def apply_usage_batch(session: AsyncSession, events: Sequence[UsageEnvelope],
                            users: ActiveUsers | None = None) -> None:
    """Count a batch of usage events into the rollups, in the caller's (single) transaction.

    Inserting the events' keys decides what is new; only those events are kept (one segment per day)
    and aggregated, in memory, and added to the rollups with one statement per table, at driver level.
    """
    if not events:
        return
    plan = Plan(events, seg.day_number(utcnow().date()), users)
    if is_sqlite(session):
        ids = await repo.write_sqlite(session, plan)
    else:
        await lock_rollups(session, exclusive=False)
        ids = await repo.write_postgresql(session, plan)
    if not ids:
        return
    session.info.setdefault(SEGMENT_IDS, []).extend(ids)
    await health_repo.mark_dirty(session, plan.accounts)
    if users is not None:
        users.after_commit(session, plan.agg.users, plan.today)


class UsageHandler:
    """The usage consumer's batch handler, with its cache of active users (one per service instance)."""

    def __init__(self, users: ActiveUsers | None = None) -> None:
        self.users = users if users is not None else ActiveUsers()

    async def __call__(self, session: AsyncSession, events: Sequence[UsageEnvelope]) -> None:
        await apply_usage_batch(session, events, self.users)


class SegmentOffsets(DatabaseOffsets):
    """The usage consumer's offsets in the database; each transaction also records on the segments it
    wrote the offset range it covered, ``{"topic:partition": [first, last]}``.

    ``first`` is where this member's previous transaction on the partition ended (or the stored offset
    it was assigned at); null when neither is known (the partition's first transaction ever).
    """

    async def in_transaction(self, session: AsyncSession, offsets: Mapping[TopicPartition, int]) -> None:
        ids = session.info.get(SEGMENT_IDS)
        if ids and offsets:
            covered = {f"{tp.topic}:{tp.partition}": [self.stored.get(tp), o - 1]
                       for tp, o in sorted(offsets.items())}
            await repo.set_segment_offsets(session, ids, covered)
        await super().in_transaction(session, offsets)


async def purge_usage_keys(ctx: ServiceContext[Any]) -> int:
    """Delete the dedup keys of days older than ``DEDUP_RETENTION`` (raw segments are kept).

    Exactness holds as for ``processed_events``: a duplicate of such an event is older than
    ``MAX_EVENT_AGE`` (which ``DEDUP_RETENTION`` is never below), so it is refused before dedup.
    """
    s = ctx.settings
    cutoff = utcnow() - s.dedup_keys_kept
    n = await purge_older_than(ctx.session_factory, repo.KEYS, repo.KEYS.c.day,
                               dt.datetime.combine(cutoff.date(), dt.time(), dt.UTC), batch_size=s.retention_batch_size)
    ctx.metrics.retention_purged.labels(table="usage_event_keys").inc(n)
    return n


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
    """Rebuild the period's rollups from the raw segments; returns counts and the accounts touched.

    Segments are replayed in id order, each aggregated as its transaction was, so the result equals
    the incremental rollups exactly (floats included).
    """
    await lock_rollups(session, exclusive=True)
    totals = seg.Totals()
    async for day, data in repo.segments_between(session, start, end):
        part = seg.Aggregate()
        part.add(seg.day_number(day), seg.decode(data), account_id)
        totals.add(part)
    accounts = await repo.rollup_accounts(session, start, end, account_id) | {a for a, _ in totals.daily}
    await repo.replace_rollups(session, start, end, account_id, totals)
    return {"raw_events": totals.events, "rollup_days": len(totals.daily)}, accounts
