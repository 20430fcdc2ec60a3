"""``make bench``: the metrics service's ingestion throughput against bare aiokafka, on one broker.

Measures, for N pre-built usage events (already serialised: no side pays for building them):
  1. a bare aiokafka producer publishing them (acks=all, the service's producer settings);
  2. a bare aiokafka consumer draining them (and the same plus ``json.loads`` per record);
  3. per database: the service's real usage consumer (EventConsumer + msgspec decoding + the batch
     handler, on a migrated database) draining the same events into raw rows and rollups;
  4. per database: the batch handler alone, fed the decoded events 1000 at a time with no Kafka in
     the way: the database path's own ceiling;
  5. ``POST /v1/events`` in batches of 1000 from 4 concurrent clients (httpx over ASGI, the real
     app) until every request is answered 202, i.e. every event acknowledged by the broker.
  6. per database: churn-risk training and scoring time on a full-size simulated book (bench/risk.py).
  7. the console's portfolio and account-360 render times with 1,000 accounts (``bench/console.py``).
Bare figures are the median of three runs. Prints each rate and the service/bare ratios (target >= 0.5).
Consumer clocks start when the group has its partitions (joining a group is a fixed cost of seconds,
not throughput).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bench.risk import report, risk_bench
from deploy.pgcheck import reachable
from services.metrics.app import MIGRATIONS, create_app
from services.metrics.models import UsageDaily
from services.metrics.settings import Settings
from services.metrics.usage.envelope import decode_usage
from services.metrics.usage.service import apply_usage_batch
from shared.app import ServiceContext
from shared.events.broker import EmbeddedBroker
from shared.events.envelope import CloudEvent
from shared.events.kafka import ensure_topics, make_producer
from shared.events.registry import TOPICS, USAGE_TOPIC, dlq_topic
from shared.migrations import upgrade
from shared.testing.helpers import KafkaProbe

TOKEN = "bench-admin-token-0123456789abcdef"
PG_URL = os.environ.get("BENCH_DATABASE_URL") or os.environ.get(
    "TEST_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
PARTITIONS = 4


def build_events(n: int, seed: int = 1) -> list[CloudEvent]:
    """A day of product usage from 200 accounts and 2,000 users, in time order, 2% arriving late."""
    rng = random.Random(seed)
    # Yesterday (UTC): inside the time bounds metrics accepts (at most 1 day ahead, 3 years old).
    start = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0) - dt.timedelta(days=1)

    def at(i: int) -> dt.datetime:
        if rng.random() < 0.02:
            return start - dt.timedelta(seconds=rng.randrange(3 * 86400))
        return start + dt.timedelta(seconds=86400 * i // n)

    return [CloudEvent.new(
        type=rng.choice(("usage.login", "usage.feature_used", "usage.report_run")), source="/bench",
        subject=f"acct-{rng.randrange(200)}", id=f"ev-{i}", time=at(i),
        data={"user_id": f"user-{rng.randrange(2000)}", "feature": rng.choice(("reports", "export", "api")),
              "quantity": rng.choice((1, 1, 1, 2))}) for i in range(n)]


async def topics_for(bootstrap: str, prefix: str) -> None:
    await ensure_topics(bootstrap, [prefix + t for t in TOPICS] + [prefix + dlq_topic(t) for t in TOPICS]
                        + [prefix + "scratch"], partitions=PARTITIONS)


async def bare_produce(bootstrap: str, topic: str, events: list[CloudEvent]) -> float:
    """Events per second a bare producer publishes, from bytes (as the HTTP clients post bytes)."""
    messages = [(e.to_bytes(), e.subject.encode()) for e in events]
    producer = make_producer(bootstrap, client_id="bench-bare")
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value=value, key=key) for value, key in messages]
        await asyncio.gather(*futures)
        return len(events) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def bare_consume(bootstrap: str, topic: str, n: int, *, decode: bool) -> float:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=f"bench-bare-{uuid.uuid4().hex[:6]}",
                                enable_auto_commit=False, auto_offset_reset="earliest",
                                max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_wait_ms=100)
    await consumer.start()
    try:
        while not consumer.assignment():  # noqa: ASYNC110 - polling a library's state
            await asyncio.sleep(0.002)
        started = time.perf_counter()
        seen = 0
        while seen < n:
            batch = await consumer.getmany(timeout_ms=200, max_records=1000)
            for records in batch.values():
                seen += len(records)
                if decode:
                    for r in records:
                        json.loads(r.value)
            if batch:
                await consumer.commit()
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()


def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


@contextlib.asynccontextmanager
async def database(backend: str, workdir: Path) -> AsyncIterator[str]:
    """A fresh migrated database; PostgreSQL ones are dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / f'metrics-{uuid.uuid4().hex[:6]}.db'}"
        _in_thread(upgrade, MIGRATIONS, url)
        yield url
        return
    base = make_url(PG_URL)
    name = f"metrics_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(host=base.host or "127.0.0.1", port=base.port or 5432,
                                  user=base.username or "postgres", password=base.password,
                                  database=base.database or "postgres")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = base.set(database=name).render_as_string(hide_password=False)
        _in_thread(upgrade, MIGRATIONS, url)
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@contextlib.asynccontextmanager
async def running(url: str, bootstrap: str, prefix: str, workdir: Path, **overrides: Any
                  ) -> AsyncIterator[tuple[Any, ServiceContext]]:
    settings = Settings(database_url=url, kafka_bootstrap_servers=bootstrap, kafka_topic_prefix=prefix,
                        kafka_topic_partitions=PARTITIONS, postsales_api_keys={TOKEN: ["admin"]},
                        postsales_data_dir=workdir, outbox_poll_interval=0.05, **overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app, app.state.ctx


async def service_drain(url: str, bootstrap: str, prefix: str, n: int, workdir: Path) -> tuple[float, int]:
    """Events per second the service's usage consumer turns into rollups; and the events counted."""
    # The health scorer is a periodic job whose cost follows the number of accounts, not events:
    # paused here so that the figure is the ingestion path's.
    async with running(url, bootstrap, prefix, workdir, health_interval=3600) as (_, ctx):
        consumer = next(c for c in ctx.consumers if c.name == "metrics-usage")
        while not consumer.kafka.assignment():  # noqa: ASYNC110 - polling a library's state
            await asyncio.sleep(0.002)
        started = time.perf_counter()
        while consumer.stats["applied"] + consumer.stats["duplicates"] + consumer.stats["dlq"] < n:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        async with ctx.session_factory() as s:
            counted = int((await s.execute(select(func.coalesce(func.sum(UsageDaily.event_count), 0)))).scalar_one())
        return n / elapsed, counted


async def handler_alone(url: str, bootstrap: str, events: list[CloudEvent], workdir: Path) -> float:
    """Events per second the usage batch handler writes, fed decoded batches of 1000 directly."""
    decoded = [decode_usage(e.to_bytes()) for e in events]
    async with running(url, bootstrap, f"a{uuid.uuid4().hex[:6]}.", workdir, run_consumers=False,
                       run_relay=False, health_interval=3600) as (_, ctx):
        started = time.perf_counter()
        for i in range(0, len(decoded), 1000):
            async with ctx.session_factory() as session, session.begin():
                await apply_usage_batch(session, decoded[i:i + 1000])
        return len(events) / (time.perf_counter() - started)


async def http_ingest(url: str, bootstrap: str, prefix: str, events: list[CloudEvent], workdir: Path,
                      concurrency: int = 4) -> float:
    """Events per second accepted by POST /v1/events: each 202 means the broker acknowledged them."""
    bodies = [("[" + ",".join(e.model_dump_json(exclude_none=True) for e in events[i:i + 1000]) + "]").encode()
              for i in range(0, len(events), 1000)]
    async with running(url, bootstrap, prefix, workdir, run_consumers=False) as (app, ctx):
        assert ctx.relay is not None
        await ctx.relay.started.wait()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                                   headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
                                   timeout=60)
        queue = list(reversed(bodies))

        async def worker() -> None:
            while queue:
                r = await client.post("/v1/events", content=queue.pop())
                if r.status_code != 202 or r.json()["rejected"]:
                    raise RuntimeError(f"ingest failed: {r.status_code} {r.text[:300]}")

        async with client:
            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            rate = len(events) / (time.perf_counter() - started)
    # Counted by reading, with a quiet period: the embedded broker's end offsets can lag.
    on_topic = len(await KafkaProbe(bootstrap, prefix).read_all(USAGE_TOPIC, settle=3, timeout=120))
    if on_topic != len(events):
        raise SystemExit(f"ingest: {on_topic} events on the topic, expected {len(events)}")
    return rate


def line(label: str, rate: float, base: float | None = None) -> str:
    ratio = f"   ratio {rate / base:5.2f}" if base else ""
    return f"  {label:<58} {rate:>10,.0f} ev/s{ratio}"


async def risk_section(backend: str, bootstrap: str, workdir: Path, accounts: int) -> None:
    async with database(backend, workdir) as url, running(url, bootstrap, f"r{uuid.uuid4().hex[:6]}.", workdir,
                                                          run_consumers=False, run_relay=False,
                                                          health_interval=3600, risk_check_interval=3600) as (_, ctx):
        for text in report(backend, await risk_bench(ctx, accounts, 18)):
            print(text)


async def main(n: int, *, risk_accounts: int = 200, risk_only: bool = False) -> None:
    backends = ["sqlite"] + (["postgresql"] if await reachable(PG_URL) else [])
    events = build_events(n)
    results: dict[str, dict[str, float]] = {}
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bootstrap = broker.bootstrap
        print(f"metrics bench: {n:,} usage events, embedded broker {bootstrap}, {PARTITIONS} partitions, "
              f"backends: {', '.join(backends)}")
        for backend in backends if not risk_only else []:
            # A fresh topic prefix per backend: the service's consumer group starts from offset 0 again.
            source = f"b{uuid.uuid4().hex[:6]}."
            await topics_for(bootstrap, source)
            r = results[backend] = {}
            # Bare runs are short and noisy: each is the median of three (the extra publishes go to
            # a scratch topic, so that the service drains exactly the N events).
            r["produce"] = statistics.median([await bare_produce(bootstrap, source + USAGE_TOPIC, events)] + [
                await bare_produce(bootstrap, source + "scratch", events) for _ in range(2)])
            r["drain"] = statistics.median([await bare_consume(bootstrap, source + USAGE_TOPIC, n, decode=False)
                                            for _ in range(3)])
            r["drain_json"] = statistics.median([await bare_consume(bootstrap, source + USAGE_TOPIC, n, decode=True)
                                                 for _ in range(3)])
            async with database(backend, workdir) as url:
                r["service"], counted = await service_drain(url, bootstrap, source, n, workdir)
            if counted != n:
                raise SystemExit(f"{backend}: rollups counted {counted} events, expected {n}")
            async with database(backend, workdir) as url:
                r["handler"] = await handler_alone(url, bootstrap, events, workdir)
            prefix = f"h{uuid.uuid4().hex[:6]}."
            await topics_for(bootstrap, prefix)
            async with database(backend, workdir) as url:
                r["ingest"] = await http_ingest(url, bootstrap, prefix, events, workdir)
            print(f"\n[{backend}]")
            print(line("bare aiokafka producer", r["produce"]))
            print(line("bare aiokafka consumer (drain)", r["drain"]))
            print(line("bare aiokafka consumer + json.loads per record", r["drain_json"]))
            print(line("service consumer -> raw events + rollups (vs bare drain)", r["service"], r["drain"]))
            print(line("  batch handler alone, no Kafka (the database path)", r["handler"], r["drain"]))
            print(line("POST /v1/events -> Kafka, acks=all (vs bare producer)", r["ingest"], r["produce"]))
        print("\nratios (service / bare), target >= 0.5:")
        for backend, r in results.items():
            print(f"  {backend:<10} consumer drain {r['service'] / r['drain']:.2f} "
                  f"(vs drain + json.loads {r['service'] / r['drain_json']:.2f})   "
                  f"HTTP ingest {r['ingest'] / r['produce']:.2f}")
        for backend in backends:
            await risk_section(backend, bootstrap, workdir, risk_accounts)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=50_000, help="number of usage events (default 50000)")
    parser.add_argument("--risk-accounts", type=int, default=200, help="accounts in the churn-risk book (200)")
    parser.add_argument("--risk-only", action="store_true", help="run only the churn-risk section")
    parser.add_argument("--console-accounts", type=int, default=1000, help="accounts for the console render bench")
    args = parser.parse_args()
    asyncio.run(main(args.events, risk_accounts=args.risk_accounts, risk_only=args.risk_only))
    if not args.risk_only:
        from bench.console import run as console_render  # the console's page render times (bench/console.py)

        asyncio.run(console_render(args.console_accounts))
