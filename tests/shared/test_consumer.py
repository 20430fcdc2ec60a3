"""Idempotent consumers on the real broker: crash-replay, DLQ, consumer groups, batch mode."""

from __future__ import annotations

import asyncio
import datetime as dt

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import select

from shared.events import CloudEvent
from shared.events.registry import LIFECYCLE_TOPIC, dlq_topic
from shared.testing import eventually
from tests.shared import demo
from tests.shared.conftest import count


def ev(account: str, seq: int, name: str = "ok", id: str | None = None) -> CloudEvent:
    return CloudEvent.new(type="postsales.account.updated", source="/tests", subject=account,
                          data={"account_id": account, "name": name, "seats": seq}, id=id)


async def applied_ids(svc) -> list[str]:
    async with svc.ctx.session_factory() as s:
        return list((await s.execute(select(demo.Applied.event_id))).scalars())


async def test_crash_after_db_commit_before_offset_commit_applies_nothing_twice(demo_service, kafka) -> None:
    events = [ev(f"a{i % 7}", i) for i in range(120)]
    await kafka.publish(LIFECYCLE_TOPIC, events)
    async with demo_service(run_relay=False) as svc:
        consumer = svc.ctx.consumers[0]

        async def no_offset_commit(*args, **kwargs) -> None:
            # The process "dies" right after its DB transaction: offsets are never committed.
            return None

        consumer.kafka.commit = no_offset_commit
        await eventually(lambda: _has(svc, 120))
        database_url = svc.settings.database_url

    # The same consumer group comes back on the same database and re-reads from the last commit (none).
    async with demo_service(run_relay=False, database_url=database_url) as svc:
        consumer = svc.ctx.consumers[0]
        await eventually(lambda: _stat(consumer, "duplicates", 120), message="replayed batch not seen")
        ids = await applied_ids(svc)
        assert len(ids) == 120 and set(ids) == {e.id for e in events}
        # And now the offsets are committed, so a third start reads nothing.
        tps = [TopicPartition(svc.settings.kafka_topic_prefix + LIFECYCLE_TOPIC, p) for p in range(4)]
        committed = [await consumer.kafka.committed(tp) for tp in tps]
        assert sum(c or 0 for c in committed) == 120


async def _has(svc, n: int) -> bool:
    return len(await applied_ids(svc)) == n


async def _stat(consumer, key: str, n: int) -> bool:
    return consumer.stats[key] >= n


async def test_poison_messages_go_to_the_dlq_and_the_next_message_is_processed(demo_service, kafka) -> None:
    good_before = ev("acct", 1)
    handler_poison = ev("acct", 2, name=demo.POISON_NAME)
    permanent = ev("acct", 3, name="permanent")
    schema_bad = {"specversion": "1.0", "id": "x1", "source": "/tests", "type": "postsales.account.updated",
                  "time": "2026-11-23T00:00:00Z", "subject": "acct", "data": {"seats": 1}}  # no account_id
    unknown_type = {"specversion": "1.0", "id": "x2", "source": "/tests", "type": "postsales.nope",
                    "time": "2026-11-23T00:00:00Z", "subject": "acct", "data": {}}
    good_after = ev("acct", 4)
    await kafka.publish(LIFECYCLE_TOPIC, [good_before, b"{not json", handler_poison, schema_bad], key="acct")
    await kafka.publish(LIFECYCLE_TOPIC, [unknown_type, permanent, good_after], key="acct")

    async with demo_service(run_relay=False, consumer_max_retries=2) as svc:
        await eventually(lambda: _has(svc, 2))
        assert set(await applied_ids(svc)) == {good_before.id, good_after.id}
        dlq = await eventually(lambda: _dlq(kafka, 5), message="5 messages in the DLQ")
        errors = {r.offset: dict(r.headers) for r in dlq}
        assert len(dlq) == 5
        by_error = sorted(h["dlq_error"].decode().split(":")[0] for h in errors.values())
        assert by_error == ["handler failed", "handler failed", "invalid event", "invalid event", "invalid event"]
        for h in errors.values():
            assert h["dlq_original_topic"].decode() == svc.settings.kafka_topic_prefix + LIFECYCLE_TOPIC
            assert int(h["dlq_original_offset"]) >= 0
            assert h["dlq_consumer"] == b"demo-consumer"
        poison_record = next(r for r in dlq if b"always" in dict(r.headers)["dlq_error"])
        assert CloudEvent.from_bytes(poison_record.value).id == handler_poison.id
        metrics = (await svc.client.get("/metrics")).text
        assert 'dlq_messages_total{consumer="demo-consumer"' in metrics


async def test_an_event_whose_time_is_out_of_bounds_is_dead_lettered_and_not_applied(demo_service, kafka) -> None:
    # An old event's key may have been purged already (dedup keys are kept MAX_EVENT_AGE), so a replay would
    # apply it twice; the HTTP APIs refuse such times too.
    now = dt.datetime.now(dt.UTC)
    too_old = ev("acct", 1).model_copy(update={"time": now - dt.timedelta(days=31)})
    young = ev("acct", 2).model_copy(update={"time": now - dt.timedelta(days=29)})
    ahead = ev("acct", 3).model_copy(update={"time": now + dt.timedelta(hours=3)})
    await kafka.publish(LIFECYCLE_TOPIC, [too_old, young, ahead], key="acct")

    async with demo_service(run_relay=False, max_event_age="30d", max_future_skew="2h") as svc:
        await eventually(lambda: _has(svc, 1))
        dlq = await eventually(lambda: _dlq(kafka, 2), message="the two events in the DLQ")
        assert await applied_ids(svc) == [young.id]
        assert [CloudEvent.from_bytes(r.value).id for r in dlq] == [too_old.id, ahead.id]
        errors = [dict(r.headers)["dlq_error"].decode() for r in dlq]
        assert errors[0].startswith("invalid event: time: ") and "30 days (MAX_EVENT_AGE)" in errors[0]
        assert "more than 2 h in the future (MAX_FUTURE_SKEW)" in errors[1]


async def _dlq(kafka, n: int):
    records = await kafka.read_all(dlq_topic(LIFECYCLE_TOPIC), settle=0.2)
    return records if len(records) >= n else None


async def test_two_consumers_in_one_group_split_partitions_and_apply_each_event_once(demo_service, kafka) -> None:
    events = [ev(f"acct-{i % 40}", i) for i in range(400)]
    async with demo_service(run_relay=False) as first:
        url = first.settings.database_url
        async with demo_service(run_relay=False, database_url=url) as second:
            c1, c2 = first.ctx.consumers[0], second.ctx.consumers[0]

            async def balanced() -> bool:
                a, b = c1.kafka.assignment(), c2.kafka.assignment()
                return bool(a) and bool(b) and not (a & b) and len(a | b) == 4

            await eventually(balanced, timeout=40, message="partitions split between two members")
            await kafka.publish(LIFECYCLE_TOPIC, events)
            await eventually(lambda: _has(first, 400), timeout=30)
            assert c1.stats["applied"] > 0 and c2.stats["applied"] > 0
            assert c1.stats["applied"] + c2.stats["applied"] == 400
            ids = await applied_ids(first)
            assert len(ids) == len(set(ids)) == 400


async def test_batch_handler_applies_a_fetch_in_one_transaction_and_dedups_within_it(demo_service, kafka) -> None:
    events = [ev(f"b{i % 3}", i) for i in range(50)]
    duplicated = events + events[:10] + [ev("b0", 999, id=events[0].id)]  # same id again, different body
    await kafka.publish(LIFECYCLE_TOPIC, duplicated)
    async with demo_service(run_relay=False, batch=True) as svc:
        await eventually(lambda: _has(svc, 50))
        await asyncio.sleep(0.3)
        assert len(await applied_ids(svc)) == 50
        assert svc.ctx.consumers[0].stats["duplicates"] == 11
        assert await count(svc, svc.ctx.infra.processed_events) == 50


async def test_offsets_are_not_committed_while_the_database_is_unavailable(demo_service, kafka) -> None:
    async with demo_service(run_relay=False) as svc:
        consumer = svc.ctx.consumers[0]
        await eventually(lambda: _assigned(consumer))
        real_factory = consumer.session_factory

        class Down:
            def __call__(self):
                raise ConnectionRefusedError("database is down")

        consumer.session_factory = Down()  # type: ignore[assignment]
        await kafka.publish(LIFECYCLE_TOPIC, [ev("z", i) for i in range(5)], key="z")
        await asyncio.sleep(1.0)
        tp_list = list(consumer.kafka.assignment())
        committed = [await consumer.kafka.committed(tp) for tp in tp_list]
        assert all(c in (None, 0) for c in committed)
        assert consumer.stats["dlq"] == 0
        consumer.session_factory = real_factory
        await eventually(lambda: _has(svc, 5))


async def _assigned(consumer: AIOKafkaConsumer) -> bool:
    return bool(consumer.kafka.assignment())


async def test_a_failing_batch_is_split_until_only_its_poison_events_are_dead_lettered(demo_service, kafka) -> None:
    events = [ev(f"p{i % 4}", i) for i in range(256)]
    events[37] = ev("p1", 37, name=demo.POISON_NAME)
    events[200] = ev("p0", 200, name="permanent")
    await kafka.publish(LIFECYCLE_TOPIC, events)
    async with demo_service(run_relay=False, batch=True, consumer_batch_size=256,
                            consumer_retry_backoff=0.01) as svc:
        consumer = svc.ctx.consumers[0]
        transactions = 0
        apply_once = consumer._apply_once

        async def counting(deliveries, *plan):  # the real method, counted
            nonlocal transactions
            transactions += 1
            await apply_once(deliveries, *plan)

        consumer._apply_once = counting
        await eventually(lambda: _dlq(kafka, 2), timeout=60, message="the two poison events dead-lettered")
        await eventually(lambda: _has(svc, 254))
        applied = await applied_ids(svc)
        assert sorted(applied) == sorted(e.id for i, e in enumerate(events) if i not in (37, 200))
        dlq = await _dlq(kafka, 2)
        assert sorted(CloudEvent.from_bytes(r.value).id for r in dlq) == sorted([events[37].id, events[200].id])
    # Event by event would take 256+ transactions; halving takes about 2·log2(256) per poison event,
    # plus the retries of the whole batch and of each lone poison event.
    assert transactions < 80, transactions


async def test_a_planner_plans_batches_ahead_and_an_event_it_cannot_plan_is_dead_lettered(demo_service, kafka) -> None:
    """Planned ahead, outside any transaction, a planner's failure must not escape the retry/halving/DLQ path:
    the batch is planned again in its transaction, and only the event that cannot be planned is dead-lettered."""
    events = [ev(f"q{i % 4}", i) for i in range(200)]
    events[42] = ev("q2", 42, name=demo.UNPLANNABLE_NAME)
    await kafka.publish(LIFECYCLE_TOPIC, events)
    planner = demo.DemoPlanner()
    async with demo_service(run_relay=False, planner=planner, consumer_batch_size=100,
                            consumer_retry_backoff=0.01) as svc:
        await eventually(lambda: _dlq(kafka, 1), timeout=60, message="the unplannable event dead-lettered")
        await eventually(lambda: _has(svc, 199))
        assert sorted(await applied_ids(svc)) == sorted(e.id for i, e in enumerate(events) if i != 42)
        assert [CloudEvent.from_bytes(r.value).id for r in await _dlq(kafka, 1)] == [events[42].id]
        assert svc.ctx.consumers[0].stats["restarts"] == 0
    # Batches without the bad event were written with the plan made while they were decoded; the one with it
    # was planned again in its transaction (and then by halves).
    ahead = [len(p.events) for p in planner.applied_plans if p.ahead]
    inside = [len(p.events) for p in planner.applied_plans if not p.ahead]
    assert ahead and inside and sum(ahead) + sum(inside) == 199, (ahead, inside)


async def test_a_revocation_waits_until_the_batches_in_hand_are_applied_and_nothing_is_skipped(
        demo_service, kafka) -> None:
    events = [ev(f"r{i % 40}", i) for i in range(400)]
    later = [ev(f"r{i % 40}", i) for i in range(400, 500)]
    async with demo_service(run_relay=False, batch=True, consumer_batch_size=50) as first:
        c1 = first.ctx.consumers[0]
        await eventually(lambda: _assigned(c1), timeout=30)
        gate = asyncio.Event()
        apply_once = c1._apply_once

        async def slow(deliveries, *plan):  # a slow transaction: the next batch is fetched and waits behind it
            await gate.wait()
            await apply_once(deliveries, *plan)

        c1._apply_once = slow
        drain = c1._drain
        revocation: list[str] = []

        async def traced() -> None:
            revocation.append("started")
            await drain()
            revocation.append(f"done: {c1.stats['applied']} of {c1.stats['fetched']} fetched applied")

        c1._drain = traced
        await kafka.publish(LIFECYCLE_TOPIC, events)
        await eventually(lambda: _stat(c1, "fetched", 100), message="a second batch fetched behind the first")
        assert c1.stats["applied"] == 0
        async with demo_service(run_relay=False, batch=True, consumer_batch_size=50,
                                database_url=first.settings.database_url) as second:
            c2 = second.ctx.consumers[0]
            await eventually(lambda: _true(revocation), timeout=30, message="c2's join revokes c1's partitions")
            await asyncio.sleep(0.5)
            assert revocation == ["started"], "the revocation must wait for the batches in hand"
            gate.set()

            async def balanced() -> bool:
                a, b = c1.kafka.assignment(), c2.kafka.assignment()
                return bool(a) and bool(b) and not (a & b) and len(a | b) == 4

            await eventually(balanced, timeout=40, message="partitions split between two members")
            # Every batch in hand was applied before the partitions moved...
            assert revocation == ["started", "done: 100 of 100 fetched applied"], revocation
            await eventually(lambda: _has(first, 400), timeout=30)
            # ...and committed, so the new owner applied nothing twice.
            assert c1.stats["duplicates"] == c2.stats["duplicates"] == 0, (c1.stats, c2.stats)
            assert c1.stats["applied"] + c2.stats["applied"] == 400
        # c2 left: c1 takes every partition back and goes on consuming.
        await kafka.publish(LIFECYCLE_TOPIC, later)
        await eventually(lambda: _has(first, 500), timeout=40, message="c1 consumes after the second rebalance")
        assert c1.stats["restarts"] == 0
        ids = await applied_ids(first)
        assert len(ids) == len(set(ids)) == 500


async def _true(items) -> bool:
    return bool(items)


async def test_a_consumer_that_crashes_rejoins_and_loses_nothing(demo_service, kafka) -> None:
    before = [ev(f"c{i % 8}", i) for i in range(100)]
    after = [ev(f"c{i % 8}", i) for i in range(100, 200)]
    async with demo_service(run_relay=False, batch=True) as svc:
        consumer = svc.ctx.consumers[0]
        await eventually(lambda: _assigned(consumer), timeout=30)
        first_kafka = consumer.kafka
        fetch = consumer._fetch
        crashes = 0

        async def crash_once():  # a bug surfacing right after a fetch: the fetched records are in hand
            nonlocal crashes
            batch = await fetch()
            if batch and not crashes:
                crashes += 1
                raise RuntimeError("bug")
            return batch

        consumer._fetch = crash_once
        await kafka.publish(LIFECYCLE_TOPIC, before)
        await eventually(lambda: _has(svc, 100), timeout=40, message="the fetched records are read again")
        await kafka.publish(LIFECYCLE_TOPIC, after)
        await eventually(lambda: _has(svc, 200), timeout=30)
        assert crashes == 1 and consumer.stats["restarts"] == 1
        assert consumer.kafka is not first_kafka
        ids = await applied_ids(svc)
        assert len(ids) == len(set(ids)) == 200
        assert 'consumer_restarts_total{consumer="demo-consumer"} 1.0' in (await svc.client.get("/metrics")).text
