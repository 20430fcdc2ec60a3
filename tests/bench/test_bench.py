"""Smoke tests of `make bench`'s parts on tiny sizes, so that they cannot rot (the bench is not in `make test`)."""

from __future__ import annotations

import datetime as dt
import os
import zlib
from pathlib import Path

import asyncpg
import msgspec
import pytest

from bench import floor, keys, workload
from bench.__main__ import parse
from bench.cpu import Meter, cpu_seconds
from services.metrics.usage.envelope import decode_usage

PG_URL = os.environ.get("TEST_DATABASE_URL", "")
ON_PG = PG_URL.startswith("postgresql")


@pytest.mark.db_independent
@pytest.mark.parametrize("name", list(workload.WORKLOADS))
def test_workloads_are_valid_unique_usage_events(name: str) -> None:
    w = workload.build(name, 2000)
    assert len(w) == len(w.messages) == 2000
    assert len({(r[0], r[1]) for r in w.rows}) == 2000
    for (key, value), row in zip(w.messages, w.rows, strict=True):
        event = decode_usage(value)  # within the service's bounds, as the consumer decodes it
        assert (event.source, event.id, event.subject, event.data.user_id) == (row[0], row[1], row[2], row[4])
        assert key == row[2].encode()
        assert event.time.astimezone(dt.UTC).date() == row[8]
    newest = max(r[8] for r in w.rows)
    late = sum(1 for r in w.rows if r[8] < newest)
    if name == "realistic":
        assert 190 <= w.accounts <= 200 and w.users <= 200 * 20
        assert 0.005 < late / len(w) < 0.05
        # Skewed: the busiest user of an account sends far more than its quietest.
        per_user: dict[str, int] = {}
        for r in w.rows:
            if r[2] == "acct-0000":
                per_user[r[4]] = per_user.get(r[4], 0) + 1
        assert max(per_user.values()) >= 4 * min(per_user.values())
    elif name == "unique":
        assert w.users == len(w)
    else:
        assert w.days > 100 and newest < dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


@pytest.mark.db_independent
def test_floor_plan_matches_the_rows() -> None:
    w = workload.realistic(3000, accounts=20)
    txs = floor.plan(w.rows, size=1000)
    assert [tx.events for tx in txs] == [1000, 1000, 1000]
    assert sum(n for tx in txs for _, n, _, _ in tx.segments) == 3000
    stored = [r for tx in txs for _, _, _, data in tx.segments for r in msgspec.msgpack.decode(zlib.decompress(data))]
    assert sorted(tuple(r) for r in stored) == sorted(tuple(r[:8]) for r in w.rows)
    assert sum(len(tx.users) for tx in txs) == len({(r[2], r[8], r[4]) for r in w.rows})
    assert sum(d[4] for tx in txs for d in tx.daily) == sum(len(tx.users) for tx in txs)
    assert sum(q for tx in txs for _, _, _, q in tx.types) == sum(r[6] for r in w.rows)
    # The offsets reached are the partitions' message counts.
    last = {p: o for tx in txs for p, o in tx.offsets}
    assert sum(last.values()) == 3000


async def test_floor_runs_and_counts_every_event(tmp_path: Path) -> None:
    w = workload.build("import", 1500)
    result = await floor.run("postgresql" if ON_PG else "sqlite", w.rows, workdir=tmp_path, pg_url=PG_URL, size=500)
    assert result.transactions == 3 and result.rate > 0
    assert (result.cpu.database is not None) == ON_PG


@pytest.mark.parametrize("design", [keys.SqliteRows, keys.SqliteTwoColumn, keys.SqliteText, keys.SqliteHash])
def test_key_designs_tell_new_from_duplicate_sqlite(design: type[keys.SqliteDesign], tmp_path: Path) -> None:
    p = keys.plan(existing=300, per_tx=50, timed_tx=2)
    r = keys.sqlite_design(design(), tmp_path / "k.db", p.fill, p.batches, p.dups)
    assert set(r) == {"new@0", "new@M", "dup@M", "MB"}


def test_hash_design_sends_collisions_to_the_overflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "h64", lambda source, id_: len(id_) % 3)  # three hashes for all keys
    conn = floor.sqlite_connect(tmp_path / "h.db")
    conn.executescript(keys.SqliteHash.ddl)
    cur = conn.cursor()
    day = dt.date(2026, 11, 1)
    batch = [("/s", "a" * n, day) for n in range(1, 10)]
    assert keys.SqliteHash().insert(cur, batch) == 9
    assert keys.SqliteHash().insert(cur, batch) == 0
    assert keys.SqliteHash().insert(cur, [*batch, ("/s", "b", day)]) == 1
    assert conn.execute("SELECT count(*) FROM k").fetchone()[0] == 3


@pytest.mark.skipif(not ON_PG, reason="PostgreSQL key designs run with TEST_DATABASE_URL")
async def test_hash_design_sends_collisions_to_the_overflow_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(keys, "h64", lambda source, id_: len(id_) % 3)
    day = dt.date(2026, 11, 1)
    batch = [("/s", "a" * n, day) for n in range(1, 10)]
    async with floor.pg_database(PG_URL, "keys_test") as url:
        conn = await asyncpg.connect(**floor.pg_params(url))
        try:
            await conn.execute(keys.PgHash.ddl)
            assert await keys.PgHash().insert(conn, batch) == 9
            assert await keys.PgHash().insert(conn, batch) == 0
            assert await keys.PgHash().insert(conn, [*batch, ("/s", "b", day)]) == 1
            assert await conn.fetchval("SELECT count(*) FROM k") == 3
        finally:
            await conn.close()


@pytest.mark.skipif(not ON_PG, reason="PostgreSQL key designs run with TEST_DATABASE_URL")
async def test_key_designs_tell_new_from_duplicate_postgresql() -> None:
    p = keys.plan(existing=300, per_tx=50, timed_tx=2)
    for design in (keys.PgRows(), keys.PgTwoColumn(), keys.PgText(), keys.PgTextC(), keys.PgHash()):
        async with floor.pg_database(PG_URL, "keys_test") as url:
            r = await keys.pg_design(design, url, p.fill, p.batches, p.dups)
        assert r["MB"] > 0


@pytest.mark.db_independent
def test_cli_quick_mode_and_cpu_meter() -> None:
    args = parse(["--quick"])
    assert args.events == 20_000 and "risk" not in args.only and args.existing_keys == 100_000
    assert parse(["--quick", "--only", "risk"]).only == ["risk"]
    with pytest.raises(SystemExit):
        parse(["--only", "nope"])
    before = cpu_seconds()
    meter = Meter(os.getpid(), postgres=False)
    sum(i * i for i in range(2_000_000))
    usage = meter.stop()
    assert cpu_seconds() > before and usage.service > 0 and usage.database is None
