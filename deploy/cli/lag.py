"""``postsales lag``: consumer lag per group and partition on the suite's topics.

End offsets are the partitions' high watermarks as a Fetch reports them, not ListOffsets(latest):
the embedded broker (Tansu) answers ListOffsets with the last *batch*'s base offset + 1, so a
partition holding one 61-record batch showed END 1 against COMMITTED 61. A Fetch's high watermark is
right on Tansu and on Apache Kafka alike.

A consumer that keeps its offsets in its service's database (``consumer_offsets``: the metrics usage
consumer) resumes from those, not from its Kafka commit: lag is measured from them (``source`` database).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass
from typing import Annotated

import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from sqlalchemy import MetaData, inspect, select

from deploy.cli.common import SERVICES, Bootstrap, JsonOut, Prefix, emit, fail, kafka, run, topic_partitions
from deploy.cli.outbox import database_url
from shared.db import create_engine
from shared.events.consumer.offsets import consumer_offsets_table


@dataclass
class Lag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int
    lag: int
    source: str = "kafka"  # where ``committed`` comes from: the group's Kafka commit, or the service's database


async def stored_offsets() -> dict[tuple[str, str, int], int]:
    """Offsets consumers keep in their service's database (``consumer_offsets``), where there are any."""
    found: dict[tuple[str, str, int], int] = {}
    for service in SERVICES:
        try:
            url = database_url(service)
        except Exception:  # no database configured for it here: nothing stored to read
            url = None
        if url is None:
            continue
        try:
            found.update(await asyncio.wait_for(_read_stored_offsets(url), timeout=15))
        except Exception as exc:
            typer.echo(f"warning: stored offsets of {service} unavailable ({type(exc).__name__})", err=True)
    return found


async def _read_stored_offsets(url: str) -> dict[tuple[str, str, int], int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            if not await conn.run_sync(lambda c: inspect(c).has_table("consumer_offsets")):
                return {}
            t = consumer_offsets_table(MetaData())
            rows = (await conn.execute(select(t.c.group, t.c.topic, t.c.partition, t.c.next_offset))).all()
            return {(str(g), str(topic), int(p)): int(o) for g, topic, p, o in rows}
    finally:
        await engine.dispose()


async def high_watermarks(probe: AIOKafkaConsumer, tps: list[TopicPartition],
                          timeout: float = 15.0) -> dict[TopicPartition, int]:
    """Each partition's high watermark, from a Fetch starting at the (possibly low) ListOffsets answer."""
    listed = await probe.end_offsets(tps)
    probe.assign(tps)
    for tp in tps:
        probe.seek(tp, max(0, listed[tp] - 1))
    seen: dict[TopicPartition, int] = {}
    deadline = time.monotonic() + timeout
    while True:
        batch = await probe.getmany(*tps, timeout_ms=200)
        for tp, records in batch.items():
            if records:
                seen[tp] = max(seen.get(tp, 0), records[-1].offset + 1)
        marks = {tp: probe.highwater(tp) for tp in tps}
        if all(m is not None for m in marks.values()) or time.monotonic() > deadline:
            break
    missing = sorted(f"{tp.topic}[{tp.partition}]" for tp, m in marks.items() if m is None)
    if missing:
        raise fail(f"the broker reported no high watermark for {', '.join(missing)}")
    return {tp: max(int(marks[tp] or 0), seen.get(tp, 0), listed[tp]) for tp in tps}


async def consumer_lag(bootstrap: str, prefix: str, groups: list[str]) -> list[Lag]:
    stored = await stored_offsets()
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        await admin.start()
        await probe.start()
        if not groups:
            try:
                listed = {str(g[0]) for g in await admin.list_consumer_groups()}
            except KafkaError as exc:
                raise fail(f"the broker cannot list consumer groups ({exc}); name them with --group") from None
            groups = sorted(listed | {g for g, topic, _ in stored if topic.startswith(prefix + "postsales.")})
        ours = prefix + "postsales."
        topics = sorted(t for t in await admin.list_topics() if t.startswith(ours))
        tps = [tp for t in topics for tp in await topic_partitions(probe, t)]
        if not tps:
            return []
        end = await high_watermarks(probe, tps)
        lags: list[Lag] = []
        for group in groups:
            # Asking for the partitions explicitly works on every broker (Tansu mis-answers "all partitions").
            try:
                offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
            except KafkaError as exc:
                typer.echo(f"warning: offsets of group {group} unavailable ({type(exc).__name__})", err=True)
                offsets = {}
            for tp in sorted(tps, key=lambda tp: (tp.topic, tp.partition)):
                kept = stored.get((group, tp.topic, tp.partition))
                meta = offsets.get(tp)
                if kept is not None:
                    committed, source = kept, "database"
                elif meta is not None and meta.offset >= 0:
                    committed, source = meta.offset, "kafka"
                else:
                    continue
                lags.append(Lag(group, tp.topic.removeprefix(prefix), tp.partition, committed, end[tp],
                                max(0, end[tp] - committed), source))
        return lags
    finally:
        await probe.stop()
        await admin.close()


def lag(
    bootstrap: Bootstrap = None, prefix: Prefix = None,
    group: Annotated[list[str] | None, typer.Option(
        help="Consumer group (repeatable); default: every group with offsets on the suite's topics.")] = None,
    as_json: JsonOut = False,
) -> None:
    """Consumer lag per group and partition (end offset minus committed offset), with a total per group.

    A consumer that keeps its offsets in its service's database (the metrics usage consumer) is measured
    from those (``source`` database); its Kafka commit is then informational only.
    """
    bootstrap, prefix = kafka(bootstrap, prefix)
    rows = run(consumer_lag(bootstrap, prefix, list(group or [])))
    emit([asdict(r) for r in rows], ["group", "topic", "partition", "committed", "end", "lag", "source"], as_json)
    if not as_json:
        totals: dict[str, int] = {}
        for r in rows:
            totals[r.group] = totals.get(r.group, 0) + r.lag
        for g, total in totals.items():
            typer.echo(f"total lag {g}: {total}", err=True)
        if not rows:
            typer.echo(f"no committed offsets on {prefix}postsales.* topics", err=True)
