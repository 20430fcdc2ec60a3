"""Usage ingestion over the real broker: exact rollups under duplicates, late events, poison messages."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import signal
from collections import defaultdict
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select

from services.metrics.models import UsageDaily, UsageDailyFeature, UsageDailyType, UsageDailyUser, UsageEventKey
from shared.events.registry import USAGE_TOPIC, dlq_topic
from shared.testing import KafkaProbe, RunningService, eventually, make_event
from shared.testing.suite import free_port
from tests.metrics.conftest import rows

DAY0 = dt.datetime(2026, 11, 10, tzinfo=dt.UTC)


def _expected(events: list[Any]) -> dict[tuple[str, dt.date], dict[str, Any]]:
    out: dict[tuple[str, dt.date], dict[str, Any]] = {}
    users: dict[tuple[str, dt.date], set[str]] = defaultdict(set)
    for e in events:
        day = e.time.astimezone(dt.UTC).date()
        q = e.data.get("quantity", 1)
        agg = out.setdefault((e.subject, day), {"events": 0.0, "event_count": 0, "by_type": defaultdict(float),
                                                "features": defaultdict(float)})
        agg["events"] += q
        agg["event_count"] += 1
        agg["by_type"][e.type] += q
        if e.data.get("feature"):
            agg["features"][e.data["feature"]] += q
        users[(e.subject, day)].add(e.data["user_id"])
    for key, agg in out.items():
        agg["active_users"] = len(users[key])
    return out


async def _count(svc: RunningService) -> int:
    async with svc.ctx.session_factory() as s:
        return int((await s.execute(select(func.count()).select_from(UsageEventKey))).scalar_one())


@pytest.mark.parametrize("planned", ["in the service", "in the worker process"])
async def test_10k_events_with_duplicates_late_and_poison_give_exact_rollups(
        service: Any, kafka: KafkaProbe, planned: str) -> None:
    rng = random.Random(7)
    accounts = [f"acct-{i}" for i in range(20)]
    unique = []
    for i in range(8900):
        at = DAY0 + dt.timedelta(seconds=rng.randrange(5 * 86400))
        data: dict[str, Any] = {"user_id": f"u{rng.randrange(60)}"}
        if rng.random() < 0.7:
            data["feature"] = rng.choice(["reports", "export", "api"])
        if rng.random() < 0.5:
            data["quantity"] = rng.choice([1, 2, 3, 0.5])
        unique.append(make_event(rng.choice(["usage.login", "usage.feature_used", "usage.report_run"]),
                                 rng.choice(accounts), data, time=at, id=f"e{i}", source="/product/web"))
    # Same id from another source is another event (identity is source + id).
    unique += [make_event("usage.login", "acct-0", {"user_id": "other-src"}, id=f"e{i}", source="/product/mobile",
                          time=DAY0 + dt.timedelta(hours=i)) for i in range(50)]
    # Late events, published last, for days already well counted; one near midnight in another offset
    # (02:30 at +03:00 is 23:30 UTC the day before).
    late = [make_event("usage.login", rng.choice(accounts), {"user_id": f"late{i}", "quantity": 2},
                       id=f"late{i}", source="/product/web", time=DAY0 - dt.timedelta(days=3, minutes=i))
            for i in range(49)]
    tz3 = dt.timezone(dt.timedelta(hours=3))
    late.append(make_event("usage.login", "acct-1", {"user_id": "midnight"}, id="late-midnight",
                           source="/product/web", time=dt.datetime(2026, 11, 20, 2, 30, tzinfo=tz3)))
    dups = [rng.choice(unique) for _ in range(1000)]  # 10% of the 10k
    stream = unique[:4500] + dups[:500] + [b"not json at all"] + unique[4500:] + dups[500:]
    stream.append(make_event("usage.login", "acct-2", {"feature": "no user id"}, id="bad-1", source="/product/web"))
    stream += late
    assert len(unique + late) == 9000
    assert len([m for m in stream if not isinstance(m, bytes)]) == 10_000 + 1  # + one invalid

    worker = planned == "in the worker process"
    async with service("metrics", health_interval=0.2, max_event_age="36500d",  # a fixed calendar
                       usage_plan_worker=worker, usage_plan_worker_min_batch=1) as svc:
        consumer = next(c for c in svc.ctx.consumers if c.name == "metrics-usage")
        if worker:
            assert consumer.worker is not None
            consumer.worker.start()  # the first batch would, and be planned in the service while it starts
            await eventually(lambda: _up(consumer), timeout=60, message="the worker process is up")
        else:
            assert consumer.worker is None
        await kafka.publish(USAGE_TOPIC, stream)
        valid = unique + late
        await eventually(lambda: _count_is(svc, len(valid)), timeout=90, interval=0.5,
                         message="all unique usage events stored")
        expected = _expected(valid)

        daily = {(a, d): (ev, n, au) for a, d, ev, n, au, _ in await rows(svc, UsageDaily)}
        assert set(daily) == set(expected)
        for key, agg in expected.items():
            assert daily[key][0] == agg["events"], key
            assert daily[key][1:] == (agg["event_count"], agg["active_users"]), key
        types = {(a, d, t): q for a, d, t, q in await rows(svc, UsageDailyType)}
        assert types == {(a, d, t): q for (a, d), agg in expected.items() for t, q in agg["by_type"].items()}
        feats = {(a, d, f): q for a, d, f, q in await rows(svc, UsageDailyFeature)}
        assert feats == {(a, d, f): q for (a, d), agg in expected.items() for f, q in agg["features"].items()}
        assert daily[("acct-1", dt.date(2026, 11, 19))][2] >= 1  # the +03:00 event counted on its UTC day

        # Through the API, for one account: same numbers, one row per day with events.
        r = await svc.client.get("/v1/accounts/acct-1/usage", params={"from": "2026-11-01", "to": "2026-11-30"})
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        want = sorted((d, agg) for (a, d), agg in expected.items() if a == "acct-1")
        assert [i["date"] for i in items] == [d.isoformat() for d, _ in want]
        for item, (_, agg) in zip(items, want, strict=True):
            assert item["events"] == agg["events"]
            assert item["active_users"] == agg["active_users"]
            assert item["by_type"] == dict(sorted(agg["by_type"].items()))
            assert item["features"] == dict(sorted(agg["features"].items()))

        # The malformed messages went to the DLQ; ingestion went on past them.
        dlq = await kafka.read_all(dlq_topic(USAGE_TOPIC))
        assert sorted(r.value for r in dlq if r.value == b"not json at all") == [b"not json at all"]
        assert len(dlq) == 2
        assert any(dict(r.headers).get("dlq_error", b"").startswith(b"invalid event") for r in dlq)

        # Recompute from the raw events gives exactly the incremental rollups.
        snapshot = [await rows(svc, m) for m in (UsageDaily, UsageDailyType, UsageDailyFeature, UsageDailyUser)]
        r = await svc.client.post("/v1/recompute", json={"from": "2026-11-01", "to": "2026-11-30"})
        assert r.status_code == 200, r.text
        assert r.json()["raw_events"] == len(valid)
        assert r.json()["rollup_days"] == len(expected)
        again = [await rows(svc, m) for m in (UsageDaily, UsageDailyType, UsageDailyFeature, UsageDailyUser)]
        assert again == snapshot

        # Replaying the whole stream (a consumer restart from offset 0) changes nothing.
        await kafka.publish(USAGE_TOPIC, unique[:500] + late[:10])
        await eventually(lambda: _consumed(svc, 10_000 + 510), timeout=30, message="replay consumed")
        assert await rows(svc, UsageDaily) == snapshot[0]
        if worker:
            assert consumer.worker is not None and consumer.worker.planned > 0
            # A worker that dies is replaced; meanwhile, and after, nothing is lost or counted twice.
            pid = consumer.worker.pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            more = [make_event("usage.login", "acct-0", {"user_id": f"after{i}"}, id=f"after{i}",
                               source="/product/web", time=DAY0) for i in range(30)]
            for part in (more[:10] + unique[600:700], more[10:20], more[20:]):
                await kafka.publish(USAGE_TOPIC, part)
                await asyncio.sleep(0.3)
            await eventually(lambda: _count_is(svc, len(valid) + 30), timeout=60, message="events after the kill")
            await eventually(lambda: _up(consumer, not_pid=pid), timeout=60, message="a new worker process")
            last = [make_event("usage.login", "acct-0", {"user_id": "last"}, id="last", source="/product/web",
                               time=DAY0)]
            planned_before = consumer.worker.planned
            await kafka.publish(USAGE_TOPIC, last + unique[:5])
            await eventually(lambda: _count_is(svc, len(valid) + 31), timeout=30, message="the last event")
            assert consumer.worker.planned > planned_before
            r = await svc.client.post("/v1/recompute", json={"from": "2026-11-01", "to": "2026-11-30"})
            assert r.status_code == 200, r.text
            assert r.json()["raw_events"] == len(valid) + 31
            daily = {(a, d): n for a, d, _, n, *_ in await rows(svc, UsageDaily)}
            assert daily[("acct-0", DAY0.date())] == expected[("acct-0", DAY0.date())]["event_count"] + 31


async def test_a_failing_dlq_rewinds_every_batch_in_hand_with_the_worker_and_loses_nothing(
        service: Any, kafka: KafkaProbe) -> None:
    """With a worker process planning, three batches are in hand; a message the DLQ cannot take holds its
    partition there, and every batch fetched behind it is read again once the DLQ answers."""
    events = [make_event("usage.login", f"acct-{i % 5}", {"user_id": f"u{i % 40}"}, id=f"r{i}",
                         source="/product/web", time=DAY0 + dt.timedelta(minutes=i)) for i in range(3000)]
    bad = 400  # its offset: one partition (one key), so every offset below it is a valid, distinct event
    async with service("metrics", max_event_age="36500d", usage_plan_worker=True, usage_plan_worker_min_batch=1,
                       usage_batch_events=300) as svc:
        consumer = next(c for c in svc.ctx.consumers if c.name == "metrics-usage")
        assert consumer.worker is not None
        consumer.worker.start()
        await eventually(lambda: _up(consumer), timeout=60, message="the worker process is up")
        working = consumer.dlq.producer
        dead = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{free_port()}")  # nothing listens there
        consumer.dlq.producer = dead
        consumer.dlq.timeout, consumer.dlq.attempts, consumer.dlq_pause = 0.5, 1, 0.3
        try:
            await kafka.publish(USAGE_TOPIC, [*events[:bad], b"not json", *events[bad:]], key="one-partition")

            async def held() -> int | None:
                r = await svc.client.get("/readyz")
                detail = r.json().get("consumers", {}).get("metrics-usage", {})
                return detail["dlq_failing"]["held_back"]["offset"] if "dlq_failing" in detail else None

            assert await eventually(held, timeout=60, message="the failing DLQ holds the partition") == bad
            await asyncio.sleep(1.5)  # several rounds: read again, refused again, rewound again
            # Its batch's events before it wait with it; what is stored is what precedes the stored offset.
            stored = next(iter((await consumer.offsets.load()).values()), 0)
            assert stored <= bad
            assert await _count(svc) == stored
            assert consumer.worker.planned > 0
        finally:
            consumer.dlq.producer = working
            await dead.stop()
        await eventually(lambda: _count_is(svc, len(events)), timeout=60, message="the partition moves on")
        dlq = await kafka.read_all(dlq_topic(USAGE_TOPIC))
        assert [r.value for r in dlq] == [b"not json"]  # once, however many rounds were refused
        assert list((await consumer.offsets.load()).values()) == [len(events) + 1]
        r = await svc.client.post("/v1/recompute", json={"from": "2026-11-01", "to": "2026-11-30"})
        assert r.status_code == 200, r.text
        assert r.json()["raw_events"] == len(events)


async def _count_is(svc: RunningService, n: int) -> bool:
    return await _count(svc) == n


async def _up(consumer: Any, not_pid: int | None = None) -> bool:
    return consumer.worker.pid not in (None, not_pid)


async def _consumed(svc: RunningService, n: int) -> bool:
    c = next(c for c in svc.ctx.consumers if c.name == "metrics-usage")
    return c.stats["applied"] + c.stats["duplicates"] >= n
