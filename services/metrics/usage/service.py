"""Usage ingestion (the batch handler of the usage consumer), reads of rollups, and recompute."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
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

    def after_commit(self, session: AsyncSession, users: Iterable[tuple[str, int, str]], today: int) -> None:
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

    Built before the batch's transaction (``add``, a chunk at a time), on the assumption that every
    event is new (the steady state), so the database's turn is only statements. The repository calls
    back between them: ``take`` once the database said which keys are new (only when some were not is
    anything rebuilt), ``daily`` once it said which users are new. A plan can be written again
    (a retried transaction): ``take`` always starts from every event of the plan.

    A plan made in the consumer's worker process travels as ``export()``: the keys, their days and
    what ``complete`` derived, without the rows, which are in the packed segments should ``take``
    need them.
    """

    def __init__(self, today: int, users: ActiveUsers | None) -> None:
        self.today = today
        self.cache = users
        self.rows: dict[str, seg.Row] = {}  # by key, in arrival order
        self.days: list[int] = []  # parallel to ``rows``
        self._all = self.selected = _Selection({}, seg.Aggregate())
        self.candidates: list[tuple[str, int, str]] = []
        self._keys: list[str] | None = None  # an adopted plan's (it has no ``rows``)

    def export(self) -> Exported:
        """After ``complete``: what writing the plan needs, for ``Plan.adopted`` in another process."""
        a = self._all
        return (self.today, list(self.rows), self.days, a.users(), [(x, d, c[:3]) for x, d, c in a.cells()],
                a.breakdowns(), a.packed(), a.accounts())

    @classmethod
    def adopted(cls, exported: Exported, users: ActiveUsers | None) -> Plan:
        """The plan another process made and exported, with this process's cache of active users."""
        today, keys, days, active, cells, breakdowns, packed, accounts = exported
        plan = cls(today, users)
        plan._keys, plan.days = keys, days
        plan._all = plan.selected = _Selection.made(active, cells, breakdowns, packed, accounts)
        return plan

    def add(self, events: Sequence[UsageEnvelope]) -> None:
        """Take in the next events of the batch (a repeated key is dropped)."""
        rows, days, by_day, agg = self.rows, self.days, self._all.rows_by_day(), self._all.agg
        epoch, us_unit, day_us, sep = seg.EPOCH, seg.US, seg.DAY_US, seg.KEY_SEP
        last_day, group, cells = -1, [], {}
        # ``Aggregate.add`` inlined: the same additions in the same order, so recompute, which replays
        # the segments through ``Aggregate.add``, gets the same floats.
        for ev in events:
            source, event_id = ev.source, ev.id
            key = f"{source}{sep}{event_id}"
            if key in rows:
                continue
            us = (ev.time - epoch) // us_unit
            data = ev.data
            a, kind, user, q, f = ev.subject, ev.type, data.user_id, data.quantity, data.feature
            rows[key] = row = (source, event_id, a, kind, user, f, q, us)
            day = us // day_us
            days.append(day)
            if day != last_day:
                last_day = day
                group = by_day.setdefault(day, [])
                cells = agg.days.setdefault(day, {})
            group.append(row)
            cell = cells.get(a)
            if cell is None:
                cells[a] = [q, 1, us, {kind: q}, {} if f is None else {f: q}, {user}]
                continue
            cell[0] += q
            cell[1] += 1
            if us > cell[2]:
                cell[2] = us
            sums = cell[3]
            s = sums.get(kind)
            sums[kind] = q if s is None else s + q
            if f is not None:
                sums = cell[4]
                s = sums.get(f)
                sums[f] = q if s is None else s + q
            cell[5].add(user)
        self._all.clear()

    def complete(self) -> None:
        """Everything left that needs no database, done before the transaction: the users, the type and
        feature rows and the packed segments, for the case where every event is new."""
        self._all.complete()

    def keys(self, *, ordered: bool) -> tuple[list[str], list[int]]:
        """Keys and day numbers of every distinct event; in key order when ``ordered`` (concurrent writers)."""
        keys = list(self.rows) if self._keys is None else self._keys
        if not ordered:
            return keys, self.days
        pairs = sorted(zip(keys, self.days, strict=True))
        return [k for k, _ in pairs], [d for _, d in pairs]

    def take(self, new: set[str] | None) -> None:
        """Write only the events whose keys were new (``None``: all were; a redelivery or a replay had
        some already)."""
        if new is None or len(new) == len(self.days):
            self.selected = self._all  # all new: the plan as built
            return
        by_day: dict[int, list[seg.Row]] = {}
        for day, rows in self._all.rows_by_day().items():  # in arrival order within a day, as segments keep them
            kept = [r for r in rows if seg.key_of(r[seg.SOURCE], r[seg.ID]) in new]
            if kept:
                by_day[day] = kept
        agg = seg.Aggregate()
        for day, group in by_day.items():
            agg.add(day, group)
        self.selected = _Selection(by_day, agg)

    @property
    def users(self) -> set[tuple[str, int, str]]:
        """(account, day, user) of the events to write."""
        return self.selected.users()

    def user_candidates(self) -> list[tuple[str, int, str]]:
        """The (account, day, user) of the events to write that may be new, in key order."""
        users = self.users
        found = sorted(users) if self.cache is None else self.cache.unknown(users, self.today)
        self.candidates = found
        return found

    def daily(self, new_users: Iterable[tuple[str, int]]) -> list[tuple[Any, ...]]:
        """``usage_daily`` additions in key order; ``new_users``: (account, day) once per new user."""
        counts: dict[tuple[str, int], int] = {}
        for k in new_users:
            counts[k] = counts.get(k, 0) + 1
        return [(a, d, q, n, counts.get((a, d), 0), t) for a, d, (q, n, t, *_) in self.selected.cells()]

    def breakdowns(self) -> tuple[list[tuple[str, int, str, float]], list[tuple[str, int, str, float]]]:
        """(type, feature) additions in key order."""
        return self.selected.breakdowns()

    def segments(self) -> list[tuple[int, int, bytes]]:
        """(day, event count, packed rows) per day with events to write (``seg.compress`` the rows)."""
        return self.selected.packed()

    @property
    def accounts(self) -> set[str]:
        return self.selected.accounts()


Breakdowns = tuple[list[tuple[str, int, str, float]], list[tuple[str, int, str, float]]]
# (today, keys, their days, users, (account, day, [events, count, last us]) cells, breakdowns, segments, accounts)
Exported = tuple[int, list[str], list[int], set[tuple[str, int, str]], list[tuple[str, int, list[Any]]], Breakdowns,
                 list[tuple[int, int, bytes]], set[str]]


class _Selection:
    """The rows and aggregate of the events a plan writes, and what is derived from them (once)."""

    def __init__(self, by_day: dict[int, list[seg.Row]] | None, agg: seg.Aggregate) -> None:
        self.by_day, self.agg = by_day, agg  # by_day None: an adopted plan's, read from the segments on demand
        self.clear()

    @classmethod
    def made(cls, users: set[tuple[str, int, str]], cells: list[tuple[str, int, list[Any]]], breakdowns: Breakdowns,
             packed: list[tuple[int, int, bytes]], accounts: set[str]) -> _Selection:
        """A selection derived elsewhere (no rows, no aggregate: only what writing it reads)."""
        made = cls(None, seg.Aggregate())
        made._users, made._cells, made._breakdowns, made._packed = users, cells, breakdowns, packed
        made._accounts = accounts
        return made

    def clear(self) -> None:
        self._users: set[tuple[str, int, str]] | None = None
        self._cells: list[tuple[str, int, list[Any]]] | None = None
        self._breakdowns: Breakdowns | None = None
        self._packed: list[tuple[int, int, bytes]] | None = None
        self._accounts: set[str] | None = None

    def rows_by_day(self) -> dict[int, list[seg.Row]]:
        if self.by_day is None:
            self.by_day = {day: list(seg.unpack(packed)) for day, _, packed in self.packed()}
        return self.by_day

    def accounts(self) -> set[str]:
        if self._accounts is None:
            self._accounts = self.agg.accounts()
        return self._accounts

    def complete(self) -> None:
        self.users()
        self.breakdowns()
        self.packed()

    def users(self) -> set[tuple[str, int, str]]:
        if self._users is None:
            self._users = self.agg.users()
        return self._users

    def cells(self) -> list[tuple[str, int, list[Any]]]:
        if self._cells is None:
            self._cells = self.agg.cells()
        return self._cells

    def breakdowns(self) -> Breakdowns:
        if self._breakdowns is None:
            types: list[tuple[str, int, str, float]] = []
            features: list[tuple[str, int, str, float]] = []
            for a, d, (_, _, _, by_type, by_feature, _) in self.cells():
                types.extend((a, d, k, v) for k, v in sorted(by_type.items()))
                features.extend((a, d, k, v) for k, v in sorted(by_feature.items()))
            self._breakdowns = types, features
        return self._breakdowns

    def packed(self) -> list[tuple[int, int, bytes]]:
        if self._packed is None:
            self._packed = [(day, len(rows), seg.pack(rows)) for day, rows in sorted(self.rows_by_day().items())]
        return self._packed


async def apply_usage_batch(session: AsyncSession, events: Sequence[UsageEnvelope],
                            users: ActiveUsers | None = None) -> None:
    """Count a batch of usage events into the rollups, in the caller's (single) transaction."""
    plan = Plan(seg.day_number(utcnow().date()), users)
    plan.add(events)
    await write_plan(session, plan)


async def write_plan(session: AsyncSession, plan: Plan) -> None:
    """Write a planned batch in the caller's (single) transaction.

    Inserting the events' keys decides what is new; only those events are kept (one segment per day)
    and added to the rollups with one statement per table, at driver level.
    """
    if not plan.days:
        return
    if is_sqlite(session):
        ids = await repo.write_sqlite(session, plan)
    else:
        await lock_rollups(session, exclusive=False)
        ids = await repo.write_postgresql(session, plan)
    if not ids:
        return
    session.info.setdefault(SEGMENT_IDS, []).extend(ids)
    await health_repo.mark_dirty(session, plan.accounts)
    if plan.cache is not None:
        plan.cache.after_commit(session, plan.candidates, plan.today)  # the others are known already


def worker_plan() -> Plan:
    """A plan made in the consumer's worker process (which has no cache of active users)."""
    return Plan(seg.day_number(utcnow().date()), None)


class UsageHandler:
    """The usage consumer's batch handler (a ``RemotePlanner``: its plans can be made in the consumer's
    worker process), with its cache of active users (one per service instance)."""

    def __init__(self, users: ActiveUsers | None = None) -> None:
        self.users = users if users is not None else ActiveUsers()

    def plan(self) -> Plan:
        return Plan(seg.day_number(utcnow().date()), self.users)

    def remote(self) -> Callable[[], Plan]:
        return worker_plan

    def adopt(self, exported: Exported) -> Plan:
        return Plan.adopted(exported, self.users)

    async def apply(self, session: AsyncSession, plan: Plan) -> None:
        await write_plan(session, plan)

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
    cutoff = utcnow() - s.dedup_window  # keys are kept by their event's day, not when they were written
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
