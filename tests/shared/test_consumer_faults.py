"""The consumer under real faults: schema errors end in the DLQ, outages are waited out, a DLQ that does not
answer holds its partition back visibly, a stuck partition shows in /readyz and /metrics, a decoder bug on
one message dead-letters that message. Each test runs on the backend the suite runs on (SQLite or PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from shared.db import create_engine
from shared.events import CloudEvent
from shared.events.consumer import EventConsumer, decode_cloudevent, is_infrastructure_error
from shared.events.registry import LIFECYCLE_TOPIC, dlq_topic
from shared.testing import eventually
from shared.testing.suite import TcpProxy, database_endpoint, free_port, proxied_url
from tests.shared import demo

CONSUMER = "demo-consumer"


def ev(account: str, seq: int, name: str = "ok") -> CloudEvent:
    return CloudEvent.new(type="postsales.account.updated", source="/tests/faults", subject=account,
                          data={"account_id": account, "name": name, "seats": seq})


async def applied_ids(svc: Any) -> set[str]:
    async with svc.ctx.session_factory() as s:
        return set((await s.execute(select(demo.Applied.event_id))).scalars())


async def dlq_records(kafka: Any) -> list[Any]:
    return list(await kafka.read_all(dlq_topic(LIFECYCLE_TOPIC), settle=0.2))


async def committed(consumer: EventConsumer, prefix: str) -> dict[int, int | None]:
    return {p: await consumer.kafka.committed(TopicPartition(prefix + LIFECYCLE_TOPIC, p)) for p in range(4)}


def metric(text_: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a Prometheus text exposition (labels must match exactly, in any order)."""
    for line in text_.splitlines():
        m = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if m and dict(re.findall(r'(\w+)="([^"]*)"', m.group(1))) == labels:
            return float(m.group(2))
    return None


def is_postgres(svc: Any) -> bool:
    return str(svc.settings.database_url).startswith("postgresql")


# --- error classification, with the errors real databases raise ------------------------------------------

async def test_outages_are_told_apart_from_schema_errors_with_real_database_errors(demo_service: Any) -> None:
    async with demo_service(run_consumers=False) as svc:
        # A missing table is a schema error on both backends (SQLite files it under OperationalError).
        with pytest.raises(DBAPIError) as missing:
            async with svc.ctx.session_factory() as s:
                await s.execute(text("SELECT * FROM no_such_table_here"))
        assert not is_infrastructure_error(missing.value), missing.value
        with pytest.raises(DBAPIError) as duplicate:  # a constraint violation is the event's fault too
            async with svc.ctx.session_factory() as s, s.begin():
                await s.execute(text("INSERT INTO demo_applied (event_id, account_id) VALUES ('x', 'a'), ('x', 'a')"))
        assert not is_infrastructure_error(duplicate.value)

        if is_postgres(svc):
            url = svc.settings.database_url
            refused = make_url(url).set(host="127.0.0.1", port=free_port()).render_as_string(hide_password=False)
            proxy = TcpProxy(*database_endpoint(url)).start()
            try:
                through = create_engine(proxied_url(url, proxy))
                async with through.connect() as conn:
                    await conn.execute(text("SELECT 1"))
                    proxy.cut()  # the live connection is reset under it
                    with pytest.raises(Exception) as reset:
                        await conn.execute(text("SELECT 1"))
                await through.dispose()
            finally:
                proxy.stop()
            errors = [reset.value]
            engine = create_engine(refused)
            with pytest.raises(Exception) as down:
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
            await engine.dispose()
            errors.append(down.value)
        else:
            path = make_url(svc.settings.database_url).database
            holder = sqlite3.connect(str(path), isolation_level=None)
            holder.execute("BEGIN EXCLUSIVE")
            engine = create_engine(svc.settings.database_url)
            event.listen(engine.sync_engine, "connect", lambda c, _: c.cursor().execute("PRAGMA busy_timeout=50"))
            try:
                with pytest.raises(DBAPIError) as down:
                    async with engine.begin() as conn:
                        await conn.execute(text("INSERT INTO demo_applied (event_id, account_id) VALUES ('y', 'a')"))
            finally:
                holder.execute("ROLLBACK")
                holder.close()
                await engine.dispose()
            assert "locked" in str(down.value)
            errors = [down.value]
        for error in errors:
            assert is_infrastructure_error(error), repr(error)


# --- a schema error: bounded retries, DLQ, and the other events go on ---------------------------------------

async def test_a_missing_table_ends_in_the_dlq_after_bounded_retries_while_other_events_apply(
        demo_service: Any, kafka: Any) -> None:
    async def handle(session: AsyncSession, event_: CloudEvent) -> None:
        """Notes go to demo_notes; every other event to demo_applied (the table this test drops)."""
        if event_.data["name"] == "note":
            session.add(demo.Note(id=event_.id, account_id=event_.subject, text="n"))
        else:
            await demo.apply_event(session, event_)

    def note(account: str, seq: int) -> CloudEvent:
        return ev(account, seq, name="note")

    async with demo_service(run_consumers=False) as svc:
        failures: list[str] = []
        event.listen(svc.ctx.engine.sync_engine, "handle_error",
                     lambda ctx: failures.append(str(ctx.original_exception)))
        async with svc.ctx.engine.begin() as conn:
            await conn.execute(text("DROP TABLE demo_applied"))
        consumer = EventConsumer(name="schema-consumer", topics=[LIFECYCLE_TOPIC],
                                 bootstrap=svc.settings.kafka_bootstrap_servers,
                                 session_factory=svc.ctx.session_factory, infra=svc.ctx.infra, handler=handle,
                                 topic_prefix=svc.settings.kafka_topic_prefix, dlq_producer=svc.ctx.producer,
                                 max_retries=2, retry_backoff=0.01)
        task = asyncio.create_task(consumer.run())
        try:
            lost, notes = [ev("s1", 1), ev("s1", 3)], [note("s1", 2), note("s1", 4)]
            await kafka.publish(LIFECYCLE_TOPIC, [lost[0], notes[0], lost[1], notes[1]], key="s1")

            dlq = await eventually(lambda: _dlq_at_least(kafka, 2), timeout=60,
                                   message="the events of the missing table dead-lettered")
            await eventually(lambda: _notes(svc, {n.id for n in notes}), timeout=30,
                             message="the events around them applied")
            assert sorted(CloudEvent.from_bytes(r.value).id for r in dlq) == sorted(e.id for e in lost)
            for r in dlq:
                error = dict(r.headers)["dlq_error"].decode()
                assert error.startswith("handler failed:") and "demo_applied" in error, error
            # Bounded: the batch gets 1 + max_retries tries, then halves one try each, then each failing event
            # 1 + max_retries alone. A wait (the old classification of SQLite's "no such table") never ends.
            tries = len(failures)
            assert 2 * (1 + 2) <= tries <= (1 + 2) + 2 * (2 + 1 + 2), failures
            assert all("demo_applied" in f for f in failures), failures

            # Consumption goes on, and the dead-lettered events are not tried again.
            later = note("s2", 5)
            await kafka.publish(LIFECYCLE_TOPIC, [later])
            await eventually(lambda: _notes(svc, {n.id for n in [*notes, later]}), timeout=30)
            assert len(failures) == tries, "a dead-lettered event was tried again"
            assert consumer.stats["dlq"] == 2 and consumer.stats["restarts"] == 0
            assert len(await dlq_records(kafka)) == 2
            healthy, detail = consumer.readiness()
            assert healthy and detail == {}, detail
        finally:
            consumer.stop()
            await asyncio.wait_for(task, 30)


async def _notes(svc: Any, ids: set[str]) -> bool:
    async with svc.ctx.session_factory() as s:
        return ids <= set((await s.execute(select(demo.Note.id))).scalars())


async def _assigned(consumer: EventConsumer) -> bool:
    return bool(consumer.kafka.assignment())


async def _has(svc: Any, ids: set[str]) -> bool:
    return ids <= await applied_ids(svc)


# --- a real outage: waited out, visible as a stuck partition, nothing dead-lettered or lost -------------

@contextlib.asynccontextmanager
async def outage_service(demo_service: Any, database_factory: Any) -> AsyncIterator[tuple[Any, Callable[[], Any]]]:
    """A demo service and a function that starts a real database outage for it (returns its end).

    SQLite: another connection holds the file with ``BEGIN EXCLUSIVE``; the service's connections get a short
    busy timeout so they see "database is locked" instead of blocking 30 s. PostgreSQL: the service reaches its
    database through a TCP proxy, which is cut (connections reset, new ones refused)."""
    url = database_factory.empty("demo")
    if not url.startswith("postgresql"):
        async with demo_service(run_relay=False, database_url=url) as svc:
            event.listen(svc.ctx.engine.sync_engine, "connect",
                         lambda c, _: c.cursor().execute("PRAGMA busy_timeout=100"))
            await svc.ctx.engine.dispose()  # the pooled connections keep 30 s; new ones get 100 ms

            def lock() -> Callable[[], None]:
                holder = sqlite3.connect(str(make_url(url).database), isolation_level=None)
                holder.execute("BEGIN EXCLUSIVE")

                def release() -> None:
                    holder.execute("ROLLBACK")
                    holder.close()
                return release

            yield svc, lock
        return
    proxy = TcpProxy(*database_endpoint(url)).start()
    try:
        async with demo_service(run_relay=False, database_url=proxied_url(url, proxy)) as svc:
            def cut() -> Callable[[], None]:
                proxy.cut()
                return proxy.restore

            yield svc, cut
    finally:
        proxy.stop()


async def test_a_database_outage_is_waited_out_shows_as_stuck_and_loses_nothing(
        demo_service: Any, database_factory: Any, kafka: Any) -> None:
    events = [ev(f"o{i % 5}", i) for i in range(40)]
    async with outage_service(demo_service, database_factory) as (svc, start_outage):
        consumer = svc.ctx.consumers[0]
        consumer.stuck_after = 2.0
        await eventually(lambda: _assigned(consumer), timeout=30)
        prefix = svc.settings.kafka_topic_prefix
        before = await committed(consumer, prefix)
        end_outage = start_outage()
        try:
            await kafka.publish(LIFECYCLE_TOPIC, events)

            async def stuck_in_readyz() -> dict[str, Any] | None:
                r = await svc.client.get("/readyz")
                detail = r.json().get("consumers", {}).get(CONSUMER, {})
                ok = r.status_code == 503 and r.json()["checks"][f"consumer:{CONSUMER}"] == "degraded"
                return detail if ok and detail.get("stuck_partitions") and "waiting_for_database" in detail else None

            detail = await eventually(stuck_in_readyz, timeout=60, message="the outage shows in /readyz")
            stuck = detail["stuck_partitions"]
            assert {p["topic"] for p in stuck} == {prefix + LIFECYCLE_TOPIC}
            assert all(p["lag"] > 0 and p["seconds_since_progress"] >= 2.0 for p in stuck), stuck
            waiting = detail["waiting_for_database"]["error"].lower()
            assert any(word in waiting for word in ("locked", "connect", "closed", "reset", "refused")), waiting

            metrics = (await svc.client.get("/metrics")).text
            assert (metric(metrics, "consumer_stuck_partitions", consumer=CONSUMER) or 0) >= 1, metrics
            since = [metric(metrics, "consumer_seconds_since_progress", consumer=CONSUMER,
                            topic=p["topic"], partition=str(p["partition"])) for p in stuck]
            assert all(s is not None and s >= 2.0 for s in since), since
            # Waited out, not handled: no offset moved, nothing dead-lettered.
            assert await committed(consumer, prefix) == before
            assert consumer.stats["dlq"] == 0 and consumer.stats["applied"] == 0
        finally:
            end_outage()

        await eventually(lambda: _has(svc, {e.id for e in events}), timeout=60, message="applied after the outage")
        assert len(await applied_ids(svc)) == len(events)

        async def healthy_again() -> bool:
            r = await svc.client.get("/readyz")
            return r.status_code == 200 and CONSUMER not in r.json().get("consumers", {})

        await eventually(healthy_again, timeout=30, message="readiness recovers")
        metrics = (await svc.client.get("/metrics")).text
        assert metric(metrics, "consumer_stuck_partitions", consumer=CONSUMER) == 0
        assert consumer.stats["dlq"] == 0 and consumer.stats["restarts"] == 0
        assert await dlq_records(kafka) == []


# --- the DLQ itself failing: bounded, visible, and the partition is held before the message --------------

@pytest.mark.parametrize("case", ["handler poison", "undecodable"])
async def test_a_failing_dlq_is_bounded_visible_and_holds_the_partition_before_the_message(
        demo_service: Any, kafka: Any, case: str) -> None:
    first, poison, after = ev("d1", 1), ev("d1", 2, name=demo.POISON_NAME), ev("d1", 3)
    if case == "handler poison":  # the message before it is applied, the poison fails in the handler
        messages: list[Any] = [first, poison, after]
        applied_meanwhile, dead_value = {first.id}, poison.to_bytes()
    else:  # a message that cannot be decoded goes to the DLQ before the batch is applied
        messages = [b"{not json", after]
        applied_meanwhile, dead_value = set(), b"{not json"
    async with demo_service(run_relay=False, consumer_max_retries=0) as svc:
        consumer = svc.ctx.consumers[0]
        await eventually(lambda: _assigned(consumer), timeout=30)
        working = consumer.dlq.producer
        # The DLQ producer points at a broker that is not there: every send times out.
        dead = AIOKafkaProducer(bootstrap_servers=f"127.0.0.1:{free_port()}")
        consumer.dlq.producer = dead
        consumer.dlq.timeout, consumer.dlq.attempts, consumer.dlq_pause = 0.5, 2, 0.5
        try:
            await kafka.publish(LIFECYCLE_TOPIC, messages, key="d1")

            async def dlq_failing_in_readyz() -> dict[str, Any] | None:
                r = await svc.client.get("/readyz")
                detail = r.json().get("consumers", {}).get(CONSUMER, {})
                return detail["dlq_failing"] if r.status_code == 503 and "dlq_failing" in detail else None

            failing = await eventually(dlq_failing_in_readyz, timeout=60, message="the failing DLQ in /readyz")
            assert "Timeout" in failing["error"], failing
            prefix = svc.settings.kafka_topic_prefix
            assert failing["held_back"]["topic"] == prefix + LIFECYCLE_TOPIC

            async def failures(n: int) -> float | None:
                text_ = (await svc.client.get("/metrics")).text
                value = metric(text_, "dlq_publish_failures_total", consumer=CONSUMER, topic=prefix + LIFECYCLE_TOPIC)
                return value if value is not None and value >= n else None

            # Bounded per round (2 attempts), rounds go on: the count keeps rising, never a silent loop.
            await eventually(lambda: failures(4), timeout=60, message="several bounded rounds counted")
            # What came before the refused message is applied and committed; the partition is held at it.
            assert await applied_ids(svc) == applied_meanwhile
            tp = TopicPartition(prefix + LIFECYCLE_TOPIC, failing["held_back"]["partition"])
            assert await consumer.kafka.committed(tp) == failing["held_back"]["offset"]
            assert consumer.stats["dlq"] == 0
        finally:
            consumer.dlq.producer = working
            await dead.stop()

        await eventually(lambda: _has(svc, applied_meanwhile | {after.id}), timeout=60,
                         message="the partition moves on")
        dlq = await dlq_records(kafka)
        assert [r.value for r in dlq] == [dead_value]  # dead-lettered once, however many rounds failed

        async def ready() -> bool:
            return (await svc.client.get("/readyz")).status_code == 200

        await eventually(ready, timeout=30, message="readiness recovers once the DLQ answers")
        assert await consumer.kafka.committed(tp) == failing["held_back"]["offset"] + 2
        assert await applied_ids(svc) == applied_meanwhile | {after.id}
        assert consumer.stats["restarts"] == 0


# --- a decoder bug on one message -------------------------------------------------------------------------

async def test_a_decoder_that_raises_dead_letters_that_message_and_consumption_goes_on(
        demo_service: Any, kafka: Any) -> None:
    def decode(raw: bytes | None, topic: str) -> Any:
        if raw == b"trips-the-decoder":
            raise KeyError("a decoder bug")
        return decode_cloudevent(raw, topic)

    good = [ev("k1", 1), ev("k1", 2)]
    async with demo_service(run_consumers=False) as svc:
        consumer = EventConsumer(name="decoder-consumer", topics=[LIFECYCLE_TOPIC],
                                 bootstrap=svc.settings.kafka_bootstrap_servers,
                                 session_factory=svc.ctx.session_factory,
                                 infra=svc.ctx.infra, batch_handler=demo.apply_batch, decode=decode,
                                 topic_prefix=svc.settings.kafka_topic_prefix, dlq_producer=svc.ctx.producer)
        task = asyncio.create_task(consumer.run())
        try:
            await kafka.publish(LIFECYCLE_TOPIC, [good[0], b"trips-the-decoder", good[1]], key="k1")
            dlq = await eventually(lambda: _dlq_at_least(kafka, 1), timeout=60, message="the message dead-lettered")
            await eventually(lambda: _has(svc, {e.id for e in good}), timeout=30)
            assert [r.value for r in dlq] == [b"trips-the-decoder"]
            assert dict(dlq[0].headers)["dlq_error"].decode().startswith("decoder failed: KeyError")
            assert consumer.stats["restarts"] == 0 and consumer.stats["dlq"] == 1
        finally:
            consumer.stop()
            await asyncio.wait_for(task, 30)


async def _dlq_at_least(kafka: Any, n: int) -> list[Any] | None:
    records = await dlq_records(kafka)
    return records if len(records) >= n else None

