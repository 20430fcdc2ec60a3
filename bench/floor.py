"""The database floor: the usage consumer's durable writes done by a bare driver loop.

For each transaction of ``size`` events (10,000 by default, the service's target transaction) it does, in
one transaction, what the service's storage has to do, with everything computed in Python beforehand
(no decoding, no aggregation, no compression inside the clock):

1. the dedup keys: ``INSERT INTO usage_event_keys (key, day) … ON CONFLICT DO NOTHING RETURNING key``
   (``key`` = source + U+001F + id; a WITHOUT ROWID table on SQLite);
2. one compressed segment per (transaction, day): ``usage_segments`` (day, event_count, offsets, data);
3. the active users not yet known (an in-memory set says which): ``usage_daily_users`` ON CONFLICT DO
   NOTHING RETURNING;
4. the rollups, upserted adding: ``usage_daily``, ``usage_daily_types``, ``usage_daily_features``;
5. the partitions' next offsets (``consumer_offsets``) and the accounts to re-score (``health_dirty``).

SQLite runs through the stdlib ``sqlite3`` with the service's PRAGMAs (WAL, ``synchronous=NORMAL``,
``BEGIN IMMEDIATE``), PostgreSQL through ``asyncpg`` (one statement per table over arrays: ``unnest``).
The tables are created here, on a fresh database, from the service's models (the DDL its migrations
produce, as the migration drift tests check), without running the migrations.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.schema import CreateIndex, CreateTable

from bench.cpu import Meter, Usage
from bench.workload import Row
from services.metrics.models import Base

SEP = "\x1f"
GROUP = "bench-floor"
TOPIC = "postsales.usage"
PARTITIONS = 4

# The service's own tables (from its models, which the migration drift tests hold equal to its migrations).
TABLES = ("usage_event_keys", "usage_segments", "usage_daily_users", "usage_daily", "usage_daily_types",
          "usage_daily_features", "consumer_offsets", "health_dirty")


def ddl(dialect: Dialect) -> list[str]:
    """CREATE TABLE / INDEX statements of ``TABLES`` on ``dialect``."""
    out: list[str] = []
    for name in TABLES:
        table = Base.metadata.tables[name]
        out.append(str(CreateTable(table).compile(dialect=dialect)))
        out += [str(CreateIndex(index).compile(dialect=dialect)) for index in table.indexes]
    return out


_UTC0 = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass
class Tx:
    """One transaction's writes, computed beforehand."""

    keys: list[tuple[str, dt.date]]
    segments: list[tuple[dt.date, int, str, bytes]]  # day, event_count, offsets (JSON), data
    users: list[tuple[str, dt.date, str]]  # (account, day, user) not known before this transaction
    daily: list[tuple[str, dt.date, float, int, int, dt.datetime]]
    types: list[tuple[str, dt.date, str, float]]
    features: list[tuple[str, dt.date, str, float]]
    offsets: list[tuple[int, int]]  # (partition, next offset)
    accounts: list[str]
    events: int


def partition_of(account: str) -> int:
    return zlib.crc32(account.encode()) % PARTITIONS


def plan(rows: Sequence[Row], size: int = 10_000) -> list[Tx]:
    """Split the rows into transactions of ``size`` events and compute each one's writes."""
    known: set[tuple[str, dt.date, str]] = set()
    next_offset = [0] * PARTITIONS
    encode = msgspec.msgpack.Encoder().encode
    out = []
    for start in range(0, len(rows), size):
        chunk = rows[start:start + size]
        by_day: dict[dt.date, list[list[Any]]] = defaultdict(list)
        ranges: dict[int, list[int]] = {}
        daily: dict[tuple[str, dt.date], list[Any]] = {}
        types: dict[tuple[str, dt.date, str], float] = defaultdict(float)
        features: dict[tuple[str, dt.date, str], float] = defaultdict(float)
        users: set[tuple[str, dt.date, str]] = set()
        for source, id_, account, etype, user, feature, quantity, epoch_us, day in chunk:
            p = partition_of(account)
            r = ranges.setdefault(p, [next_offset[p], next_offset[p]])
            r[1] = next_offset[p]
            next_offset[p] += 1
            by_day[day].append([source, id_, account, etype, user, feature, quantity, epoch_us])
            agg = daily.setdefault((account, day), [0.0, 0, 0, 0])
            agg[0] += quantity
            agg[1] += 1
            agg[3] = max(agg[3], epoch_us)
            types[(account, day, etype)] += quantity
            if feature is not None:
                features[(account, day, feature)] += quantity
            triple = (account, day, user)
            if triple not in known:
                known.add(triple)
                users.add(triple)
                agg[2] += 1
        offsets = json.dumps({str(p): r for p, r in sorted(ranges.items())})
        out.append(Tx(
            keys=sorted((f"{r[0]}{SEP}{r[1]}", r[8]) for r in chunk),
            segments=[(d, len(rs), offsets, zlib.compress(encode(rs), 1)) for d, rs in sorted(by_day.items())],
            users=sorted(users),
            daily=[(a, d, q, n, u, _UTC0 + dt.timedelta(microseconds=last))
                   for (a, d), (q, n, u, last) in sorted(daily.items())],
            types=[(a, d, t, q) for (a, d, t), q in sorted(types.items())],
            features=[(a, d, f, q) for (a, d, f), q in sorted(features.items())],
            offsets=[(p, next_offset[p]) for p in sorted(ranges)],
            accounts=sorted({a for a, _ in daily}),
            events=len(chunk),
        ))
    return out


# --- SQLite --------------------------------------------------------------------------------------------

def _ts(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M:%S.%f")


def _values(n_rows: int, n_cols: int) -> str:
    one = "(" + ",".join("?" * n_cols) + ")"
    return ",".join([one] * n_rows)


def _returning(cur: sqlite3.Cursor, head: str, tail: str, rows: Sequence[tuple[Any, ...]], chunk: int) -> int:
    """A multi-row INSERT … RETURNING in chunks (sqlite3's executemany cannot return rows)."""
    got = 0
    for i in range(0, len(rows), chunk):
        part = rows[i:i + chunk]
        cur.execute(f"{head} VALUES {_values(len(part), len(part[0]))} {tail}", [v for r in part for v in r])
        got += len(cur.fetchall())
    return got


def sqlite_connect(path: Path) -> sqlite3.Connection:
    """A connection set up as the service's (shared.db.create_engine)."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=NORMAL", "busy_timeout=30000"):
        conn.execute(f"PRAGMA {pragma}")
    return conn


def sqlite_floor(path: Path, txs: Sequence[Tx]) -> tuple[float, Usage]:
    """Run the transactions on a fresh SQLite file; returns the seconds and the CPU taken."""
    conn = sqlite_connect(path)
    for statement in ddl(sqlite.dialect()):
        conn.execute(statement)
    cur = conn.cursor()
    now = _ts(dt.datetime.now(dt.UTC))
    prepared = [(
        [(k, d.isoformat()) for k, d in tx.keys],
        [(d.isoformat(), n, o, data, now) for d, n, o, data in tx.segments],
        [(a, d.isoformat(), u) for a, d, u in tx.users],
        [(a, d.isoformat(), q, n, u, _ts(last)) for a, d, q, n, u, last in tx.daily],
        [(a, d.isoformat(), t, q) for a, d, t, q in tx.types],
        [(a, d.isoformat(), f, q) for a, d, f, q in tx.features],
        [(GROUP, TOPIC, p, o) for p, o in tx.offsets],
        [(a, now) for a in tx.accounts],
    ) for tx in txs]
    meter = Meter(None, postgres=False)
    started = time.perf_counter()
    for keys, segments, users, daily, types, features, offsets, dirty in prepared:
        cur.execute("BEGIN IMMEDIATE")
        _returning(cur, "INSERT INTO usage_event_keys (key, day)", "ON CONFLICT DO NOTHING RETURNING key", keys, 5000)
        cur.executemany("INSERT INTO usage_segments (day, event_count, offsets, data, created_at) VALUES (?,?,?,?,?)",
                        segments)
        if users:
            _returning(cur, "INSERT INTO usage_daily_users (account_id, day, user_id)",
                       "ON CONFLICT DO NOTHING RETURNING account_id, day", users, 3000)
        cur.executemany(
            "INSERT INTO usage_daily VALUES (?,?,?,?,?,?) ON CONFLICT (account_id, day) DO UPDATE SET "
            "events = events + excluded.events, event_count = event_count + excluded.event_count, "
            "active_users = active_users + excluded.active_users, last_at = max(last_at, excluded.last_at)", daily)
        cur.executemany("INSERT INTO usage_daily_types VALUES (?,?,?,?) ON CONFLICT (account_id, day, type) "
                        "DO UPDATE SET events = events + excluded.events", types)
        cur.executemany("INSERT INTO usage_daily_features VALUES (?,?,?,?) ON CONFLICT (account_id, day, feature) "
                        "DO UPDATE SET events = events + excluded.events", features)
        cur.executemany('INSERT INTO consumer_offsets VALUES (?,?,?,?) ON CONFLICT ("group", topic, partition) '
                        "DO UPDATE SET next_offset = max(next_offset, excluded.next_offset)", offsets)
        cur.executemany("INSERT INTO health_dirty VALUES (?,?) ON CONFLICT (account_id) "
                        "DO UPDATE SET marked_at = excluded.marked_at", dirty)
        cur.execute("COMMIT")
    elapsed = time.perf_counter() - started
    cpu = meter.stop()
    counted = conn.execute("SELECT coalesce(sum(event_count), 0) FROM usage_daily").fetchone()[0]
    conn.close()
    expected = sum(tx.events for tx in txs)
    if counted != expected:
        raise AssertionError(f"sqlite floor counted {counted} events, expected {expected}")
    return elapsed, cpu


# --- PostgreSQL ----------------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def pg_database(url: str, prefix: str = "bench") -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database on the server of ``url`` (SQLAlchemy form), dropped afterwards;
    yields its URL in the same form."""
    base = make_url(url)
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(**pg_params(url))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def pg_params(url: str) -> dict[str, Any]:
    base = make_url(url)
    return {"host": base.host or "127.0.0.1", "port": base.port or 5432, "user": base.username or "postgres",
            "password": base.password, "database": base.database or "postgres"}


def _cols(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(c) for c in zip(*rows, strict=True)] if rows else []


async def pg_floor(url: str, txs: Sequence[Tx]) -> tuple[float, Usage]:
    """Run the transactions on the (empty) PostgreSQL database at ``url``; returns the seconds and CPU taken."""
    conn = await asyncpg.connect(**pg_params(url))
    try:
        for statement in ddl(postgresql.dialect()):
            await conn.execute(statement)
        now = dt.datetime.now(dt.UTC)
        prepared = [(
            _cols(tx.keys), _cols([(d, n, o, data, now) for d, n, o, data in tx.segments]), _cols(tx.users),
            _cols(tx.daily), _cols(tx.types), _cols(tx.features),
            _cols([(GROUP, TOPIC, p, o) for p, o in tx.offsets]), _cols([(a, now) for a in tx.accounts]),
        ) for tx in txs]
        meter = Meter(None, postgres=True)
        started = time.perf_counter()
        for keys, segments, users, daily, types, features, offsets, dirty in prepared:
            async with conn.transaction():
                await conn.fetch("INSERT INTO usage_event_keys (key, day) SELECT * FROM unnest($1::text[], $2::date[]) "
                                 "ON CONFLICT DO NOTHING RETURNING key", *keys)
                await conn.execute("INSERT INTO usage_segments (day, event_count, offsets, data, created_at) "
                                   "SELECT * FROM unnest($1::date[], $2::int[], $3::json[], $4::bytea[], "
                                   "$5::timestamptz[])", *segments)
                if users:
                    await conn.fetch("INSERT INTO usage_daily_users SELECT * FROM unnest($1::varchar[], $2::date[], "
                                     "$3::varchar[]) ON CONFLICT DO NOTHING RETURNING account_id, day", *users)
                await conn.execute(
                    "INSERT INTO usage_daily AS t SELECT * FROM unnest($1::varchar[], $2::date[], $3::float8[], "
                    "$4::int[], $5::int[], $6::timestamptz[]) ON CONFLICT (account_id, day) DO UPDATE SET "
                    "events = t.events + excluded.events, event_count = t.event_count + excluded.event_count, "
                    "active_users = t.active_users + excluded.active_users, "
                    "last_at = greatest(t.last_at, excluded.last_at)", *daily)
                await conn.execute("INSERT INTO usage_daily_types AS t SELECT * FROM unnest($1::varchar[], $2::date[], "
                                   "$3::varchar[], $4::float8[]) ON CONFLICT (account_id, day, type) "
                                   "DO UPDATE SET events = t.events + excluded.events", *types)
                if features:
                    await conn.execute("INSERT INTO usage_daily_features AS t SELECT * FROM unnest($1::varchar[], "
                                       "$2::date[], $3::varchar[], $4::float8[]) ON CONFLICT (account_id, day, "
                                       "feature) DO UPDATE SET events = t.events + excluded.events", *features)
                await conn.execute('INSERT INTO consumer_offsets AS t SELECT * FROM unnest($1::varchar[], '
                                   '$2::varchar[], $3::int[], $4::bigint[]) ON CONFLICT ("group", topic, partition) '
                                   "DO UPDATE SET next_offset = greatest(t.next_offset, excluded.next_offset)",
                                   *offsets)
                await conn.execute("INSERT INTO health_dirty SELECT * FROM unnest($1::varchar[], $2::timestamptz[]) "
                                   "ON CONFLICT (account_id) DO UPDATE SET marked_at = excluded.marked_at", *dirty)
        elapsed = time.perf_counter() - started
        cpu = meter.stop()
        counted = await conn.fetchval("SELECT coalesce(sum(event_count), 0) FROM usage_daily")
    finally:
        await conn.close()
    expected = sum(tx.events for tx in txs)
    if counted != expected:
        raise AssertionError(f"postgresql floor counted {counted} events, expected {expected}")
    return elapsed, cpu


@dataclass
class FloorResult:
    rate: float  # events per second
    cpu: Usage
    transactions: int


async def run(backend: str, rows: Sequence[Row], *, workdir: Path, pg_url: str | None = None,
              size: int = 10_000) -> FloorResult:
    """The floor of ``rows`` on a fresh database of ``backend``, with the CPU it used."""
    txs = plan(rows, size)
    if backend == "sqlite":
        elapsed, cpu = sqlite_floor(workdir / f"floor-{uuid.uuid4().hex[:6]}.db", txs)
    else:
        assert pg_url is not None
        async with pg_database(pg_url, "floor") as url:
            elapsed, cpu = await pg_floor(url, txs)
    return FloorResult(len(rows) / elapsed, cpu, len(txs))
