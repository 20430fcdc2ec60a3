"""The usage consumer as a real process on the real broker: SIGKILLed at each step of a transaction, left by
one of two members mid-stream, or restarted on a database that lost its last commits, it loses nothing and
counts nothing twice.

Each case runs ``python -m services.metrics`` on a fresh database (SQLite or PostgreSQL) against the session's
broker, publishes usage traffic (several accounts, skewed users, late days, the same ``source`` + ``id`` again
at new offsets), and checks only what is public: every account's rollups over HTTP equal the expected ones
exactly (``event_count``, ``events``, ``active_users``, by type and feature), the offsets stored in
``consumer_offsets`` reach the end of every partition, and ``events_consumed_total`` of the process that
resumes equals the records after the stored offsets: it resumed from the database, not from Kafka's commit.

The kill is a fail-point (``POSTSALES_FAILPOINTS``, :mod:`shared.events.consumer.failpoints`): the process
sends itself SIGKILL at the armed step of its third usage transaction, after a line naming the step and the
offsets that transaction carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import MetaData, select
from sqlalchemy.engine import make_url

from deploy.cli.lag import high_watermarks
from shared.db import create_engine
from shared.events.broker import free_port
from shared.events.consumer import consumer_offsets_table
from shared.events.consumer.failpoints import STEPS, parse
from shared.events.envelope import CloudEvent
from shared.events.registry import USAGE_TOPIC
from shared.testing import ADMIN_TOKEN, TEST_API_KEYS, KafkaProbe, eventually, kafka_client, topic_partitions
from shared.testing.suite import ServiceProcess
from tests.e2e.support import expected_usage, usage_event, usage_rows

CONSUMER = "metrics-usage"
OFFSETS = consumer_offsets_table(MetaData())
pytestmark = pytest.mark.timeout(300)


# --- the metrics service as processes ---------------------------------------------------------------------

@dataclass
class Metrics:
    """Metrics service processes sharing one database, the session's broker and the test's topic prefix."""

    database_url: str
    bootstrap: str
    prefix: str
    root: Path
    processes: list[ServiceProcess] = field(default_factory=list)

    @property
    def group(self) -> str:
        return self.prefix + CONSUMER

    @property
    def topic(self) -> str:
        return self.prefix + USAGE_TOPIC

    async def start(self, failpoint: str | None = None) -> ServiceProcess:
        """One more process, ready; ``failpoint`` arms ``POSTSALES_FAILPOINTS`` in it."""
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "DATABASE_URL", "POSTSALES_"))}
        env |= {
            "DATABASE_URL": self.database_url, "METRICS_PORT": str(port),
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap, "KAFKA_TOPIC_PREFIX": self.prefix,
            "KAFKA_TOPIC_PARTITIONS": "4", "POSTSALES_API_KEYS": json.dumps(TEST_API_KEYS),
            "POSTSALES_DATA_DIR": str(self.root / "data"), "LOG_LEVEL": "INFO",
            # Usage transactions of at most 100 events: several per wave of traffic.
            "CONSUMER_BATCH_SIZE": "100", "METRICS_USAGE_BATCH_EVENTS": "100",
        }
        if failpoint:
            env["POSTSALES_FAILPOINTS"] = failpoint
        proc = ServiceProcess("metrics", port, env, self.root / f"metrics-{len(self.processes) + 1}.log")
        self.processes.append(proc)
        proc.start()
        await asyncio.to_thread(proc.wait_ready, 120)
        return proc

    def stop(self) -> None:
        for proc in self.processes:
            proc.stop()

    def client(self, proc: ServiceProcess) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=proc.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=30)

    async def stored(self) -> dict[int, int]:
        """The next offset per partition in ``consumer_offsets`` (what a restart resumes from)."""
        engine = create_engine(self.database_url)
        try:
            async with engine.connect() as conn:
                rows = (await conn.execute(select(OFFSETS.c.topic, OFFSETS.c.partition, OFFSETS.c.next_offset)
                                           .where(OFFSETS.c.group == self.group))).all()
        finally:
            await engine.dispose()
        assert {t for t, _, _ in rows} <= {self.topic}
        return {int(p): int(o) for _, p, o in rows}

    async def ends(self) -> dict[int, int]:
        """The end offset of every partition of the usage topic (its high watermark: Tansu's ListOffsets is low)."""
        async with kafka_client(self.bootstrap) as c:
            ends = await high_watermarks(c, await topic_partitions(c, self.topic))
        return {tp.partition: o for tp, o in ends.items()}

    async def kafka_committed(self) -> dict[int, int]:
        """The group's Kafka commit per partition (informational: lag tooling only)."""
        async with kafka_client(self.bootstrap, self.group) as c:
            return {tp.partition: (await c.committed(tp)) or 0 for tp in await topic_partitions(c, self.topic)}


@pytest.fixture
def metrics(database_factory, kafka_bootstrap: str, topic_prefix: str, tmp_path: Path) -> Iterator[Metrics]:
    m = Metrics(database_factory.new("metrics"), kafka_bootstrap, topic_prefix, tmp_path)
    try:
        yield m
    finally:
        m.stop()


# --- traffic and the oracle --------------------------------------------------------------------------------

def traffic(tag: str, n: int, rng: random.Random, accounts: int = 6) -> list[CloudEvent]:
    """``n`` distinct events: ~20 users per account, activity skewed toward a few, 10% on late days."""
    now = dt.datetime.now(dt.UTC)
    weights = [1 / (k + 1) for k in range(20)]
    out = []
    for i in range(n):
        account = f"{tag}-acct-{rng.randrange(accounts)}"
        user = f"u{rng.choices(range(20), weights)[0]}"
        at = now - dt.timedelta(days=rng.randint(2, 40), hours=rng.random()) if rng.random() < 0.1 else now
        feature = rng.choice([None, "reports", "export"])
        out.append(usage_event(account, f"{tag}-{i}-{uuid.uuid4().hex[:6]}", user=user, source=f"/crash/{tag}",
                               type="usage.login" if feature is None else "usage.feature_used", feature=feature,
                               quantity=rng.randint(1, 3), at=at))
    return out


async def publish(kafka: KafkaProbe, events: list[CloudEvent], again: list[CloudEvent]) -> None:
    """``events``, then ``again`` (copies of events already sent: the same source + id at new offsets), half of
    them keyed elsewhere so they land on other partitions too."""
    await kafka.publish(USAGE_TOPIC, events)
    await kafka.publish(USAGE_TOPIC, again[::2])
    await kafka.publish(USAGE_TOPIC, again[1::2], key="elsewhere")


async def counted_exactly(metrics: Metrics, proc: ServiceProcess, sent: list[CloudEvent],
                          timeout: float = 120) -> None:
    """Every account's rollups over HTTP equal the expected ones (each source + id once), and the stored
    offsets reach the end of every partition."""
    want = expected_usage(sent)
    start = min(dt.date.fromisoformat(d) for rows in want.values() for d in rows)
    end = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    async with metrics.client(proc) as client:
        async def exact() -> bool:
            for account, rows in sorted(want.items()):
                got = await usage_rows(client, account, start, end)
                assert got == rows, (account, {d: (r["event_count"], got.get(d, {}).get("event_count"))
                                               for d, r in rows.items()})
            return True

        await eventually(exact, timeout=timeout, interval=0.3, message="every account's rollups are exact")
    ends = await metrics.ends()

    async def at_end() -> bool:
        stored = await metrics.stored()
        assert stored == ends, (stored, ends)
        return True

    await eventually(at_end, timeout=30, interval=0.2, message="the stored offsets reach the end of every partition")


async def consumed(metrics: Metrics, proc: ServiceProcess) -> int:
    """Usage records this process applied in a committed transaction (new or duplicate)."""
    async with metrics.client(proc) as client:
        text = (await client.get("/metrics")).text
    return sum(int(float(n)) for n in re.findall(
        rf'events_consumed_total\{{consumer="{CONSUMER}",outcome="(?:applied|duplicate)"\}} (\S+)', text))


async def resumes_from_the_stored_offsets(metrics: Metrics, proc: ServiceProcess,
                                          stored_before: dict[int, int]) -> None:
    """``proc``, started on ``stored_before``, read exactly the records after those offsets: no more (it did not
    resume from Kafka's commit or earlier), no fewer."""
    ends = await metrics.ends()
    rest = sum(ends.values()) - sum(stored_before.values())

    async def read_the_rest() -> bool:
        return await consumed(metrics, proc) == rest

    await eventually(read_the_rest, timeout=30, interval=0.2,
                     message=f"the restarted process reads the {rest} records after the stored offsets")


# --- SIGKILL at each step -------------------------------------------------------------------------------

async def died(proc: ServiceProcess) -> bool:
    return proc.process is not None and proc.process.poll() is not None


async def feed_until_killed(metrics: Metrics, kafka: KafkaProbe, proc: ServiceProcess,
                            waves: list[tuple[list[CloudEvent], list[CloudEvent]]]) -> None:
    """Publish the waves in turn while ``proc`` lives, each once the previous one is stored; then the rest."""

    async def stored_or_dead(ends: dict[int, int]) -> bool:
        return await died(proc) or await metrics.stored() == ends

    for events, again in waves:
        await publish(kafka, events, again)
        if not await died(proc):
            await eventually(functools.partial(stored_or_dead, await metrics.ends()), timeout=60, interval=0.1,
                             message="the wave is stored (or the process dead)")
    await eventually(lambda: died(proc), timeout=30, message="the process reaches its fail-point")


def at_stake(proc: ServiceProcess, point: str) -> dict[int, int]:
    """The offsets the transaction at the fail-point carried, from the line the process wrote as it died."""
    line = next((ln for ln in proc.logs().splitlines() if ln.startswith(f"FAILPOINT {point}:")), None)
    assert line is not None, f"the process died without reaching {point}:\n{proc.logs()[-3000:]}"
    return {int(p): int(o) for p, o in re.findall(r"\[(\d+)\]=(\d+)", line)}


@pytest.mark.parametrize("step", STEPS)
async def test_sigkill_at_each_step_of_a_usage_transaction_loses_nothing_and_counts_nothing_twice(
        metrics: Metrics, kafka: KafkaProbe, step: str) -> None:
    rng = random.Random(step)
    w1, w2, w3 = traffic("w1", 250, rng), traffic("w2", 250, rng), traffic("w3", 150, rng)
    waves = [(w1, rng.sample(w1, 15)), (w2, rng.sample(w1 + w2, 30)), (w3, rng.sample(w1 + w3, 20))]
    sent = [e for events, again in waves for e in events + again]
    point = f"{CONSUMER}:{step}@3"

    dying = await metrics.start(failpoint=point)
    await feed_until_killed(metrics, kafka, dying, waves)
    assert dying.stop() == -9, "SIGKILLed by its fail-point"
    stake = at_stake(dying, point)
    assert stake, "the interrupted transaction carried offsets"
    stored, kafka_commit, ends = await metrics.stored(), await metrics.kafka_committed(), await metrics.ends()
    assert 0 < sum(stored.values()) < sum(ends.values()), "died mid-stream: some transactions committed, not all"
    mine = {p: stored.get(p, 0) for p in stake}
    if step in ("before_write", "before_commit"):
        # Never committed: the database rolled the transaction back, its offsets with its effects.
        assert all(mine[p] < o for p, o in stake.items()), (stake, stored)
    else:
        assert mine == stake, "committed with the effects"
        kafka_mine = {p: kafka_commit.get(p, 0) for p in stake}
        if step == "after_commit":
            assert all(kafka_mine[p] < o for p, o in stake.items()), "the Kafka commit was not made"
        else:
            assert kafka_mine == stake

    again = await metrics.start()
    await counted_exactly(metrics, again, sent)
    await resumes_from_the_stored_offsets(metrics, again, stored)


# --- two members, one leaving mid-stream ---------------------------------------------------------------------

async def test_two_processes_split_the_partitions_and_one_leaving_mid_stream_hands_over_exactly(
        metrics: Metrics, kafka: KafkaProbe) -> None:
    rng = random.Random(2)
    a, b = await asyncio.gather(metrics.start(), metrics.start())
    sent: list[CloudEvent] = []
    left = asyncio.Event()

    async def stream() -> int:
        """Waves of traffic until ten waves after ``b`` left; how many waves came after."""
        after = 0
        for i in range(500):
            events = traffic(f"s{i}", 60, rng)
            again = rng.sample(sent + events, 6)
            sent.extend(events + again)
            await publish(kafka, events, again)
            after += left.is_set()
            if after == 10:
                break
            await asyncio.sleep(0.2)
        return after

    publishing = asyncio.create_task(stream())
    try:
        async def both_at_work() -> bool:
            return await consumed(metrics, a) > 0 and await consumed(metrics, b) > 0

        await eventually(both_at_work, timeout=90, interval=0.3, message="the two processes split the partitions")
        # SIGTERM: b settles the batches it holds, commits them and leaves; a takes its partitions over.
        code = await asyncio.to_thread(b.stop)
        # uvicorn re-raises the SIGTERM once its shutdown is complete
        assert code == -signal.SIGTERM and "Application shutdown complete" in b.logs(), "b left cleanly"
    finally:
        left.set()
        waves_after = await publishing
    assert waves_after == 10, "traffic went on after b left"
    await counted_exactly(metrics, a, sent)


# --- a database that loses its last commits ---------------------------------------------------------------

async def test_a_database_that_loses_its_last_commits_loses_their_offsets_too_and_they_are_read_again(
        metrics: Metrics, kafka: KafkaProbe, database_factory) -> None:
    """SQLite runs with ``synchronous=NORMAL``: after a power loss the database may come back without its
    last commits, although the Kafka commit that followed them was made. Here the database is put back to an
    earlier commit while Kafka's commit is at the end of every partition; the stored offsets went back with
    the effects, so the events after them are read again and counted once."""
    rng = random.Random(3)
    w1, w2 = traffic("lost1", 300, rng), traffic("lost2", 300, rng)
    first = await metrics.start()
    await publish(kafka, w1, rng.sample(w1, 20))
    await counted_exactly(metrics, first, w1)
    first.stop()
    snapshot = await snapshot_database(metrics.database_url, database_factory)
    earlier = await metrics.stored()

    second = await metrics.start()
    await publish(kafka, w2, rng.sample(w1 + w2, 30))
    sent = w1 + w2
    await counted_exactly(metrics, second, sent)
    ends = await metrics.ends()

    async def kafka_at_end() -> bool:
        return await metrics.kafka_committed() == ends

    await eventually(kafka_at_end, timeout=30, message="the Kafka commit reaches the end")
    second.stop()

    await restore_database(metrics.database_url, snapshot)  # the last commits are lost
    assert await metrics.stored() == earlier and sum(earlier.values()) < sum(ends.values())
    assert await metrics.kafka_committed() == ends, "Kafka's commit is past the lost events"
    third = await metrics.start()
    await counted_exactly(metrics, third, sent)
    await resumes_from_the_stored_offsets(metrics, third, earlier)


async def snapshot_database(url: str, database_factory) -> str:
    """A copy of the (stopped) service's database: a file for SQLite, a database name for PostgreSQL."""
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        assert u.database
        copy = u.database + ".snapshot"
        src, dst = sqlite3.connect(u.database), sqlite3.connect(copy)
        try:
            src.backup(dst)  # the committed state, WAL included
        finally:
            src.close()
            dst.close()
        return copy
    snap = f"{u.database}_snap"
    database_factory.created.append(snap)  # dropped with the run's databases
    await _pg(url, f'CREATE DATABASE "{snap}" TEMPLATE "{u.database}"')
    return snap


async def restore_database(url: str, snapshot: str) -> None:
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        assert u.database
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(u.database + suffix)
        shutil.copyfile(snapshot, u.database)
        return
    await _pg(url, f'DROP DATABASE "{u.database}" WITH (FORCE)')
    await _pg(url, f'CREATE DATABASE "{u.database}" TEMPLATE "{snapshot}"')


async def _pg(url: str, sql: str) -> None:
    """Run ``sql`` on the server's maintenance database (a template must have no session: retried briefly)."""
    u = make_url(url)
    for attempt in range(50):
        conn = await asyncpg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                                     password=u.password, database="postgres")
        try:
            await conn.execute(sql)
            return
        except asyncpg.ObjectInUseError:
            if attempt == 49:
                raise
        finally:
            await conn.close()
        await asyncio.sleep(0.1)


# --- the fail-point syntax --------------------------------------------------------------------------------

@pytest.mark.db_independent
def test_failpoints_parse_and_refuse_what_they_do_not_know() -> None:
    assert parse("") == {}
    assert parse("metrics-usage:before_commit@3, x:after_kafka_commit") == {
        "metrics-usage:before_commit": 3, "x:after_kafka_commit": 1}
    for bad in ("metrics-usage:before_comit", "before_commit", "metrics-usage:after_commit@0",
                "metrics-usage:after_commit@x", ":after_commit"):
        with pytest.raises(ValueError, match="POSTSALES_FAILPOINTS"):
            parse(bad)
