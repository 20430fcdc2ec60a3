"""All queries on raw usage (keys and segments) and their daily rollups.

The incremental path runs once per consumed batch, at driver level (no SQLAlchemy per row): on SQLite
as one synchronous function on aiosqlite's own thread (the stdlib ``sqlite3`` connection: multi-row
``INSERT … RETURNING`` for what must say what is new, ``executemany`` for the rest); on PostgreSQL as
asyncpg statements over ``unnest`` arrays. Both run in the session's transaction. Recompute replays the
segments (see ``segments.py``) and rewrites the period's rollups.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from itertools import chain
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, and_, delete, distinct, func, select, update
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.metrics.bulk import BulkInsert
from services.metrics.models import (
    UsageDaily,
    UsageDailyFeature,
    UsageDailyType,
    UsageDailyUser,
    UsageEventKey,
    UsageSegment,
)
from services.metrics.usage import segments as seg
from shared.db import utcnow

if TYPE_CHECKING:
    from services.metrics.usage.service import Plan

KEYS: Table = UsageEventKey.__table__  # type: ignore[assignment]
SEGMENTS: Table = UsageSegment.__table__  # type: ignore[assignment]
DAILY: Table = UsageDaily.__table__  # type: ignore[assignment]
TYPES: Table = UsageDailyType.__table__  # type: ignore[assignment]
FEATURES: Table = UsageDailyFeature.__table__  # type: ignore[assignment]
USERS: Table = UsageDailyUser.__table__  # type: ignore[assignment]

_ADD_DAILY = ("ON CONFLICT (account_id, day) DO UPDATE SET events = usage_daily.events + excluded.events, "
              "event_count = usage_daily.event_count + excluded.event_count, "
              "active_users = usage_daily.active_users + excluded.active_users, "
              "last_at = CASE WHEN excluded.last_at > usage_daily.last_at THEN excluded.last_at "
              "ELSE usage_daily.last_at END")
_ADD_TYPES = "ON CONFLICT (account_id, day, type) DO UPDATE SET events = usage_daily_types.events + excluded.events"
_ADD_FEATURES = ("ON CONFLICT (account_id, day, feature) DO UPDATE SET "
                 "events = usage_daily_features.events + excluded.events")

# Only constants are concatenated into these statements; every value is a bound parameter.
_SQLITE_DAILY = ("INSERT INTO usage_daily (account_id, day, events, event_count, active_users, last_at) "
                 "VALUES (?,?,?,?,?,?) " + _ADD_DAILY)
_SQLITE_TYPES = "INSERT INTO usage_daily_types (account_id, day, type, events) VALUES (?,?,?,?) " + _ADD_TYPES  # noqa: S608
_SQLITE_FEATURES = ("INSERT INTO usage_daily_features (account_id, day, feature, events) "
                    "VALUES (?,?,?,?) " + _ADD_FEATURES)

# SQLite: rows per multi-row INSERT … RETURNING (a fixed size, so its prepared statement is reused).
SQLITE_CHUNK = 5000


def _values(head: str, width: int, rows: int, tail: str) -> str:
    one = "(" + ",".join("?" * width) + ")"
    return f"{head} VALUES {','.join([one] * rows)} {tail}"


def _bind(table: Table, column: str, dialect: Dialect) -> Callable[[Any], Any]:
    """SQLAlchemy's own conversion of a column's values on this dialect (rows read back through the ORM)."""
    process = table.c[column].type.dialect_impl(dialect).bind_processor(dialect)
    return process if process is not None else (lambda v: v)


def _insert_new(db: sqlite3.Connection, cur: sqlite3.Cursor, head: str, width: int, items: Sequence[Any],
                params: Callable[[int, Any], list[Any]], returning: str) -> list[tuple[Any, ...]] | None:
    """Insert ``items`` (ON CONFLICT DO NOTHING); None when every one was new, else the ``returning``
    columns of those that were.

    Usually all are new, and the row count says so: a RETURNING row costs a trip out of SQLite (and a
    wait for the GIL, which the event loop's thread holds while it decodes the next batch). When some
    were not, the inserts are undone to a savepoint and done again with RETURNING.
    """
    db.execute("SAVEPOINT usage_new")
    before = db.total_changes
    for i in range(0, len(items), SQLITE_CHUNK):
        chunk = items[i:i + SQLITE_CHUNK]
        cur.execute(_values(head, width, len(chunk), "ON CONFLICT DO NOTHING"), params(i, chunk))
    if db.total_changes - before == len(items):
        db.execute("RELEASE usage_new")
        return None
    db.execute("ROLLBACK TO usage_new")
    db.execute("RELEASE usage_new")
    found: list[tuple[Any, ...]] = []
    for i in range(0, len(items), SQLITE_CHUNK):
        chunk = items[i:i + SQLITE_CHUNK]
        found.extend(cur.execute(_values(head, width, len(chunk), f"ON CONFLICT DO NOTHING RETURNING {returning}"),
                                 params(i, chunk)))
    return found


def _sqlite_batch(db: sqlite3.Connection, plan: Plan, users: list[tuple[str, int, str]],
                  as_date: Callable[[Any], Any], as_time: Callable[[Any], Any], now: Any) -> list[int]:
    """Every write of a batch, on the sqlite3 connection's own thread, inside the session's transaction;
    ``users``: the plan's user candidates, should every event be new."""
    if not db.in_transaction:
        raise RuntimeError("the usage batch must run inside the session's transaction")
    days: dict[int, Any] = {}
    numbers: dict[Any, int] = {}

    def day(d: int) -> Any:
        v = days.get(d)
        if v is None:
            v = days[d] = as_date(seg.date_of(d))
            numbers[v] = d
        return v

    cur = db.cursor()
    keys, key_days = plan.keys(ordered=False)
    for d in set(key_days):
        day(d)

    def key_rows(i: int, chunk: list[str]) -> list[Any]:
        params: list[Any] = [None] * (2 * len(chunk))
        params[0::2] = chunk
        params[1::2] = map(days.__getitem__, key_days[i:i + len(chunk)])
        return params

    new = _insert_new(db, cur, "INSERT INTO usage_event_keys (key, day)", 2, keys, key_rows, "key")
    if new is not None and not new:
        return []
    if new is not None:  # some were not new: only the others are written, and their users found again
        plan.take({k for (k,) in new})
        users = plan.user_candidates()

    def user_rows(_: int, chunk: list[tuple[str, int, str]]) -> list[Any]:
        return list(chain.from_iterable((a, day(d), u) for a, d, u in chunk))

    found = _insert_new(db, cur, "INSERT INTO usage_daily_users (account_id, day, user_id)", 3, users, user_rows,
                        "account_id, day")
    new_users = ([(a, d) for a, d, _ in users] if found is None else [(a, numbers[d]) for a, d in found])
    types, features = plan.breakdowns()
    cur.executemany(_SQLITE_DAILY, [(a, day(d), q, n, u, as_time(seg.time_of(t)))
                                    for a, d, q, n, u, t in plan.daily(new_users)])
    cur.executemany(_SQLITE_TYPES, [(a, day(d), t, q) for a, d, t, q in types])
    cur.executemany(_SQLITE_FEATURES, [(a, day(d), f, q) for a, d, f, q in features])
    ids: list[int] = []
    for d, n, packed in plan.segments():  # after the rollups: see segments.py on the order of additions
        cur.execute("INSERT INTO usage_segments (day, event_count, data, created_at) VALUES (?,?,?,?)",
                    (day(d), n, seg.compress(packed), now))
        ids.append(int(cur.lastrowid or 0))
    cur.close()
    return ids


async def _driver(session: AsyncSession) -> tuple[AsyncConnection, Any]:
    """The session's connection (its transaction begun) and the driver's own connection under it."""
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    return conn, raw.driver_connection


async def write_sqlite(session: AsyncSession, plan: Plan) -> list[int]:
    """Write a batch on SQLite; returns the ids of the segments written (none: nothing was new)."""
    conn, driver = await _driver(session)
    dialect = conn.dialect
    as_time = _bind(DAILY, "last_at", dialect)
    # aiosqlite runs every call on one thread per connection; this queues the whole batch as one call.
    plan.take(None)  # every event, until the keys say otherwise (a retried transaction may have narrowed it)
    # Read before the call, while the loop's thread holds the GIL anyway; the slow path reads the cache again
    # on the driver's thread, which is safe: it changes only after this transaction commits, on this thread.
    users = plan.user_candidates()
    ids: list[int] = await driver._execute(_sqlite_batch, driver._conn, plan, users, _bind(DAILY, "day", dialect),
                                           as_time, as_time(utcnow()))
    return ids


_PG_KEYS = ("INSERT INTO usage_event_keys (key, day) SELECT * FROM unnest($1::text[], $2::date[]) "
            "ON CONFLICT DO NOTHING RETURNING key")
_PG_USERS = ("INSERT INTO usage_daily_users (account_id, day, user_id) "
             "SELECT * FROM unnest($1::text[], $2::date[], $3::text[]) "
             "ON CONFLICT DO NOTHING RETURNING account_id, day")
_PG_DAILY = ("INSERT INTO usage_daily (account_id, day, events, event_count, active_users, last_at) "  # noqa: S608
             "SELECT * FROM unnest($1::text[], $2::date[], $3::float8[], $4::int[], $5::int[], $6::timestamptz[]) "
             + _ADD_DAILY)
_PG_TYPES = ("INSERT INTO usage_daily_types (account_id, day, type, events) "  # noqa: S608
             "SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::float8[]) " + _ADD_TYPES)
_PG_FEATURES = ("INSERT INTO usage_daily_features (account_id, day, feature, events) "  # noqa: S608
                "SELECT * FROM unnest($1::text[], $2::date[], $3::text[], $4::float8[]) " + _ADD_FEATURES)
_PG_SEGMENTS = ("INSERT INTO usage_segments (day, event_count, data, created_at) "
                "SELECT * FROM unnest($1::date[], $2::int[], $3::bytea[], $4::timestamptz[]) RETURNING id")


def _columns(rows: Sequence[tuple[Any, ...]], width: int) -> list[list[Any]]:
    return [list(c) for c in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


async def write_postgresql(session: AsyncSession, plan: Plan) -> list[int]:
    """Write a batch on PostgreSQL (asyncpg, in the session's transaction); returns the segment ids."""
    _, pg = await _driver(session)
    if not pg.is_in_transaction():
        raise RuntimeError("the usage batch must run inside the session's transaction")
    date = seg.date_of
    # Rows go in key order: batches applied concurrently (other partitions, other processes) then take
    # their locks in the same order and cannot deadlock.
    keys, key_days = plan.keys(ordered=True)
    new = {r[0] for r in await pg.fetch(_PG_KEYS, keys, [date(d) for d in key_days])}
    if not new:
        return []
    plan.take(new)
    users = plan.user_candidates()
    found = await pg.fetch(_PG_USERS, [a for a, _, _ in users], [date(d) for _, d, _ in users],
                           [u for _, _, u in users]) if users else []
    a, d, q, n, u, t = _columns(plan.daily((a, seg.day_number(d)) for a, d in found), 6)
    await pg.execute(_PG_DAILY, a, [date(x) for x in d], q, n, u, [seg.time_of(x) for x in t])
    types, features = plan.breakdowns()
    if types:
        a, d, k, q = _columns(types, 4)
        await pg.execute(_PG_TYPES, a, [date(x) for x in d], k, q)
    if features:
        a, d, k, q = _columns(features, 4)
        await pg.execute(_PG_FEATURES, a, [date(x) for x in d], k, q)
    segments = plan.segments()  # after the rollups: see segments.py on the order of additions
    now = utcnow()
    rows = await pg.fetch(_PG_SEGMENTS, [date(x) for x, _, _ in segments], [x for _, x, _ in segments],
                          [seg.compress(x) for _, _, x in segments], [now] * len(segments))
    return [int(r[0]) for r in rows]


async def set_segment_offsets(session: AsyncSession, ids: Sequence[int], offsets: dict[str, list[int | None]]) -> None:
    """Record the offset range a transaction covered on the segments it wrote."""
    await session.execute(update(SEGMENTS).where(SEGMENTS.c.id.in_(list(ids))).values(offsets=offsets))


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


async def segments_between(session: AsyncSession, start: dt.date, end: dt.date, *,
                           page: int = 200) -> AsyncIterator[tuple[dt.date, bytes]]:
    """(day, data) of the segments of days in [start, end], in id order, a page at a time."""
    after = 0
    while True:
        rows = (await session.execute(
            select(SEGMENTS.c.id, SEGMENTS.c.day, SEGMENTS.c.data)
            .where(SEGMENTS.c.day >= start, SEGMENTS.c.day <= end, SEGMENTS.c.id > after)
            .order_by(SEGMENTS.c.id).limit(page))).all()
        for _, day, data in rows:
            yield day, data
        if len(rows) < page:
            return
        after = rows[-1][0]


async def rollup_accounts(session: AsyncSession, start: dt.date, end: dt.date, account_id: str | None) -> set[str]:
    """Accounts with rollups in the period."""
    rows = await session.execute(select(DAILY.c.account_id).where(_period(DAILY, start, end, account_id)).distinct())
    return set(rows.scalars().all())


_R_USERS = BulkInsert(USERS, ["account_id", "day", "user_id"])
_R_DAILY = BulkInsert(DAILY, ["account_id", "day", "events", "event_count", "active_users", "last_at"])
_R_TYPES = BulkInsert(TYPES, ["account_id", "day", "type", "events"])
_R_FEATURES = BulkInsert(FEATURES, ["account_id", "day", "feature", "events"])


async def replace_rollups(session: AsyncSession, start: dt.date, end: dt.date, account_id: str | None,
                          totals: seg.Totals) -> None:
    """Replace the rollups of the period (of one account, when given) by ``totals``."""
    for table in (DAILY, TYPES, FEATURES, USERS):
        await session.execute(delete(table).where(_period(table, start, end, account_id)))
    date = seg.date_of
    active = totals.active_users()
    await _R_DAILY.execute(session, [(a, date(d), q, n, active[(a, d)], seg.time_of(t))
                                     for (a, d), (q, n, t) in sorted(totals.daily.items())])
    await _R_TYPES.execute(session, [(a, date(d), t, q) for (a, d, t), q in sorted(totals.types.items())])
    await _R_FEATURES.execute(session, [(a, date(d), f, q) for (a, d, f), q in sorted(totals.features.items())])
    await _R_USERS.execute(session, [(a, date(d), u) for a, d, u in sorted(totals.users)])


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
