"""``postsales dlq``: inspect and replay dead-letter topics (``<topic>.dlq``)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Annotated, Any

import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from deploy.cli.common import Bootstrap, JsonOut, Prefix, emit, fail, kafka, logical_topic, run, topic_partitions
from shared.events.registry import dlq_topic

DLQ_HEADER_PREFIX = "dlq_"
REPLAY_GROUP = "postsales-dlq-replay"

app = typer.Typer(help="Inspect and replay dead-letter topics (<topic>.dlq).", no_args_is_help=True)


@dataclass
class DeadLetter:
    partition: int
    offset: int
    key: str | None
    event_id: str | None
    event_type: str | None
    error: str
    original_topic: str
    original_partition: int | None
    original_offset: int | None
    consumer: str
    replayed: bool


def _header(headers: dict[str, bytes], name: str) -> str:
    return headers.get(name, b"").decode(errors="replace")


def _as_int(value: str) -> int | None:
    return int(value) if value.lstrip("-").isdigit() else None


def dead_letter(record: Any, replayed_up_to: int | None) -> DeadLetter:
    headers = {k: v for k, v in (record.headers or [])}
    event_id = event_type = None
    try:
        body = json.loads(record.value)
        if isinstance(body, dict):
            event_id, event_type = body.get("id"), body.get("type")
    except (ValueError, TypeError):
        pass  # not JSON: exactly why some messages land here; the headers still tell the story
    return DeadLetter(
        partition=record.partition, offset=record.offset,
        key=record.key.decode(errors="replace") if record.key is not None else None,
        event_id=None if event_id is None else str(event_id),
        event_type=None if event_type is None else str(event_type),
        error=_header(headers, "dlq_error"), original_topic=_header(headers, "dlq_original_topic"),
        original_partition=_as_int(_header(headers, "dlq_original_partition")),
        original_offset=_as_int(_header(headers, "dlq_original_offset")),
        consumer=_header(headers, "dlq_consumer"),
        replayed=replayed_up_to is not None and record.offset < replayed_up_to,
    )


async def read_until_end(consumer: AIOKafkaConsumer, start: dict[TopicPartition, int],
                         end: dict[TopicPartition, int], timeout: float = 30.0) -> list[Any]:
    """Every record from ``start`` up to the ``end`` offsets taken before reading (a fixed snapshot)."""
    todo = {tp for tp in start if start[tp] < end[tp]}
    records: list[Any] = []
    if not todo:
        return records
    consumer.assign(sorted(todo, key=lambda tp: tp.partition))
    for tp in todo:
        consumer.seek(tp, start[tp])
    deadline = time.monotonic() + timeout
    while todo:
        if time.monotonic() > deadline:
            raise fail(f"timed out reading {sorted(tp.partition for tp in todo)} partitions")
        batch = await consumer.getmany(*todo, timeout_ms=200)
        for tp, recs in batch.items():
            records.extend(r for r in recs if r.offset < end[tp])
        for tp in list(todo):
            if await consumer.position(tp) >= end[tp]:
                todo.discard(tp)
    return records


async def _dlq_state(bootstrap: str, topic: str, group: str, committed_only: bool) -> tuple[
        AIOKafkaConsumer, dict[TopicPartition, int], dict[TopicPartition, int], dict[TopicPartition, int | None]]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    try:
        await consumer.start()
        tps = await topic_partitions(consumer, topic)
        if not tps:
            raise fail(f"topic '{topic}' does not exist (nothing was dead-lettered yet?)")
        committed: dict[TopicPartition, int | None] = {tp: await consumer.committed(tp) for tp in tps}
        beginning = await consumer.beginning_offsets(tps)
        end = await consumer.end_offsets(tps)
    except BaseException:
        await consumer.stop()
        raise
    start = {tp: max(committed[tp] or 0, beginning[tp]) if committed_only else beginning[tp] for tp in tps}
    return consumer, start, end, committed


@app.command("list")
def dlq_list(
    topic: Annotated[str, typer.Argument(help="The topic whose DLQ to read, e.g. postsales.usage.v1.")],
    bootstrap: Bootstrap = None, prefix: Prefix = None,
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many (oldest first).")] = 100,
    pending: Annotated[bool, typer.Option("--pending", help="Only messages not replayed yet.")] = False,
    group: Annotated[str, typer.Option(help="The replay consumer group.")] = REPLAY_GROUP,
    as_json: JsonOut = False,
) -> None:
    """List the messages on <topic>.dlq with their error, original coordinates, consumer and event."""
    bootstrap, prefix = kafka(bootstrap, prefix)
    name = prefix + dlq_topic(logical_topic(topic))

    async def go() -> list[DeadLetter]:
        consumer, start, end, committed = await _dlq_state(bootstrap, name, group, committed_only=pending)
        try:
            records = await read_until_end(consumer, start, end)
            letters = [dead_letter(r, committed[TopicPartition(name, r.partition)]) for r in records]
        finally:
            await consumer.stop()
        return letters

    letters = sorted(run(go()), key=lambda d: (d.partition, d.offset))
    rows = [asdict(d) for d in letters[:limit]]
    emit(rows, ["partition", "offset", "event_id", "event_type", "key", "original_topic", "original_partition",
                "original_offset", "consumer", "replayed", "error"], as_json)
    if not as_json:
        shown = f"{len(rows)} of {len(letters)}" if len(letters) > len(rows) else str(len(rows))
        typer.echo(f"{shown} message(s) on {name}", err=True)


@app.command("replay")
def dlq_replay(
    topic: Annotated[str, typer.Argument(help="The topic whose DLQ to replay, e.g. postsales.usage.v1.")],
    bootstrap: Bootstrap = None, prefix: Prefix = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be replayed; change nothing.")] = False,
    group: Annotated[str, typer.Option(help="Consumer group that remembers what was replayed.")] = REPLAY_GROUP,
) -> None:
    """Republish each not-yet-replayed <topic>.dlq message (value, key, headers) to its original topic.

    The replay group's offset is committed after each publish, so a second replay sends nothing again;
    consumers drop events they already applied (dedup by event id), so replaying is safe.
    """
    logical = logical_topic(topic)
    bootstrap, prefix = kafka(bootstrap, prefix)
    name = prefix + dlq_topic(logical)

    async def go() -> tuple[int, int]:
        consumer, start, end, _ = await _dlq_state(bootstrap, name, group, committed_only=True)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=False)
        replayed = skipped = 0
        sent: set[tuple[str, int | None, int | None]] = set()
        try:
            if not dry_run:
                await producer.start()
            for record in await read_until_end(consumer, start, end):
                letter = dead_letter(record, None)
                target = letter.original_topic or prefix + logical
                origin = (target, letter.original_partition, letter.original_offset)
                # Several consumer groups dead-letter the same poison message; the topic needs it once.
                duplicate = letter.original_offset is not None and origin in sent
                action = "skip (same original message)" if duplicate else "replay"
                typer.echo(f"{'would ' if dry_run else ''}{action} {name}[{letter.partition}]@{letter.offset} "
                           f"-> {target}: id={letter.event_id} type={letter.event_type}")
                if dry_run:
                    continue
                if duplicate:
                    skipped += 1
                else:
                    headers = [(k, v) for k, v in (record.headers or []) if not k.startswith(DLQ_HEADER_PREFIX)]
                    await producer.send_and_wait(target, value=record.value, key=record.key, headers=headers)
                    sent.add(origin)
                    replayed += 1
                await consumer.commit({TopicPartition(name, record.partition): record.offset + 1})
        finally:
            await producer.stop()
            await consumer.stop()
        return replayed, skipped

    replayed, skipped = run(go())
    if dry_run:
        typer.echo("dry run: nothing published, nothing committed", err=True)
    else:
        typer.echo(f"replayed {replayed} message(s) from {name}" + (f", skipped {skipped} duplicate(s)"
                                                                   if skipped else ""), err=True)
