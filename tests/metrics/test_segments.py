"""Raw usage as segments: what a batch writes, exact recompute from segments, the active-user cache,
and migration 0008 of existing raw rows (both databases)."""

from __future__ import annotations

import asyncio
import datetime as dt
import pickle
import random
from collections import defaultdict
from typing import Any

import msgspec
import pytest
from alembic import command
from sqlalchemy import Date, Float, String, column, delete, func, select, table, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.metrics.app import MIGRATIONS
from services.metrics.models import (
    UsageDaily,
    UsageDailyFeature,
    UsageDailyType,
    UsageDailyUser,
    UsageEventKey,
    UsageSegment,
)
from services.metrics.usage import segments as seg
from services.metrics.usage.envelope import UsageData, UsageEnvelope, decode_usage
from services.metrics.usage.service import (
    ActiveUsers,
    Exported,
    Plan,
    UsageHandler,
    apply_usage_batch,
    purge_usage_keys,
    rebuild_rollups,
    worker_plan,
)
from shared.db import UTCDateTime, create_engine, utcnow
from shared.events.consumer.worker import plan_parts
from shared.migrations import alembic_config, upgrade
from shared.testing import RunningService
from tests.metrics.conftest import rows

ROLLUPS = (UsageDaily, UsageDailyType, UsageDailyFeature, UsageDailyUser)
QUANTITIES = [1.0, 0.1, 0.2, 0.7, 1 / 3, 1e-3, 12345.678, 2.5, 0.0]


def ev(i: int, account: str, user: str, at: dt.datetime, *, q: float = 1.0, feature: str | None = None,
       kind: str = "usage.login", source: str = "/product/web") -> UsageEnvelope:
    return UsageEnvelope(specversion="1.0", id=f"e{i}", source=source, type=kind, time=at, subject=account,
                         data=UsageData(user_id=user, feature=feature, quantity=q))


def expected(events: list[UsageEnvelope]) -> dict[tuple[str, dt.date], tuple[int, int, dt.datetime]]:
    """(event_count, active users, last time) per account and day, of the distinct events."""
    seen: dict[tuple[str, str], UsageEnvelope] = {}
    for e in events:
        seen.setdefault((e.source, e.id), e)
    count: dict[tuple[str, dt.date], int] = defaultdict(int)
    users: dict[tuple[str, dt.date], set[str]] = defaultdict(set)
    last: dict[tuple[str, dt.date], dt.datetime] = {}
    for e in seen.values():
        k = (e.subject, e.time.astimezone(dt.UTC).date())
        count[k] += 1
        users[k].add(e.data.user_id)
        last[k] = max(last.get(k, e.time), e.time)
    return {k: (n, len(users[k]), last[k]) for k, n in count.items()}


async def apply(factory: async_sessionmaker[AsyncSession], batch: list[UsageEnvelope],
                users: ActiveUsers | None = None) -> None:
    async with factory() as s, s.begin():
        await apply_usage_batch(s, batch, users)


async def daily_counts(svc: RunningService) -> dict[tuple[str, dt.date], tuple[int, int, dt.datetime]]:
    return {(a, d): (n, u, last) for a, d, _, n, u, last in await rows(svc, UsageDaily)}


async def test_a_batch_keeps_its_new_events_as_one_segment_per_day_in_arrival_order(service: Any) -> None:
    d1 = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
    plus3 = dt.timezone(dt.timedelta(hours=3))
    first = [ev(3, "acme", "u1", d1), ev(1, "acme", "u2", d1 + dt.timedelta(days=1), q=2.5, feature="export"),
             ev(2, "beta", "u1", dt.datetime(2026, 11, 20, 2, 30, tzinfo=plus3)),  # 23:30 UTC on the 19th
             ev(0, "acme", "u1", d1 + dt.timedelta(hours=1)), ev(3, "acme", "u1", d1)]  # e3 twice in the batch
    second = [ev(0, "acme", "u9", d1), ev(0, "acme", "u1", d1, source="/product/mobile"), ev(4, "beta", "u3", d1)]
    async with service("metrics", run_consumers=False, run_relay=False) as svc:
        factory = svc.ctx.session_factory
        await apply(factory, first)
        await apply(factory, second)  # /product/web e0 again: not new; /product/mobile e0 is another event
        async with factory() as s:
            segs = (await s.execute(select(UsageSegment).order_by(UsageSegment.id))).scalars().all()
            keys = {k.key: k.day for k in (await s.execute(select(UsageEventKey))).scalars()}
    assert [(x.day, x.event_count, x.offsets) for x in segs] == [
        (dt.date(2026, 11, 19), 1, None), (dt.date(2026, 11, 20), 2, None), (dt.date(2026, 11, 21), 1, None),
        (dt.date(2026, 11, 20), 2, None)]
    decoded = [[(r[seg.SOURCE], r[seg.ID], r[seg.ACCOUNT], r[seg.USER], r[seg.FEATURE], r[seg.QUANTITY],
                 seg.time_of(r[seg.TIME])) for r in seg.decode(x.data)] for x in segs]
    assert decoded[1] == [("/product/web", "e3", "acme", "u1", None, 1.0, d1),
                          ("/product/web", "e0", "acme", "u1", None, 1.0, d1 + dt.timedelta(hours=1))]
    assert decoded[2] == [("/product/web", "e1", "acme", "u2", "export", 2.5, d1 + dt.timedelta(days=1))]
    assert decoded[0][0][:3] == ("/product/web", "e2", "beta")
    assert [r[:2] for r in decoded[3]] == [("/product/mobile", "e0"), ("/product/web", "e4")]
    assert keys == {"/product/web\x1fe3": dt.date(2026, 11, 20), "/product/web\x1fe1": dt.date(2026, 11, 21),
                    "/product/web\x1fe2": dt.date(2026, 11, 19), "/product/web\x1fe0": dt.date(2026, 11, 20),
                    "/product/mobile\x1fe0": dt.date(2026, 11, 20), "/product/web\x1fe4": dt.date(2026, 11, 20)}


def traffic(seed: int, today: dt.datetime) -> list[list[UsageEnvelope]]:
    """Batches of skewed traffic over today, yesterday and late days, with redeliveries across batches."""
    rng = random.Random(seed)
    accounts = [f"acct-{i}" for i in range(12)]
    batches: list[list[UsageEnvelope]] = []
    sent: list[UsageEnvelope] = []
    n = 0
    for _ in range(6):
        batch: list[UsageEnvelope] = []
        for _ in range(700):
            if rng.random() < 0.03:
                at = today - dt.timedelta(days=rng.randrange(2, 40), seconds=rng.randrange(86400))  # late
            else:
                at = today - dt.timedelta(seconds=rng.randrange(2 * 86400))
            user = f"u{int(rng.paretovariate(1.2)) % 20}"
            batch.append(ev(n, rng.choice(accounts), user, at, q=rng.choice(QUANTITIES),
                            feature=rng.choice([None, "reports", "export"]), kind=rng.choice(["usage.login",
                                                                                             "usage.report_run"])))
            n += 1
        batch += rng.sample(sent, min(len(sent), 100)) + rng.sample(batch, 20)  # redeliveries
        sent += batch
        rng.shuffle(batch)
        batches.append(batch)
    return batches


def shipped(batch: list[UsageEnvelope]) -> Exported:
    """A batch as the consumer's worker process plans it: from the raw messages, its export pickled."""
    exported, rejected = plan_parts(decode_usage, worker_plan, [("usage", [msgspec.json.encode(e) for e in batch])])
    assert rejected == []
    return pickle.loads(pickle.dumps(exported))


def test_a_plan_exported_by_the_worker_process_gives_what_the_plan_itself_gives() -> None:
    batch = traffic(5, utcnow())[1]  # with redeliveries inside the batch
    here = UsageHandler(users=None)
    local = here.plan()
    local.add(batch)
    local.complete()
    adopted = Plan.adopted(shipped(batch), None)

    def outputs(p: Plan) -> tuple[Any, ...]:
        return (p.keys(ordered=False), p.keys(ordered=True), p.users, p.user_candidates(),
                p.daily((a, d) for a, d, _ in p.user_candidates()), p.breakdowns(), p.segments(), p.accounts)

    assert outputs(adopted) == outputs(local)
    # Some keys were already stored: the adopted plan reads its rows back from its packed segments.
    some = set(local.keys(ordered=True)[0][::3])
    local.take(some)
    adopted.take(some)
    assert outputs(adopted) == outputs(local)
    assert sum(n for _, n, _ in adopted.segments()) == len(some)


@pytest.mark.parametrize("planned", ["in the consumer", "in a worker process"])
async def test_recompute_from_segments_equals_the_incremental_rollups_exactly(service: Any, planned: str) -> None:
    now = utcnow()
    batches = traffic(11, now)
    everything = [e for b in batches for e in b]
    start = (now - dt.timedelta(days=45)).date().isoformat()
    end = now.date().isoformat()
    async with service("metrics", run_consumers=False, run_relay=False) as svc:
        factory = svc.ctx.session_factory
        handler = UsageHandler()
        for batch in batches:
            async with factory() as s, s.begin():
                if planned == "in the consumer":
                    await handler(s, batch)
                else:  # redeliveries across batches take the adopted plans' slow path
                    await handler.apply(s, handler.adopt(shipped(batch)))
        assert handler.users.size > 0  # the open days went through the cache
        want = expected(everything)
        assert await daily_counts(svc) == want
        incremental = [await rows(svc, m) for m in ROLLUPS]
        sums = {(a, d): q for a, d, q, *_ in incremental[0]}
        for (a, d), q in sums.items():  # the float sums are the events' sums (up to rounding)
            want_q = sum(e.data.quantity for e in {(e.source, e.id): e for e in everything}.values()
                         if e.subject == a and e.time.astimezone(dt.UTC).date() == d)
            assert abs(q - want_q) <= 1e-9 * max(1.0, want_q)

        # The rollups are thrown away, and rebuilt from the segments alone: bit for bit the same.
        async with factory() as s, s.begin():
            for m in ROLLUPS:
                await s.execute(delete(m))
        r = await svc.client.post("/v1/recompute", json={"from": start, "to": end})
        assert r.status_code == 200, r.text
        assert r.json()["raw_events"] == len({(e.source, e.id) for e in everything})
        assert r.json()["rollup_days"] == len(want)
        assert [await rows(svc, m) for m in ROLLUPS] == incremental

        # One account: the others are left alone, and that one is rebuilt the same.
        async with factory() as s, s.begin():
            for m in ROLLUPS:
                await s.execute(delete(m).where(m.account_id == "acct-3"))  # type: ignore[attr-defined]
            await s.execute(text("UPDATE usage_daily SET events = -1 WHERE account_id = 'acct-4'"))
        r = await svc.client.post("/v1/recompute", json={"from": start, "to": end, "account_id": "acct-3"})
        assert r.status_code == 200, r.text
        assert r.json()["accounts"] == 1
        after = [await rows(svc, m) for m in ROLLUPS]
        assert [[x for x in t if x[0] != "acct-4"] for t in after] == [
            [x for x in t if x[0] != "acct-4"] for t in incremental]
        assert {x[2] for x in after[0] if x[0] == "acct-4"} == {-1}


async def test_active_users_are_exact_with_caches_two_writers_late_days_and_a_rollback(service: Any) -> None:
    now = utcnow()
    today, yesterday, late = now, now - dt.timedelta(days=1), now - dt.timedelta(days=9)
    a, b = ActiveUsers(), ActiveUsers()  # two processes writing the same accounts
    async with service("metrics", run_consumers=False, run_relay=False) as svc:
        factory = svc.ctx.session_factory
        sent: list[UsageEnvelope] = []
        n = 0

        def batch(*specs: tuple[str, str, dt.datetime]) -> list[UsageEnvelope]:
            nonlocal n
            out = []
            for account, user, at in specs:
                out.append(ev(n, account, user, at))
                n += 1
            return out

        for users, spec in [
            (a, batch(("x", "u1", today), ("x", "u2", today), ("x", "u1", yesterday), ("x", "u1", late))),
            (a, batch(("x", "u1", today), ("x", "u3", today), ("x", "u1", late))),  # u1 cached, u3 new
            (b, batch(("x", "u1", today), ("x", "u2", yesterday), ("y", "u1", today))),  # b's cache is empty
            (a, batch(("x", "u2", yesterday), ("x", "u4", late), ("y", "u1", today))),
        ]:
            await apply(factory, spec, users)
            sent += spec
        assert ("x", "u1") in a.days[seg.day_number(today.date())]
        assert seg.day_number(late.date()) not in a.days  # a late day is not cached
        # A transaction that rolls back leaves the cache as it was: u5 is counted when it comes again.
        again = batch(("x", "u5", today), ("y", "u5", yesterday))
        with pytest.raises(RuntimeError):
            async with factory() as s, s.begin():
                await apply_usage_batch(s, again, a)
                raise RuntimeError("the transaction fails after the batch was written")
        assert ("x", "u5") not in a.days[seg.day_number(today.date())]
        await apply(factory, again, a)
        sent += again
        assert await daily_counts(svc) == expected(sent)
        async with factory() as s:
            stored = (await s.execute(select(func.count()).select_from(UsageDailyUser))).scalar_one()
        assert stored == sum(u for _, u, _ in expected(sent).values())


def _old_rows(rng: random.Random) -> list[dict[str, Any]]:
    out = []
    base = dt.datetime(2026, 10, 1, tzinfo=dt.UTC)
    received = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    for i in range(1200):
        at = base + dt.timedelta(seconds=rng.randrange(5 * 86400), microseconds=rng.randrange(10**6))
        out.append({"source": rng.choice(["/web", "/mobile"]), "event_id": f"old-{i}",
                    "account_id": f"acct-{rng.randrange(7)}", "type": rng.choice(["usage.login", "usage.export"]),
                    "user_id": f"u{rng.randrange(9)}", "feature": rng.choice([None, "api"]),
                    "quantity": rng.choice(QUANTITIES), "occurred_at": at, "day": at.date(),
                    "received_at": received + dt.timedelta(milliseconds=i // 10)})
    return out


async def test_a_plan_made_ahead_is_written_again_in_full_after_its_transaction_rolled_back(service: Any) -> None:
    """The consumer plans a batch before its transaction (assuming every event is new) and writes the same
    plan again when the transaction is retried: whether all keys were new (the fast path, no RETURNING) or
    some were not (undone to a savepoint and redone with RETURNING), a retry counts each event once."""
    at = utcnow() - dt.timedelta(minutes=5)
    first = [ev(i, "acme", f"u{i % 3}", at, q=QUANTITIES[i % len(QUANTITIES)]) for i in range(6)]
    overlapping = [ev(i, "acme", f"u{i % 4}", at, feature="export") for i in range(3, 10)]  # e3..e5 known
    fresh = [ev(i, "beta", "u1", at) for i in range(10, 13)] + [ev(10, "beta", "u1", at)]  # e10 twice
    async with service("metrics", run_consumers=False, run_relay=False) as svc:
        factory = svc.ctx.session_factory
        handler = UsageHandler()
        await apply(factory, first, handler.users)
        for batch in (overlapping, fresh):
            plan = handler.plan()
            plan.add(batch[:2])
            plan.add(batch[2:])
            plan.complete()
            with pytest.raises(RuntimeError):
                async with factory() as s, s.begin():
                    await handler.apply(s, plan)
                    raise RuntimeError("the transaction fails after the batch was written")
            async with factory() as s, s.begin():
                await handler.apply(s, plan)
        assert await daily_counts(svc) == expected(first + overlapping + fresh)
        async with factory() as s:
            segs = (await s.execute(select(UsageSegment).order_by(UsageSegment.id))).scalars().all()
        assert [x.event_count for x in segs] == [6, 4, 3]  # only the new events of each batch, once


async def test_migration_0008_moves_raw_rows_into_keys_and_segments_and_back(database_factory: Any) -> None:
    url = database_factory.empty("metrics-0008")
    await asyncio.to_thread(upgrade, MIGRATIONS, url, "0007")
    old = _old_rows(random.Random(3))
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            usage_events = table("usage_events", *(column(c, String()) for c in (
                "source", "event_id", "account_id", "type", "user_id", "feature")), column("quantity", Float()),
                column("occurred_at", UTCDateTime()), column("day", Date()), column("received_at", UTCDateTime()))
            await conn.execute(usage_events.insert(), old)
        await asyncio.to_thread(upgrade, MIGRATIONS, url, "head")
        factory = async_sessionmaker(engine, expire_on_commit=False)
        async with factory() as s:
            keys = {k.key: k.day for k in (await s.execute(select(UsageEventKey))).scalars()}
            segs = (await s.execute(select(UsageSegment).order_by(UsageSegment.id))).scalars().all()
            tables = await s.run_sync(lambda ss: ss.connection().dialect.get_table_names(ss.connection()))
        assert "usage_events" not in tables
        assert keys == {f"{r['source']}\x1f{r['event_id']}": r["day"] for r in old}
        assert [x.day for x in segs] == sorted({r["day"] for r in old})  # one per day, in day order
        assert all(x.offsets is None for x in segs)
        moved = [(x.day, r) for x in segs for r in seg.decode(x.data)]
        assert len(moved) == len(old)
        by_id = {r["event_id"]: r for r in old}
        for day, (source, eid, account, kind, user, feature, q, us) in moved:
            o = by_id[eid]
            assert (source, account, kind, user, feature, q, seg.time_of(us), day) == (
                o["source"], o["account_id"], o["type"], o["user_id"], o["feature"], o["quantity"],
                o["occurred_at"], o["day"])
        # Arrival order inside a segment: by receive time.
        for x in segs:
            ids = [r[seg.ID] for r in seg.decode(x.data)]
            assert [by_id[i]["received_at"] for i in ids] == sorted(by_id[i]["received_at"] for i in ids)

        # The rollups rebuilt from the migrated segments count every old row.
        async with factory() as s, s.begin():
            counts, accounts = await rebuild_rollups(s, dt.date(2026, 9, 1), dt.date(2026, 12, 1), None)
        assert counts == {"raw_events": len(old), "rollup_days": len({(r["account_id"], r["day"]) for r in old})}
        assert accounts == {r["account_id"] for r in old}
        async with factory() as s:
            daily = {(d.account_id, d.day): d for d in (await s.execute(select(UsageDaily))).scalars()}
        for (account, day), d in daily.items():
            mine = [r for r in old if r["account_id"] == account and r["day"] == day]
            assert (d.event_count, d.active_users) == (len(mine), len({r["user_id"] for r in mine}))
            assert d.last_at == max(r["occurred_at"] for r in mine)
            assert abs(d.events - sum(r["quantity"] for r in mine)) < 1e-6

        # Down again: usage_events is rebuilt from the segments.
        await engine.dispose()
        await asyncio.to_thread(command.downgrade, alembic_config(MIGRATIONS, url), "0007")
        async with engine.connect() as conn:
            back = (await conn.execute(select(usage_events))).mappings().all()
        assert sorted((r["source"], r["event_id"], r["account_id"], r["user_id"], r["quantity"], r["occurred_at"],
                       r["day"]) for r in back) == sorted(
            (r["source"], r["event_id"], r["account_id"], r["user_id"], r["quantity"], r["occurred_at"], r["day"])
            for r in old)
    finally:
        await engine.dispose()


async def test_dedup_keys_older_than_the_retention_are_purged_and_segments_kept(service: Any) -> None:
    today = utcnow().date()  # keys are kept by day: noon of each day, whatever the time of the run
    events = [ev(i, "acme", "u1", dt.datetime.combine(today - dt.timedelta(days=days), dt.time(12), dt.UTC))
              for i, days in enumerate([0, 29, 31, 60])]
    async with service("metrics", run_consumers=False, run_relay=False, max_event_age="30d",
                       retention_batch_size=1) as svc:
        await apply(svc.ctx.session_factory, events)
        await purge_usage_keys(svc.ctx)  # the service's own retention loop may have run first
        assert await purge_usage_keys(svc.ctx) == 0
        async with svc.ctx.session_factory() as s:
            keys = set((await s.execute(select(UsageEventKey.key))).scalars())
            segments = (await s.execute(select(func.sum(UsageSegment.event_count)))).scalar_one()
    assert keys == {"/product/web\x1fe0", "/product/web\x1fe1"}
    assert segments == 4


def test_the_active_user_cache_drops_closed_days_and_stays_bounded() -> None:
    cache = ActiveUsers(limit=5)
    cache.committed([("a", 100, "u1"), ("a", 99, "u1"), ("a", 98, "u1"), ("b", 100, "u2")], today=100)
    assert cache.days == {100: {("a", "u1"), ("b", "u2")}, 99: {("a", "u1")}} and cache.size == 3
    assert cache.unknown([("a", 100, "u1"), ("a", 100, "u9"), ("a", 98, "u1")], today=100) == [
        ("a", 98, "u1"), ("a", 100, "u9")]  # a late day always goes to the database
    cache.committed([("c", 101, "u3")], today=101)  # day 99 closed
    assert set(cache.days) == {100, 101} and cache.size == 3
    cache.committed([("c", 101, f"u{i}") for i in range(4, 8)], today=101)  # over the bound: start over
    assert cache.days == {} and cache.size == 0
