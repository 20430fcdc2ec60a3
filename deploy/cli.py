"""``postsales``: the operations CLI of the suite (DLQ, outbox backlog, consumer lag, tokens, recompute, alerts).

Kafka commands read ``KAFKA_BOOTSTRAP_SERVERS`` and ``KAFKA_TOPIC_PREFIX`` like the services do; HTTP commands
take ``--token`` or ``POSTSALES_TOKEN``. Tokens are never printed, except by ``hash-token`` which makes them.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import json
import logging
import secrets
import sys
import time
from collections.abc import Coroutine
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar

import httpx
import typer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from shared.db import create_engine, infra_tables, service_metadata, utcnow
from shared.events.registry import TOPICS, dlq_topic
from shared.settings import SCOPES, hash_token

SERVICES = ("handoff", "lifecycle", "metrics", "notifier")
DLQ_HEADER_PREFIX = "dlq_"
REPLAY_GROUP = "postsales-dlq-replay"
READ_STDIN = "-"

app = typer.Typer(name="postsales", help="Operations CLI of the post-sales suite: DLQ, outbox backlog, consumer "
                  "lag, API tokens, metrics recompute, alerts.", no_args_is_help=True, add_completion=False)
dlq_app = typer.Typer(help="Inspect and replay dead-letter topics (<topic>.dlq).", no_args_is_help=True)
alerts_app = typer.Typer(help="Follow the notifier's alerts.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
app.add_typer(alerts_app, name="alerts")

Bootstrap = Annotated[str, typer.Option("--bootstrap", envvar="KAFKA_BOOTSTRAP_SERVERS",
                                        help="Kafka bootstrap servers.")]
Prefix = Annotated[str, typer.Option("--prefix", envvar="KAFKA_TOPIC_PREFIX",
                                     help="Topic prefix of the deployment.")]
JsonOut = Annotated[bool, typer.Option("--json", help="One JSON object per line instead of a table.")]
Token = Annotated[str | None, typer.Option("--token", envvar="POSTSALES_TOKEN", show_envvar=True,
                                           help="API token (prefer the environment variable).")]

T = TypeVar("T")


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a Kafka/database coroutine; broker errors become a one-line message and exit code 1."""
    # aiokafka logs connection tracebacks on its own; the command reports the failure itself.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        return asyncio.run(coro)
    except KafkaError as exc:
        raise fail(f"Kafka: {type(exc).__name__}: {exc}") from None


def logical_topic(topic: str) -> str:
    topic = topic.removesuffix(".dlq")
    if topic not in TOPICS:
        raise fail(f"unknown topic '{topic}'; one of: {', '.join(TOPICS)}", code=2)
    return topic


def table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    cells = [[("" if r.get(c) is None else str(r.get(c))) for c in columns] for r in rows]
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def emit(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r, default=str))
    else:
        table(rows, columns)


# --- DLQ -------------------------------------------------------------------------------------------

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


async def _topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    await consumer._client.force_metadata_update()
    return [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]


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
        tps = await _topic_partitions(consumer, topic)
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


@dlq_app.command("list")
def dlq_list(
    topic: Annotated[str, typer.Argument(help="The topic whose DLQ to read, e.g. postsales.usage.v1.")],
    bootstrap: Bootstrap = "127.0.0.1:9092", prefix: Prefix = "",
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many (oldest first).")] = 100,
    pending: Annotated[bool, typer.Option("--pending", help="Only messages not replayed yet.")] = False,
    group: Annotated[str, typer.Option(help="The replay consumer group.")] = REPLAY_GROUP,
    as_json: JsonOut = False,
) -> None:
    """List the messages on <topic>.dlq with their error, original coordinates, consumer and event."""
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


@dlq_app.command("replay")
def dlq_replay(
    topic: Annotated[str, typer.Argument(help="The topic whose DLQ to replay, e.g. postsales.usage.v1.")],
    bootstrap: Bootstrap = "127.0.0.1:9092", prefix: Prefix = "",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show what would be replayed; change nothing.")] = False,
    group: Annotated[str, typer.Option(help="Consumer group that remembers what was replayed.")] = REPLAY_GROUP,
) -> None:
    """Republish each not-yet-replayed <topic>.dlq message (value, key, headers) to its original topic.

    The replay group's offset is committed after each publish, so a second replay sends nothing again;
    consumers drop events they already applied (dedup by event id), so replaying is safe.
    """
    logical = logical_topic(topic)
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


# --- outbox backlog and consumer lag ---------------------------------------------------------------

@dataclass
class Backlog:
    service: str
    pending: int | None = None
    failing: int | None = None
    oldest_age_seconds: float | None = None
    last_error: str | None = None
    error: str | None = None


def database_url(service: str) -> str:
    """The service's database URL, read from the environment by the service's own settings class."""
    settings_mod = importlib.import_module(f"services.{service}.settings")
    url = str(settings_mod.Settings().effective_database_url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").exists():
        raise ValueError(f"no database at {parsed.database} (set DATABASE_URL or migrate first)")
    return url


async def outbox_backlog(service: str, url: str) -> Backlog:
    outbox = infra_tables(service_metadata()).outbox
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            pending = outbox.c.published_at.is_(None)
            count, failing, oldest = (await conn.execute(select(
                func.count(), func.count().filter(outbox.c.attempts > 0), func.min(outbox.c.created_at),
            ).where(pending))).one()
            last_error = (await conn.execute(
                select(outbox.c.last_error).where(pending, outbox.c.last_error.is_not(None))
                .order_by(outbox.c.id.desc()).limit(1))).scalar_one_or_none()
    except Exception as exc:
        return Backlog(service, error=f"database: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    finally:
        await engine.dispose()
    age = round((utcnow() - oldest).total_seconds(), 1) if oldest is not None else None
    return Backlog(service, pending=int(count), failing=int(failing), oldest_age_seconds=age,
                   last_error=last_error[:200] if last_error else None)


@app.command()
def outbox(
    service: Annotated[list[str] | None, typer.Option(help="Only this service (repeatable).")] = None,
    as_json: JsonOut = False,
) -> None:
    """Outbox backlog per service: unpublished events, how many failed to publish, the oldest one's age.

    Each service's database is found as the service finds it: DATABASE_URL or <SERVICE>_DATABASE_URL.
    """
    names = service or list(SERVICES)
    unknown = set(names) - set(SERVICES)
    if unknown:
        raise fail(f"unknown service(s) {sorted(unknown)}; one of: {', '.join(SERVICES)}", code=2)

    urls: dict[str, str] = {}
    broken: dict[str, Backlog] = {}
    for name in names:
        try:
            urls[name] = database_url(name)
        except Exception as exc:
            broken[name] = Backlog(name, error=f"configuration: {exc}")

    async def go() -> dict[str, Backlog]:
        found = await asyncio.gather(*(outbox_backlog(n, u) for n, u in urls.items()))
        return {b.service: b for b in found}

    found = run(go()) | broken
    rows = [found[n] for n in names]
    emit([asdict(r) for r in rows], ["service", "pending", "failing", "oldest_age_seconds", "last_error", "error"],
         as_json)
    if any(r.error for r in rows):
        raise typer.Exit(1)


@dataclass
class Lag:
    group: str
    topic: str
    partition: int
    committed: int
    end: int
    lag: int


async def consumer_lag(bootstrap: str, prefix: str, groups: list[str]) -> list[Lag]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    try:
        await admin.start()
        await probe.start()
        if not groups:
            try:
                groups = sorted({str(g[0]) for g in await admin.list_consumer_groups()})
            except KafkaError as exc:
                raise fail(f"the broker cannot list consumer groups ({exc}); name them with --group") from None
        ours = prefix + "postsales."
        topics = sorted(t for t in await admin.list_topics() if t.startswith(ours))
        tps = [tp for t in topics for tp in await _topic_partitions(probe, t)]
        if not tps:
            return []
        end = await probe.end_offsets(tps)
        lags: list[Lag] = []
        for group in groups:
            # Asking for the partitions explicitly works on every broker (Tansu mis-answers "all partitions").
            try:
                offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
            except KafkaError as exc:
                typer.echo(f"warning: offsets of group {group} unavailable ({type(exc).__name__})", err=True)
                continue
            for tp, meta in sorted(offsets.items(), key=lambda i: (i[0].topic, i[0].partition)):
                if meta.offset >= 0:
                    lags.append(Lag(group, tp.topic.removeprefix(prefix), tp.partition, meta.offset, end[tp],
                                    max(0, end[tp] - meta.offset)))
        return lags
    finally:
        await probe.stop()
        await admin.close()


@app.command()
def lag(
    bootstrap: Bootstrap = "127.0.0.1:9092", prefix: Prefix = "",
    group: Annotated[list[str] | None, typer.Option(
        help="Consumer group (repeatable); default: every group with offsets on the suite's topics.")] = None,
    as_json: JsonOut = False,
) -> None:
    """Consumer lag per group and partition (end offset minus committed offset), with a total per group."""
    rows = run(consumer_lag(bootstrap, prefix, list(group or [])))
    emit([asdict(r) for r in rows], ["group", "topic", "partition", "committed", "end", "lag"], as_json)
    if not as_json:
        totals: dict[str, int] = {}
        for r in rows:
            totals[r.group] = totals.get(r.group, 0) + r.lag
        for g, total in totals.items():
            typer.echo(f"total lag {g}: {total}", err=True)
        if not rows:
            typer.echo(f"no committed offsets on {prefix}postsales.* topics", err=True)


# --- tokens ----------------------------------------------------------------------------------------

@app.command("hash-token")
def hash_token_cmd(
    token: Annotated[str | None, typer.Argument(
        help="The token to hash ('-' reads it from stdin); a strong one is generated when omitted.")] = None,
    scope: Annotated[list[str] | None, typer.Option(help="Print a POSTSALES_API_KEYS entry with these scopes.")]
    = None,
) -> None:
    """Print sha256:<hex> of a token, the form to put in POSTSALES_API_KEYS (the token itself stays secret)."""
    unknown = set(scope or []) - SCOPES
    if unknown:
        raise fail(f"unknown scope(s) {sorted(unknown)}; one of: {', '.join(sorted(SCOPES))}", code=2)
    if token == READ_STDIN:
        token = sys.stdin.readline().strip()
    generated = token is None
    if token is None:
        token = "ps_" + secrets.token_urlsafe(32)
    elif len(token) < 16:
        raise fail("tokens must have at least 16 characters (the services refuse shorter ones)", code=2)
    digest = hash_token(token)
    if generated:
        typer.echo(f"token: {token}")
        typer.echo(f"hash:  {digest}")
    else:
        typer.echo(digest)
    if scope:
        typer.echo(f"POSTSALES_API_KEYS entry: {json.dumps({digest: scope})}")


# --- HTTP commands ---------------------------------------------------------------------------------

def http_client(url: str, token: str | None) -> httpx.Client:
    if not token:
        raise fail("no token: pass --token or set POSTSALES_TOKEN", code=2)
    return httpx.Client(base_url=url.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=60)


def problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}"
    detail = body.get("detail") or body.get("title") or ""
    errors = "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in body.get("errors") or [])
    return f"HTTP {response.status_code}: {detail}" + (f" ({errors})" if errors else "")


def parse_date(value: str, option: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} must be a date like 2026-11-01, not '{value}'", code=2) from None


@app.command()
def recompute(
    from_: Annotated[str, typer.Option("--from", help="First UTC day (YYYY-MM-DD), inclusive.")],
    to: Annotated[str, typer.Option("--to", help="Last UTC day (YYYY-MM-DD), inclusive.")],
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
    url: Annotated[str, typer.Option(envvar="POSTSALES_METRICS_URL", help="The metrics service.")]
    = "http://127.0.0.1:8003",
    token: Token = None,
) -> None:
    """Rebuild the metrics service's daily rollups for a period from the raw events and re-score health."""
    start, end = parse_date(from_, "--from"), parse_date(to, "--to")
    if start > end:
        raise fail("--from must not be after --to", code=2)
    body: dict[str, Any] = {"from": start.isoformat(), "to": end.isoformat()}
    if account:
        body["account_id"] = account
    try:
        with http_client(url, token) as client:
            response = client.post("/v1/recompute", json=body)
    except httpx.HTTPError as exc:
        raise fail(f"metrics service at {url}: {type(exc).__name__}: {exc}") from None
    if response.status_code >= 400:
        raise fail(f"recompute refused: {problem(response)}")
    typer.echo(json.dumps(response.json(), indent=2))


def alert_line(alert: dict[str, Any]) -> str:
    return "  ".join(str(alert.get(k) or "-") for k in
                     ("created_at", "status", "severity", "subject", "rule_name", "id", "summary"))


def fetch_new_alerts(client: httpx.Client, status: str | None, seen: set[str], page_size: int,
                     max_pages: int = 10) -> list[dict[str, Any]]:
    """Unseen alerts, oldest first; pages back (newest first) until a page holds one already seen."""
    params: dict[str, Any] = {"limit": page_size}
    if status:
        params["status"] = status
    fresh: list[dict[str, Any]] = []
    for _ in range(max_pages):
        response = client.get("/v1/alerts", params=params)
        if response.status_code >= 400:
            raise fail(f"listing alerts refused: {problem(response)}")
        body = response.json()
        items = [a for a in body.get("items", []) if isinstance(a, dict)]
        new = [a for a in items if a.get("id") not in seen]
        fresh.extend(new)
        if len(new) < len(items) or not body.get("next_cursor") or not seen:
            break
        params["cursor"] = body["next_cursor"]
    return list(reversed(fresh))


@alerts_app.command("tail")
def alerts_tail(
    url: Annotated[str, typer.Option(envvar="POSTSALES_NOTIFIER_URL", help="The notifier service.")]
    = "http://127.0.0.1:8004",
    token: Token = None,
    status: Annotated[str | None, typer.Option(help="firing, acknowledged or resolved.")] = None,
    backlog: Annotated[int, typer.Option(min=0, max=500, help="Existing alerts to show first (newest).")] = 10,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after printing this many alerts.")] = None,
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between polls.")] = 2.0,
    as_json: JsonOut = False,
) -> None:
    """Print alerts as they appear (polls GET /v1/alerts) until Ctrl-C or --count alerts were printed."""
    if status is not None and status not in ("firing", "acknowledged", "resolved"):
        raise fail("--status must be firing, acknowledged or resolved", code=2)
    seen: set[str] = set()
    printed = 0
    first = True
    with http_client(url, token) as client:
        try:
            while True:
                try:
                    alerts = fetch_new_alerts(client, status, seen, page_size=max(backlog, 100) if first else 100)
                except httpx.HTTPError as exc:
                    if first:
                        raise fail(f"notifier at {url}: {type(exc).__name__}: {exc}") from None
                    typer.echo(f"warning: notifier unreachable ({type(exc).__name__}); retrying", err=True)
                    alerts = []
                shown = alerts[-backlog:] if first and backlog else ([] if first else alerts)
                seen.update(str(a.get("id")) for a in alerts)
                for alert in shown:
                    typer.echo(json.dumps(alert) if as_json else alert_line(alert))
                    printed += 1
                    if count is not None and printed >= count:
                        return
                first = False
                time.sleep(interval)
        except KeyboardInterrupt:
            return


def main() -> None:
    app()


if __name__ == "__main__":
    main()

