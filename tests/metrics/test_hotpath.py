"""The usage consumer keeps its offsets in the metrics database, and ``postsales lag`` reads them there."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

from sqlalchemy import select, update
from typer.testing import CliRunner

from deploy.cli import app as cli_app
from services.metrics.models import UsageDaily, UsageEventKey, UsageSegment, consumer_offsets
from shared.db import create_engine
from shared.events.registry import USAGE_TOPIC
from shared.testing import KafkaProbe, RunningService, eventually, make_event

DAY = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)


async def stored(svc: RunningService) -> dict[tuple[str, str, int], int]:
    async with svc.ctx.session_factory() as s:
        rows = (await s.execute(select(consumer_offsets.c.group, consumer_offsets.c.topic,
                                       consumer_offsets.c.partition, consumer_offsets.c.next_offset))).all()
    return {(g, t, p): o for g, t, p, o in rows}


async def ends(kafka: KafkaProbe) -> dict[tuple[str, int], int]:
    out: dict[tuple[str, int], int] = {}
    for r in await kafka.read_all(USAGE_TOPIC):
        out[(r.topic, r.partition)] = max(out.get((r.topic, r.partition), 0), r.offset + 1)
    return out


async def test_usage_offsets_are_stored_with_the_batches_and_the_same_event_at_a_new_offset_counts_once(
        service: Any, kafka: KafkaProbe) -> None:
    once = [make_event("usage.login", f"hp-{i % 3}", {"user_id": f"u{i}"}, id=f"hp-{i}", source="/product/web",
                       time=DAY) for i in range(30)]
    # A producer retry / outbox republish: the same source + id again, at new offsets (other partitions too,
    # keyed differently); and the same id from another source, which is another event.
    again = [make_event("usage.login", e.subject, dict(e.data), id=e.id, source=e.source, time=DAY) for e in once]
    other_source = make_event("usage.login", "hp-0", {"user_id": "m"}, id="hp-0", source="/product/mobile", time=DAY)
    async with service("metrics") as svc:
        group = svc.settings.kafka_topic_prefix + "metrics-usage"
        await kafka.publish(USAGE_TOPIC, once)
        await kafka.publish(USAGE_TOPIC, [*again, other_source], key="elsewhere")
        end = await ends(kafka)
        assert sum(end.values()) == 61

        async def at_end() -> bool:
            return await stored(svc) == {(group, t, p): o for (t, p), o in end.items()}

        await eventually(at_end, timeout=60, message="the stored offsets reach the end of every partition")
        async with svc.ctx.session_factory() as s:
            counted = (await s.execute(select(UsageDaily.account_id, UsageDaily.event_count)
                                       .order_by(UsageDaily.account_id))).all()
            raw = len((await s.execute(select(UsageEventKey.key))).all())
            segments = [(x.event_count, x.offsets) for x in (await s.execute(select(UsageSegment))).scalars()]
        assert raw == 31
        # Each segment records the offset range of the transaction that wrote it.
        assert sum(n for n, _ in segments) == 31
        partitions = {f"{t}:{p}": o for (t, p), o in end.items()}
        for _, offsets in segments:
            assert offsets and set(offsets) <= set(partitions)
            for tp, (first, last) in offsets.items():
                assert (first is None or 0 <= first <= last) and last < partitions[tp]
        assert [tuple(r) for r in counted] == [("hp-0", 11), ("hp-1", 10), ("hp-2", 10)]


async def test_lag_reads_the_stored_offsets_of_the_usage_consumer(
        service: Any, kafka: KafkaProbe, kafka_bootstrap: str, topic_prefix: str) -> None:
    events = [make_event("usage.login", f"lag-{i}", {"user_id": "u"}, id=f"lag-{i}", time=DAY) for i in range(12)]
    async with service("metrics") as svc:
        group = topic_prefix + "metrics-usage"
        await kafka.publish(USAGE_TOPIC, events)  # one batch per partition (lag reads true high watermarks)
        end = await ends(kafka)

        async def at_end() -> bool:
            return await stored(svc) == {(group, t, p): o for (t, p), o in end.items()}

        await eventually(at_end, timeout=60, message="the stored offsets reach the end")
        url = svc.settings.effective_database_url
    # The database says where the consumer resumes; here one partition was (say) restored from a backup
    # taken before its events, while the group's Kafka commit is at the end: lag shows what will be read.
    (topic, partition), last = next(iter(sorted(end.items())))
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(update(consumer_offsets).where(consumer_offsets.c.partition == partition)
                               .values(next_offset=0))
    finally:
        await engine.dispose()
    env = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "KAFKA_TOPIC_PREFIX": topic_prefix,
           "METRICS_DATABASE_URL": url}
    result = await asyncio.to_thread(CliRunner().invoke, cli_app, ["lag", "--json", "--group", group], env=env,
                                     catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {(r["topic"], r["partition"]): r for r in map(json.loads, result.stdout.splitlines()) if r}
    mine = {k: v for k, v in rows.items() if k[0] == USAGE_TOPIC}
    assert {p for _, p in mine} == {p for _, p in end}
    for (_, p), row in mine.items():
        assert row["source"] == "database"
        want = 0 if p == partition else end[(topic, p)]
        assert (row["committed"], row["end"], row["lag"]) == (want, end[(topic, p)], end[(topic, p)] - want)
    assert sum(r["lag"] for r in mine.values()) == last
