"""Dedup key designs for raw usage events, at driver level: µs per key, new and duplicate.

Every design answers, per transaction of 10,000 keys, "which of these ``source`` + ``id`` are new?" with
one ``INSERT … ON CONFLICT DO NOTHING RETURNING`` (and, for the hash, a look-up of the conflicts):

- ``row table``: today's ``usage_events``: the whole event row, primary key ``(source, event_id)`` and the
  ``(day, account_id)`` index (SQLite: a rowid table, so the key is a second B-tree);
- ``2-column key``: a narrow table of ``(source, event_id, day)`` with that primary key;
- ``text key``: ``key TEXT PRIMARY KEY`` (source + U+001F + id) and ``day``; WITHOUT ROWID on SQLite (one
  B-tree); on PostgreSQL also with ``COLLATE "C"`` (byte order, no locale comparison);
- ``text key, cache 64 MB``: the same with ``PRAGMA cache_size`` at 64 MB instead of SQLite's 2 MB default
  (the service sets none), to show what the page cache does to random keys once the table outgrows it;
- ``64-bit hash``: ``h INTEGER PRIMARY KEY`` (the first 8 bytes of BLAKE2b of the key; SQLite's rowid itself)
  with the full key stored beside it; a conflicting hash is compared with the stored key, and a different
  key (a collision) goes to an overflow text-key table.

Ids are random UUIDs (the worst case for B-tree locality; sequential ids insert near each other). Measured
on an empty table and after ``existing`` keys are stored (inserted untimed in large transactions).
SQLite through the stdlib with the service's PRAGMAs; PostgreSQL through asyncpg with arrays (``unnest``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import random
import sqlite3
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from bench.floor import SEP, pg_database, pg_params, sqlite_connect

Key = tuple[str, str, dt.date]  # source, id, day
SOURCES = ("/product", "/product-eu", "/mobile")


def make_keys(n: int, rng: random.Random) -> list[Key]:
    day = dt.date(2026, 11, 1)
    return [(rng.choice(SOURCES), str(uuid.UUID(int=rng.getrandbits(128), version=4)),
             day + dt.timedelta(days=rng.randrange(30))) for _ in range(n)]


def h64(source: str, id_: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{source}{SEP}{id_}".encode(), digest_size=8).digest(), "big", signed=True)


def _row(k: Key) -> tuple[Any, ...]:
    return (k[0], k[1], "acct-0001", "usage.feature_used", "user-0001-01", "reports", 1.0,
            f"{k[2]} 12:00:00.000000", k[2].isoformat(), "2026-12-01 00:00:00.000000")


# --- SQLite --------------------------------------------------------------------------------------------

def _insert_returning(cur: sqlite3.Cursor, sql_head: str, tail: str, rows: Sequence[tuple[Any, ...]]) -> list[Any]:
    chunk = max(1, 30_000 // len(rows[0]))
    out: list[Any] = []
    one = "(" + ",".join("?" * len(rows[0])) + ")"
    for i in range(0, len(rows), chunk):
        part = rows[i:i + chunk]
        cur.execute(f"{sql_head} VALUES {','.join([one] * len(part))} {tail}", [v for r in part for v in r])
        out.extend(cur.fetchall())
    return out


class SqliteDesign:
    name = ""
    ddl = ""
    pragmas: tuple[str, ...] = ()  # on top of the service's (SQLite's default page cache is 2 MB)

    def insert(self, cur: sqlite3.Cursor, keys: Sequence[Key]) -> int:
        raise NotImplementedError


class SqliteRows(SqliteDesign):
    name = "row table (today)"
    ddl = """CREATE TABLE usage_events (source VARCHAR(500) NOT NULL, event_id VARCHAR(200) NOT NULL,
        account_id VARCHAR(200) NOT NULL, type VARCHAR(200) NOT NULL, user_id VARCHAR(200) NOT NULL,
        feature VARCHAR(200), quantity FLOAT NOT NULL, occurred_at DATETIME NOT NULL, day DATE NOT NULL,
        received_at DATETIME NOT NULL, PRIMARY KEY (source, event_id));
        CREATE INDEX ix_usage_events_day_account_id ON usage_events (day, account_id);"""

    def insert(self, cur: sqlite3.Cursor, keys: Sequence[Key]) -> int:
        return len(_insert_returning(cur, "INSERT INTO usage_events", "ON CONFLICT DO NOTHING RETURNING source, "
                                     "event_id", [_row(k) for k in sorted(keys)]))


class SqliteTwoColumn(SqliteDesign):
    name = "2-column key"
    ddl = """CREATE TABLE k (source VARCHAR(500) NOT NULL, event_id VARCHAR(200) NOT NULL, day DATE NOT NULL,
        PRIMARY KEY (source, event_id))"""

    def insert(self, cur: sqlite3.Cursor, keys: Sequence[Key]) -> int:
        rows = sorted((s, i, d.isoformat()) for s, i, d in keys)
        return len(_insert_returning(cur, "INSERT INTO k", "ON CONFLICT DO NOTHING RETURNING source", rows))


class SqliteText(SqliteDesign):
    name = "text key WITHOUT ROWID"
    ddl = "CREATE TABLE k (key TEXT PRIMARY KEY, day DATE NOT NULL) WITHOUT ROWID"

    def insert(self, cur: sqlite3.Cursor, keys: Sequence[Key]) -> int:
        rows = sorted((f"{s}{SEP}{i}", d.isoformat()) for s, i, d in keys)
        return len(_insert_returning(cur, "INSERT INTO k", "ON CONFLICT DO NOTHING RETURNING key", rows))


class SqliteTextCache(SqliteText):
    name = "text key, cache 64 MB"
    pragmas = ("cache_size=-65536",)


class SqliteHash(SqliteDesign):
    name = "64-bit hash + compare"
    ddl = """CREATE TABLE k (h INTEGER PRIMARY KEY, key TEXT NOT NULL, day DATE NOT NULL);
        CREATE TABLE k_overflow (key TEXT PRIMARY KEY, day DATE NOT NULL) WITHOUT ROWID"""

    def insert(self, cur: sqlite3.Cursor, keys: Sequence[Key]) -> int:
        rows = sorted((h64(s, i), f"{s}{SEP}{i}", d.isoformat()) for s, i, d in keys)
        # RETURNING the key, not the hash: two new keys of one batch may share a hash.
        new = {key for (key,) in _insert_returning(cur, "INSERT INTO k", "ON CONFLICT DO NOTHING RETURNING key", rows)}
        conflicts = [r for r in rows if r[1] not in new]
        stored: dict[int, str] = {}
        for i in range(0, len(conflicts), 30_000):
            part = conflicts[i:i + 30_000]
            cur.execute(f"SELECT h, key FROM k WHERE h IN ({','.join('?' * len(part))})", [r[0] for r in part])
            stored.update(cur.fetchall())
        collided = [(key, day) for h, key, day in conflicts if stored[h] != key]
        if collided:
            new_overflow = _insert_returning(cur, "INSERT INTO k_overflow", "ON CONFLICT DO NOTHING RETURNING key",
                                             collided)
            return len(new) + len(new_overflow)
        return len(new)


def sqlite_design(design: SqliteDesign, path: Path, fill: Sequence[Key], batches: Sequence[Sequence[Key]],
                  dups: Sequence[Sequence[Key]]) -> dict[str, float]:
    conn = sqlite_connect(path)
    for pragma in design.pragmas:
        conn.execute(f"PRAGMA {pragma}")
    conn.executescript(design.ddl)
    cur = conn.cursor()

    def timed(groups: Sequence[Sequence[Key]], expect_new: bool) -> float:
        started = time.perf_counter()
        for keys in groups:
            cur.execute("BEGIN IMMEDIATE")
            got = design.insert(cur, keys)
            cur.execute("COMMIT")
            if got != (len(keys) if expect_new else 0):
                raise AssertionError(f"{design.name}: {got} new of {len(keys)}")
        return (time.perf_counter() - started) / sum(len(k) for k in groups) * 1e6

    out = {"new@0": timed(batches[:len(batches) // 2], True)}
    for i in range(0, len(fill), 100_000):
        cur.execute("BEGIN IMMEDIATE")
        design.insert(cur, fill[i:i + 100_000])
        cur.execute("COMMIT")
    out["new@M"] = timed(batches[len(batches) // 2:], True)
    out["dup@M"] = timed(dups, False)
    conn.close()
    out["MB"] = os.path.getsize(path) / 1e6
    return out


# --- PostgreSQL ----------------------------------------------------------------------------------------

class PgDesign:
    name = ""
    ddl = ""

    async def insert(self, conn: asyncpg.Connection, keys: Sequence[Key]) -> int:
        raise NotImplementedError


def _cols(rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(c) for c in zip(*rows, strict=True)]


class PgRows(PgDesign):
    name = "row table (today)"
    ddl = """CREATE TABLE usage_events (source VARCHAR(500) NOT NULL, event_id VARCHAR(200) NOT NULL,
        account_id VARCHAR(200) NOT NULL, type VARCHAR(200) NOT NULL, user_id VARCHAR(200) NOT NULL,
        feature VARCHAR(200), quantity FLOAT NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, day DATE NOT NULL,
        received_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (source, event_id));
        CREATE INDEX ix_usage_events_day_account_id ON usage_events (day, account_id);"""
    at = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)

    async def insert(self, conn: asyncpg.Connection, keys: Sequence[Key]) -> int:
        rows = sorted((s, i, "acct-0001", "usage.feature_used", "user-0001-01", "reports", 1.0, self.at, d, self.at)
                      for s, i, d in keys)
        return len(await conn.fetch(
            "INSERT INTO usage_events SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::varchar[], "
            "$4::varchar[], $5::varchar[], $6::varchar[], $7::float8[], $8::timestamptz[], $9::date[], "
            "$10::timestamptz[]) ON CONFLICT DO NOTHING RETURNING source, event_id", *_cols(rows)))


class PgTwoColumn(PgDesign):
    name = "2-column key"
    ddl = """CREATE TABLE k (source VARCHAR(500) NOT NULL, event_id VARCHAR(200) NOT NULL, day DATE NOT NULL,
        PRIMARY KEY (source, event_id))"""

    async def insert(self, conn: asyncpg.Connection, keys: Sequence[Key]) -> int:
        return len(await conn.fetch("INSERT INTO k SELECT * FROM unnest($1::varchar[], $2::varchar[], $3::date[]) "
                                    "ON CONFLICT DO NOTHING RETURNING source", *_cols(sorted(keys))))


class PgText(PgDesign):
    name = "text key"
    ddl = "CREATE TABLE k (key TEXT PRIMARY KEY, day DATE NOT NULL)"

    async def insert(self, conn: asyncpg.Connection, keys: Sequence[Key]) -> int:
        rows = sorted((f"{s}{SEP}{i}", d) for s, i, d in keys)
        return len(await conn.fetch("INSERT INTO k SELECT * FROM unnest($1::text[], $2::date[]) "
                                    "ON CONFLICT DO NOTHING RETURNING key", *_cols(rows)))


class PgTextC(PgText):
    name = 'text key COLLATE "C"'
    ddl = 'CREATE TABLE k (key TEXT COLLATE "C" PRIMARY KEY, day DATE NOT NULL)'


class PgHash(PgDesign):
    name = "64-bit hash + compare"
    ddl = """CREATE TABLE k (h BIGINT PRIMARY KEY, key TEXT NOT NULL, day DATE NOT NULL);
        CREATE TABLE k_overflow (key TEXT COLLATE "C" PRIMARY KEY, day DATE NOT NULL)"""

    async def insert(self, conn: asyncpg.Connection, keys: Sequence[Key]) -> int:
        rows = sorted((h64(s, i), f"{s}{SEP}{i}", d) for s, i, d in keys)
        # RETURNING the key, not the hash: two new keys of one batch may share a hash.
        new = {r[0] for r in await conn.fetch("INSERT INTO k SELECT * FROM unnest($1::bigint[], $2::text[], "
                                              "$3::date[]) ON CONFLICT DO NOTHING RETURNING key", *_cols(rows))}
        conflicts = [r for r in rows if r[1] not in new]
        if not conflicts:
            return len(new)
        stored = dict(await conn.fetch("SELECT h, key FROM k WHERE h = ANY($1::bigint[])", [r[0] for r in conflicts]))
        collided = [(key, day) for h, key, day in conflicts if stored[h] != key]
        if collided:
            extra = await conn.fetch("INSERT INTO k_overflow SELECT * FROM unnest($1::text[], $2::date[]) "
                                     "ON CONFLICT DO NOTHING RETURNING key", *_cols(collided))
            return len(new) + len(extra)
        return len(new)


async def pg_design(design: PgDesign, url: str, fill: Sequence[Key], batches: Sequence[Sequence[Key]],
                    dups: Sequence[Sequence[Key]]) -> dict[str, float]:
    conn = await asyncpg.connect(**pg_params(url))
    try:
        await conn.execute(design.ddl)

        async def timed(groups: Sequence[Sequence[Key]], expect_new: bool) -> float:
            started = time.perf_counter()
            for keys in groups:
                async with conn.transaction():
                    got = await design.insert(conn, keys)
                if got != (len(keys) if expect_new else 0):
                    raise AssertionError(f"{design.name}: {got} new of {len(keys)}")
            return (time.perf_counter() - started) / sum(len(k) for k in groups) * 1e6

        out = {"new@0": await timed(batches[:len(batches) // 2], True)}
        for i in range(0, len(fill), 100_000):
            async with conn.transaction():
                await design.insert(conn, fill[i:i + 100_000])
        await conn.execute("VACUUM ANALYZE")
        out["new@M"] = await timed(batches[len(batches) // 2:], True)
        out["dup@M"] = await timed(dups, False)
        out["MB"] = float(await conn.fetchval("SELECT sum(pg_total_relation_size(oid)) FROM pg_class "
                                        "WHERE relname IN ('k', 'k_overflow', 'usage_events')")) / 1e6
        return out
    finally:
        await conn.close()


@dataclass
class Plan:
    fill: list[Key]
    batches: list[list[Key]]  # half timed on the empty table, half after the fill
    dups: list[list[Key]]


def plan(existing: int, per_tx: int, timed_tx: int = 4, seed: int = 3) -> Plan:
    rng = random.Random(seed)
    keys = make_keys(2 * timed_tx * per_tx + existing, rng)
    batches = [keys[i * per_tx:(i + 1) * per_tx] for i in range(2 * timed_tx)]
    fill = keys[2 * timed_tx * per_tx:]
    stored = [k for b in batches for k in b] + fill
    dups = [rng.sample(stored, per_tx) for _ in range(timed_tx)]
    return Plan(fill, batches, dups)


def _print(backend: str, name: str, r: dict[str, float], existing: int) -> None:
    print(f"  {backend:<10} {name:<24} new {r['new@0']:5.2f} µs/key (empty)   new {r['new@M']:5.2f} µs/key "
          f"({existing:,} stored)   duplicate {r['dup@M']:5.2f} µs/key   {r['MB']:6.1f} MB", flush=True)


async def run(backends: Sequence[str], pg_url: str, workdir: Path, *, existing: int = 1_000_000,
              per_tx: int = 10_000) -> None:
    p = plan(existing, per_tx)
    print(f"dedup keys: {per_tx:,} keys per transaction, random UUID ids; 'new' = all keys new, 'duplicate' = "
          f"all already stored; size = the key table(s) after {existing + 8 * per_tx:,} keys", flush=True)
    for backend in backends:
        if backend == "sqlite":
            for sd in (SqliteRows(), SqliteTwoColumn(), SqliteText(), SqliteTextCache(), SqliteHash()):
                r = sqlite_design(sd, workdir / f"keys-{uuid.uuid4().hex[:6]}.db", p.fill, p.batches, p.dups)
                _print(backend, sd.name, r, existing)
        else:
            for pd in (PgRows(), PgTwoColumn(), PgText(), PgTextC(), PgHash()):
                async with pg_database(pg_url, "keys") as url:
                    r = await pg_design(pd, url, p.fill, p.batches, p.dups)
                _print(backend, pd.name, r, existing)
