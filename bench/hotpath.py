"""``make bench`` hot-path section: the metrics service's ingestion against bare aiokafka and the database floor.

In one run, on one embedded broker, for each workload (bench/workload.py) and each backend:

- a tuned bare aiokafka producer (acks=all, linger_ms=5, max_batch_size=256 KiB, from bytes): the baseline
  of HTTP ingest, and how each workload gets onto its topic;
- a bare aiokafka consumer draining the topic (bytes only), the median of three;
- the service's usage consumer (the real app, on a freshly migrated database) draining the same events
  into the usage tables; its clock starts when the group has its partitions and stops when every event
  is applied, and the rollups must then count every event;
- the database floor (bench/floor.py): the same durable writes by a bare driver loop;
- CPU seconds per event of this process (the service; for the floor: the driver loop), of the broker,
  and of PostgreSQL's processes (SQLite runs inside the service process);

then, per backend: ``POST /v1/events`` (batches of 1000, four concurrent clients, until every request is
answered 202, i.e. acknowledged by the broker) against the tuned producer; and the latency from an event
posted over HTTP to its being visible in ``GET /v1/accounts/{id}/usage`` while events are posted at half
the measured drain rate.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import multiprocessing
import queue
import statistics
import time
import uuid
from collections import defaultdict, deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import func, select

from bench import floor
from bench.cpu import Meter, Usage
from bench.workload import Workload, realistic
from services.metrics.app import MIGRATIONS, create_app
from services.metrics.models import UsageDaily
from services.metrics.settings import Settings
from shared.app import ServiceContext
from shared.events.kafka import ensure_topics
from shared.events.registry import TOPICS, USAGE_TOPIC, dlq_topic
from shared.migrations import upgrade
from shared.testing.helpers import KafkaProbe

TOKEN = "bench-admin-token-0123456789abcdef"
PARTITIONS = 4


# --- baselines -----------------------------------------------------------------------------------------

def tuned_producer(bootstrap: str) -> AIOKafkaProducer:
    """The baseline producer of issue #14: acks=all, linger 5 ms, 256 KiB batches."""
    return AIOKafkaProducer(bootstrap_servers=bootstrap, client_id="bench-bare", acks="all",
                            enable_idempotence=False, linger_ms=5, max_batch_size=256 * 1024)


async def bare_produce(bootstrap: str, topic: str, messages: Sequence[tuple[bytes, bytes]]) -> float:
    """Events per second a tuned bare producer publishes from bytes, acknowledged (acks=all)."""
    producer = tuned_producer(bootstrap)
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value=value, key=key) for key, value in messages]
        await asyncio.gather(*futures)
        return len(messages) / (time.perf_counter() - started)
    finally:
        await producer.stop()


async def bare_consume(bootstrap: str, topic: str, n: int) -> float:
    """Events per second a bare consumer drains (bytes only, a commit per getmany, as the service commits)."""
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
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            seen += sum(len(records) for records in batch.values())
            if batch:
                await consumer.commit()
        return n / (time.perf_counter() - started)
    finally:
        await consumer.stop()


# --- the service ---------------------------------------------------------------------------------------

def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


@contextlib.asynccontextmanager
async def database(backend: str, workdir: Path, pg_url: str) -> AsyncIterator[str]:
    """A fresh database migrated to the service's head; PostgreSQL ones are dropped afterwards."""
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{workdir / f'metrics-{uuid.uuid4().hex[:6]}.db'}"
        _in_thread(upgrade, MIGRATIONS, url)
        yield url
        return
    async with floor.pg_database(pg_url, "metrics_bench") as url:
        _in_thread(upgrade, MIGRATIONS, url)
        yield url


@contextlib.asynccontextmanager
async def running(url: str, bootstrap: str, prefix: str, workdir: Path, **overrides: Any
                  ) -> AsyncIterator[tuple[Any, ServiceContext[Settings]]]:
    """The metrics app, started (consumers, relay) against ``url`` and the broker."""
    settings = Settings(database_url=url, kafka_bootstrap_servers=bootstrap, kafka_topic_prefix=prefix,
                        kafka_topic_partitions=PARTITIONS, postsales_api_keys={TOKEN: ["admin"]},
                        postsales_data_dir=workdir, **overrides)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        yield app, app.state.ctx


async def topics_for(bootstrap: str, prefix: str) -> None:
    await ensure_topics(bootstrap, [prefix + t for t in TOPICS] + [prefix + dlq_topic(t) for t in TOPICS],
                        partitions=PARTITIONS)


def usage_consumer(ctx: ServiceContext[Settings]) -> Any:
    return next(c for c in ctx.consumers if c.name == "metrics-usage")


async def assigned(consumer: Any, timeout: float = 60) -> None:
    """Wait until the consumer has its partitions and its worker process (if it plans in one) is up: both
    are startup, not draining."""
    deadline = time.monotonic() + timeout
    worker = getattr(consumer, "worker", None)
    if worker is not None:
        worker.start()  # the first large batch would, and plan in the consumer while it starts
    while not consumer.kafka.assignment() or (worker is not None and worker.pid is None):
        if time.monotonic() > deadline:
            raise SystemExit("the usage consumer got no partitions" if not consumer.kafka.assignment()
                             else "the usage consumer's worker process did not start")
        await asyncio.sleep(0.002)


async def counted(ctx: ServiceContext[Settings]) -> int:
    async with ctx.session_factory() as s:
        return int((await s.execute(select(func.coalesce(func.sum(UsageDaily.event_count), 0)))).scalar_one())


def settled(consumer: Any) -> int | None:
    """Events the consumer has settled (applied, duplicate, dead-lettered), from its counters; None when it
    keeps none (the bench then reads the rollups)."""
    stats = getattr(consumer, "stats", None)
    try:
        return int(stats["applied"] + stats["duplicates"] + stats["dlq"])  # type: ignore[index]
    except (TypeError, KeyError):
        return None


@dataclass
class Drain:
    rate: float
    cpu: Usage
    events: int  # those drained while measured


async def service_drain(url: str, bootstrap: str, prefix: str, n: int, workdir: Path, *, broker_pid: int | None,
                        postgres: bool) -> Drain:
    """Events per second the service's usage consumer turns into the usage tables, and the CPU it took."""
    # The health scorer is a periodic job whose cost follows the number of accounts, not events:
    # paused here so that the figure is the ingestion path's.
    async with running(url, bootstrap, prefix, workdir, health_interval=3600) as (_, ctx):
        consumer = usage_consumer(ctx)
        await assigned(consumer)
        counters = settled(consumer) is not None

        async def progress() -> int:
            return settled(consumer) or 0 if counters else await counted(ctx)

        # The consumer starts on its partitions while its worker process starts: what it settled by then
        # is left out of the rate.
        before = await progress()
        worker = getattr(consumer, "worker", None)
        meter = Meter(broker_pid, postgres=postgres, helpers=[worker.pid] if worker is not None else [])
        started = time.perf_counter()
        deadline = started + 600
        while (done := await progress()) < n:
            if time.perf_counter() > deadline:
                raise SystemExit(f"the service drained {done} of {n} events in 10 minutes")
            await asyncio.sleep(0.005 if counters else 0.05)
        elapsed = time.perf_counter() - started
        cpu = meter.stop()
        got = await counted(ctx)
    dlq = (getattr(consumer, "stats", None) or {}).get("dlq", 0)
    if got != n or dlq:
        raise SystemExit(f"the rollups count {got} events (dead-lettered {dlq}), expected {n}")
    return Drain((n - before) / elapsed, cpu, n - before)


# --- HTTP ------------------------------------------------------------------------------------------------

def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench",
                             headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
                             timeout=60)


def _body(values: Sequence[bytes]) -> bytes:
    return b"[" + b",".join(values) + b"]"


async def http_ingest(url: str, bootstrap: str, workload: Workload, workdir: Path, *, broker_pid: int | None,
                      concurrency: int = 4) -> tuple[float, Usage]:
    """Events per second accepted by POST /v1/events: each 202 means the broker acknowledged them."""
    prefix = f"h{uuid.uuid4().hex[:6]}."
    await topics_for(bootstrap, prefix)
    values = [v for _, v in workload.messages]
    bodies = [_body(values[i:i + 1000]) for i in range(0, len(values), 1000)]
    async with running(url, bootstrap, prefix, workdir, run_consumers=False, health_interval=3600) as (app, ctx):
        assert ctx.relay is not None
        await ctx.relay.started.wait()
        queue = list(reversed(bodies))

        async def worker(client: httpx.AsyncClient) -> None:
            while queue:
                r = await client.post("/v1/events", content=queue.pop())
                if r.status_code != 202 or r.json()["rejected"]:
                    raise SystemExit(f"ingest failed: {r.status_code} {r.text[:300]}")

        async with _client(app) as client:
            meter = Meter(broker_pid, postgres=False)
            started = time.perf_counter()
            await asyncio.gather(*(worker(client) for _ in range(concurrency)))
            rate = len(values) / (time.perf_counter() - started)
            cpu = meter.stop()
    # Counted by reading, with a quiet period: the embedded broker's end offsets can lag.
    on_topic = len(await KafkaProbe(bootstrap, prefix).read_all(USAGE_TOPIC, settle=2, timeout=120))
    if on_topic != len(values):
        raise SystemExit(f"ingest: {on_topic} events on the topic, expected {len(values)}")
    return rate, cpu


@dataclass
class Latency:
    rate: float  # events per second offered
    posted: int
    samples: list[float] = field(default_factory=list)
    late_posts: int = 0  # posts that started more than 100 ms behind schedule
    retried: int = 0  # posts answered 503 and sent again
    achieved: float = 0.0  # events per second actually posted (acknowledged)

    after_ack: list[float] = field(default_factory=list)  # from the 202 to visible: the consumer's part

    def quantile(self, q: float, samples: list[float] | None = None) -> float:
        s = sorted(self.samples if samples is None else samples)
        return s[min(len(s) - 1, int(q * len(s)))] if s else float("nan")


def _posting_plan(n: int, batch: int, day: dt.date, watched: int) -> tuple[list[tuple[str, bytes, int]], set[str]]:
    """Requests of ``batch`` events of one account each, round robin over the accounts (every account is
    posted to all along): (account, body, events); and the ``watched`` busiest accounts."""
    w = realistic(n, seed=7, late=0.0, day=day)
    per_account: dict[str, list[bytes]] = defaultdict(list)
    for (_, value), row in zip(w.messages, w.rows, strict=True):
        per_account[row[2]].append(value)
    busiest = set(sorted(per_account, key=lambda a: -len(per_account[a]))[:watched])
    queues = {a: deque(vs[i:i + batch] for i in range(0, len(vs), batch)) for a, vs in per_account.items()}
    plan: list[tuple[str, bytes, int]] = []
    while queues:
        for account in list(queues):
            values = queues[account].popleft()
            plan.append((account, _body(values), len(values)))
            if not queues[account]:
                del queues[account]
    return plan, busiest


def _api_replica(url: str, bootstrap: str, prefix: str, workdir: str, n: int, rate: float, batch: int,
                 day: dt.date, watched: int, go: Any, out: Any) -> None:
    """A second process of the service with no consumers (an API replica): posts the plan to itself at
    ``rate`` events per second once ``go`` is set, and reports each post to a watched account on ``out``
    as (account, cumulative events, monotonic time sent)."""
    import logging

    logging.disable(logging.ERROR)  # its 503s are counted and retried, not logged
    settings = Settings(database_url=url, kafka_bootstrap_servers=bootstrap, kafka_topic_prefix=prefix,
                        kafka_topic_partitions=PARTITIONS, postsales_api_keys={TOKEN: ["admin"]},
                        postsales_data_dir=Path(workdir), run_consumers=False, health_interval=3600)
    plan, busiest = _posting_plan(n, batch, day, watched)

    async def main() -> None:
        app = create_app(settings)
        async with app.router.lifespan_context(app), _client(app) as client:
            await app.state.ctx.relay.started.wait()
            out.put(("ready",))
            while not go.wait(0):  # noqa: ASYNC110 - a multiprocessing event
                await asyncio.sleep(0.01)
            expected: dict[str, int] = defaultdict(int)
            late = retried = 0
            bad: list[int] = []
            in_flight = asyncio.Semaphore(16)  # as a client pool would: the replica is not buried in requests

            async def post(body: bytes, watch: tuple[str, int] | None) -> None:
                nonlocal retried
                try:
                    for _ in range(5):  # a 503 is the API's "retry the request" (events count once by id)
                        r = await client.post("/v1/events", content=body)
                        if r.status_code != 503:
                            break
                        retried += 1
                        await asyncio.sleep(0.2)
                    if r.status_code != 202:
                        bad.append(r.status_code)
                    elif watch is not None:
                        out.put(("acked", *watch, time.monotonic()))
                finally:
                    in_flight.release()

            posts = []
            started = time.monotonic()
            sent = 0
            for account, body, count in plan:
                due = started + sent / rate
                now = time.monotonic()
                if due > now:
                    await asyncio.sleep(due - now)
                elif now - due > 0.1:
                    late += 1
                await in_flight.acquire()
                sent += count
                expected[account] += count
                watch = (account, expected[account]) if account in busiest else None
                if watch is not None:
                    out.put(("sent", *watch, time.monotonic()))
                posts.append(asyncio.create_task(post(body, watch)))
            await asyncio.gather(*posts)
            out.put(("done", late, bad, retried, sent / (time.monotonic() - started)))

    asyncio.run(main())


async def _next(out: Any) -> Any:
    while True:
        with contextlib.suppress(queue.Empty):
            return out.get_nowait()
        await asyncio.sleep(0.01)


async def latency(url: str, bootstrap: str, workdir: Path, rate: float, *, seconds: float = 15.0,
                  batch: int = 200, poll: float = 0.1, watched: int = 8) -> Latency:
    """Events posted over HTTP at ``rate`` per second (open loop) to an API replica (a second process of the
    service, consumers off, posting to itself), each request one account's; per request to one of the
    ``watched`` busiest accounts, the time from sending it until ``GET /v1/accounts/{id}/usage`` on the
    consuming process shows the account's cumulative count (polled every ``poll`` s, so up to that much is
    the poll's own delay)."""
    today = dt.datetime.now(dt.UTC).date()
    n = max(batch, int(rate * seconds))
    prefix = f"l{uuid.uuid4().hex[:6]}."
    await topics_for(bootstrap, prefix)
    result = Latency(rate=rate, posted=n)
    mp = multiprocessing.get_context("spawn")
    go, out = mp.Event(), mp.Queue()
    replica = mp.Process(target=_api_replica, daemon=True,
                         args=(url, bootstrap, prefix, str(workdir), n, rate, batch, today, watched, go, out))
    replica.start()
    try:
        async with (running(url, bootstrap, prefix, workdir, health_interval=3600, run_relay=False) as (app, ctx),
                    _client(app) as reader):
            if (await asyncio.wait_for(_next(out), 120))[0] != "ready":
                raise SystemExit("latency: the API replica did not start")
            await assigned(usage_consumer(ctx))
            go.set()
            pending: dict[str, deque[tuple[int, float]]] = defaultdict(deque)
            acked: dict[tuple[str, int], float] = {}
            visible: dict[tuple[str, int], float] = {}
            done = False

            async def count(account: str) -> int:
                r = await reader.get(f"/v1/accounts/{account}/usage", params={"from": str(today), "to": str(today)})
                r.raise_for_status()
                return sum(int(d["event_count"]) for d in r.json()["items"])

            deadline = time.monotonic() + seconds * 3 + 120
            while not done or any(pending.values()):
                if time.monotonic() > deadline:
                    raise SystemExit(f"latency: {sum(map(len, pending.values()))} posts never visible")
                with contextlib.suppress(queue.Empty):
                    while True:
                        msg = out.get_nowait()
                        if msg[0] == "sent":
                            pending[msg[1]].append((msg[2], msg[3]))
                        elif msg[0] == "acked":
                            acked[(msg[1], msg[2])] = msg[3]
                        elif msg[0] == "done":
                            done, result.late_posts, result.retried, result.achieved = True, msg[1], msg[3], msg[4]
                            if msg[2]:
                                raise SystemExit(f"latency: POSTs answered {sorted(set(msg[2]))}")
                waiting = [a for a, q in pending.items() if q]
                seen = await asyncio.gather(*(count(a) for a in waiting))
                now = time.monotonic()
                for account, c in zip(waiting, seen, strict=True):
                    q = pending[account]
                    while q and q[0][0] <= c:
                        cumulative, sent_at = q.popleft()
                        visible[(account, cumulative)] = now
                        result.samples.append(now - sent_at)
                await asyncio.sleep(poll)
            # Once answered 202 the events are on the broker: from then on the wait is the consumer's.
            result.after_ack = [max(0.0, visible[k] - t) for k, t in acked.items() if k in visible]
    finally:
        replica.terminate()
        replica.join(10)
    return result


# --- the section ---------------------------------------------------------------------------------------

@dataclass
class WorkloadResult:
    produce: list[float] = field(default_factory=list)
    drain: float = 0.0
    service: dict[str, Drain] = field(default_factory=dict)
    floor: dict[str, floor.FloorResult] = field(default_factory=dict)


def line(label: str, rate: float, *ratios: tuple[str, float | None]) -> str:
    text = "".join(f"   {name} {rate / base:5.2f}" for name, base in ratios if base)
    return f"  {label:<52} {rate:>10,.0f} ev/s{text}"


async def run(workloads: Sequence[Workload], backends: Sequence[str], *, bootstrap: str, broker_pid: int | None,
              workdir: Path, pg_url: str, latency_seconds: float = 15.0,
              parts: Sequence[str] = ("drain", "floor", "ingest", "latency")) -> dict[str, Any]:
    """Measure and print; returns the figures (for the summary)."""
    results: dict[str, WorkloadResult] = {}
    for w in workloads:
        print(f"\n[{w.summary()}]", flush=True)
        r = results[w.name] = WorkloadResult()
        first = True
        for backend in backends:
            prefix = f"b{uuid.uuid4().hex[:6]}."
            await topics_for(bootstrap, prefix)
            r.produce.append(await bare_produce(bootstrap, prefix + USAGE_TOPIC, w.messages))
            if first:
                r.drain = statistics.median([await bare_consume(bootstrap, prefix + USAGE_TOPIC, len(w))
                                             for _ in range(3)])
                print(line("bare aiokafka consumer (drain, median of 3)", r.drain), flush=True)
                first = False
            if "floor" in parts:
                r.floor[backend] = f = await floor.run(backend, w.rows, workdir=workdir, pg_url=pg_url)
                print(line(f"{backend}: database floor ({f.transactions} tx of ≤10k)", f.rate,
                           ("vs bare", r.drain)), flush=True)
                print(f"  {'':<52} {f.cpu.per_event(len(w))}", flush=True)
            if "drain" in parts:
                async with database(backend, workdir, pg_url) as url:
                    r.service[backend] = d = await service_drain(
                        url, bootstrap, prefix, len(w), workdir, broker_pid=broker_pid, postgres=backend != "sqlite")
                fl = r.floor.get(backend)
                print(line(f"{backend}: service usage consumer", d.rate, ("vs bare", r.drain),
                           ("vs floor", fl.rate if fl else None)), flush=True)
                print(f"  {'':<52} {d.cpu.per_event(d.events)}"
                      + (f"; measured over the last {d.events:,} (the first were settled while the worker started)"
                         if d.events < len(w) else ""), flush=True)
        print(line("tuned bare producer (acks=all, linger 5 ms, 256 KiB)", statistics.median(r.produce)), flush=True)
    ingest: dict[str, tuple[float, Usage]] = {}
    lat: dict[str, Latency] = {}
    base = next(iter(results.values()), None)
    for backend in backends if {"ingest", "latency"} & set(parts) else []:
        print(f"\n[{backend}: HTTP]", flush=True)
        w = workloads[0]
        if "ingest" in parts:
            prefix = f"p{uuid.uuid4().hex[:6]}."
            await topics_for(bootstrap, prefix)
            produced = statistics.median([await bare_produce(bootstrap, prefix + USAGE_TOPIC, w.messages)
                                          for _ in range(3)])
            print(line("tuned bare producer (median of 3)", produced), flush=True)
            async with database(backend, workdir, pg_url) as url:
                rate, cpu = await http_ingest(url, bootstrap, w, workdir, broker_pid=broker_pid)
            print(line("POST /v1/events -> Kafka, acks=all", rate, ("vs tuned producer", produced)), flush=True)
            print(f"  {'':<52} {cpu.per_event(len(w))}", flush=True)
            ingest[backend] = (rate / produced, cpu)
        if "latency" in parts:
            drained = base.service.get(backend) if base else None
            offered = (drained.rate if drained else 10_000.0) / 2
            async with database(backend, workdir, pg_url) as url:
                lat[backend] = lt = await latency(url, bootstrap, workdir, offered, seconds=latency_seconds)
            print(f"  posted -> visible in GET /v1/accounts/{{id}}/usage at {lt.rate:,.0f} ev/s "
                  f"({'half the drain' if drained else 'no drain measured: half of 10k'}), "
                  f"{len(lt.samples)} requests of 200 to the 8 busiest accounts: p50 {lt.quantile(0.5):.2f} s, "
                  f"p95 {lt.quantile(0.95):.2f} s, max {max(lt.samples):.2f} s; from the 202 on: p50 "
                  f"{lt.quantile(0.5, lt.after_ack):.2f} s, p95 {lt.quantile(0.95, lt.after_ack):.2f} s; "
                  f"posted at {lt.achieved:,.0f} ev/s"
                  + (f", {lt.late_posts} posts > 100 ms behind schedule" if lt.late_posts else "")
                  + (f", {lt.retried} retried after a 503" if lt.retried else ""), flush=True)
    return {"workloads": results, "ingest": ingest, "latency": lat}


def summary(figures: dict[str, Any], backends: Sequence[str]) -> list[str]:
    """The issue's targets against this run's figures."""
    out = ["", "targets (issue #14):"]
    results: dict[str, WorkloadResult] = figures["workloads"]
    for name, r in results.items():
        for backend in backends:
            d, f = r.service.get(backend), r.floor.get(backend)
            parts = []
            if d:
                goal = "≥ 0.4" if backend == "sqlite" else "≥ 0.15"
                parts.append(f"drain/bare {d.rate / r.drain:.2f} ({goal})" if name == "realistic"
                             else f"drain/bare {d.rate / r.drain:.2f}")
            if d and f:
                parts.append(f"drain/floor {d.rate / f.rate:.2f} (≥ 0.7)")
                # A service that overlapped fetching with its writes perfectly would run at the slower of the two.
                parts.append(f"drain/min(bare, floor) {d.rate / min(r.drain, f.rate):.2f}")
            if parts:
                out.append(f"  {name:<10} {backend:<10} " + "   ".join(parts))
    for backend, (ratio, _) in figures["ingest"].items():
        out.append(f"  HTTP ingest {backend:<10} {ratio:.2f} of the tuned producer (≥ 0.5)")
    for backend, lt in figures["latency"].items():
        out.append(f"  latency     {backend:<10} p95 {lt.quantile(0.95):.2f} s (< 2 s; from the 202 on "
                   f"{lt.quantile(0.95, lt.after_ack):.2f} s) at {lt.rate:,.0f} ev/s offered, "
                   f"{lt.achieved:,.0f} posted")
    return out
