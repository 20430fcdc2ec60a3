"""Fault injection against the suite as processes, with ONE oracle.

Every case injects usage events with unique ids (plus, where the case needs them, poison messages,
HTTP writes or alerts), breaks something, lets the suite recover, and then :func:`oracle` checks:
distinct effects = events in (rollup ``event_count`` = N and ``events`` = N x quantity), the rollups
equal a recomputation from the raw events (``POST /v1/recompute``), the DLQs hold exactly the poison
messages, and the receiver saw exactly the expected deliveries, each once. Each case prints one row
of the report table (run with ``-s``).

Cases share one suite per module and xdist worker: each uses its own accounts, and filters what it
reads (topics, DLQs, receiver) by them, so cases never see each other's effects.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import re
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner
from sqlalchemy.engine import make_url
from standardwebhooks import Webhook

from shared.events.envelope import CloudEvent
from shared.testing.helpers import KafkaProbe, eventually, kafka_client, topic_partitions
from shared.testing.suite import (
    Suite,
    TcpProxy,
    WebhookReceiver,
    database_endpoint,
    proxied_url,
)
from tests.e2e.support import FEEDBACK_TOPIC, USAGE_TOPIC, doc, expected_usage, usage_event, usage_rows

QUANTITY = 2.0
# A suite starts per module and worker: on a loaded 2-core machine setup alone can take minutes.
pytestmark = pytest.mark.timeout(900)
LIFECYCLE_TOPIC = "postsales.lifecycle.v1"


# --- fixtures ---------------------------------------------------------------------------------------------

@pytest.fixture
def probe(suite: Suite) -> KafkaProbe:
    return KafkaProbe(suite.bootstrap, suite.prefix)


@pytest.fixture(autouse=True)
def heal(suite: Suite, receiver: WebhookReceiver) -> Iterator[None]:
    """Whatever a case broke and did not repair (it failed half-way) is repaired before the next."""
    yield
    assert suite.broker is not None
    suite.broker.resume()
    receiver.delay = 0.0
    if not receiver.running:
        receiver.start()
    for name, svc in suite.services.items():
        if not svc.running:
            suite.restart(name)


# --- the oracle -------------------------------------------------------------------------------------

@dataclass
class Injection:
    """What a case put in, for the oracle to check what came out."""

    fault: str
    how: str
    events: list[CloudEvent] = field(default_factory=list)  # distinct usage events (unique source+id)
    poison: dict[str, list[bytes]] = field(default_factory=dict)  # topic -> values that must be dead-lettered
    poison_keys: set[str] = field(default_factory=set)  # the keys the case's poison was sent with
    alerts: list[str] = field(default_factory=list)  # accounts whose alert must reach the receiver once
    other_in: int = 0  # further acknowledged writes (e.g. accounts created) ...
    other_out: int = 0  # ... and how many of them were found afterwards

    @property
    def accounts(self) -> set[str]:
        return {e.subject for e in self.events}


@dataclass
class Row:
    fault: str
    how: str
    events_in: int
    effects_out: int
    duplicates: int
    lost: int

    def __str__(self) -> str:
        return (f"FAULT-ROW | {self.fault} | {self.how} | in={self.events_in} | out={self.effects_out} | "
                f"duplicates={self.duplicates} | lost={self.lost}")


async def oracle(suite: Suite, probe: KafkaProbe, inj: Injection, *, receiver: WebhookReceiver | None = None,
                 secret: str | None = None, timeout: float = 180) -> Row:
    want = expected_usage(inj.events)
    days = sorted({d for rows in want.values() for d in rows})
    start = dt.date.fromisoformat(days[0]) if days else dt.datetime.now(dt.UTC).date()
    end = dt.date.fromisoformat(days[-1]) if days else start
    async with suite.client("metrics") as metrics:
        # 1. distinct effects = N, exactly (never more, never fewer).
        async def exact() -> bool:
            for account, rows in want.items():
                got = await usage_rows(metrics, account, start, end)
                assert got == rows, (account, {d: r["event_count"] for d, r in got.items()})
            return True

        await eventually(exact, timeout=timeout, interval=0.5, message=f"{inj.fault}: rollups equal the events in")
        effects, quantity = 0, 0.0
        for account in want:
            for r in (await usage_rows(metrics, account, start, end)).values():
                effects += r["event_count"]
                quantity += r["events"]
        assert quantity == QUANTITY * len(inj.events), quantity

        # 2. rollups = a recomputation from the raw events.
        for account, rows in want.items():
            r = await metrics.post("/v1/recompute", json={"from": start.isoformat(), "to": end.isoformat(),
                                                          "account_id": account})
            assert r.status_code == 200, r.text
            assert r.json()["raw_events"] == sum(x["event_count"] for x in rows.values())
            assert await usage_rows(metrics, account, start, end) == rows, f"{account}: recompute differs"

    # 3. the DLQs hold exactly the poison messages of this case (and nothing else with its keys).
    keys = inj.accounts | inj.poison_keys
    for topic in {USAGE_TOPIC, FEEDBACK_TOPIC, *inj.poison}:
        records = await probe.read_all(topic + ".dlq", settle=0.3, timeout=5)
        mine = sorted(r.value for r in records if r.key is not None and r.key.decode() in keys)
        assert mine == sorted(inj.poison.get(topic, [])), f"{topic}.dlq: {mine!r}"

    # Duplicates the consumers absorbed: copies of the case's events on the usage topic beyond one each.
    ids = {(e.source, e.id) for e in inj.events}
    on_topic = 0
    if ids:
        for r in await probe.read_all(USAGE_TOPIC, settle=0.3, timeout=120):
            if r.key is not None and r.key.decode() in inj.accounts:
                with contextlib.suppress(ValueError):
                    ev = CloudEvent.from_bytes(r.value)
                    on_topic += (ev.source, ev.id) in ids
    duplicates = max(0, on_topic - len(ids))

    # 4. the receiver saw exactly the expected deliveries, each once, signed.
    delivered = 0
    if inj.alerts:
        assert receiver is not None and secret is not None
        got = receiver.matching(lambda r: r.json()["data"]["subject"] in set(inj.alerts))
        by_id = Counter(r.headers["webhook-id"] for r in got)
        by_account = Counter(r.json()["data"]["subject"] for r in got)
        assert by_account == Counter(inj.alerts), by_account
        assert set(by_id.values()) == {1}, by_id
        for r in got:
            Webhook(secret).verify(r.body, r.headers)
        delivered = len(by_id)
        duplicates += len(got) - len(by_id)

    assert inj.other_out == inj.other_in
    n_in = len(ids) + len(inj.alerts) + inj.other_in
    n_out = effects + delivered + inj.other_out
    row = Row(inj.fault, inj.how, n_in, n_out, duplicates, n_in - n_out)
    print(f"\n{row}")
    assert row.lost == 0
    return row


# --- helpers -------------------------------------------------------------------------------------------

def new_events(tag: str, n: int, accounts: int = 4) -> list[CloudEvent]:
    names = [f"{tag}-{uuid.uuid4().hex[:6]}-{i}" for i in range(accounts)]
    return [usage_event(names[i % accounts], f"{tag}-{i}-{uuid.uuid4().hex[:8]}", user=f"u{i % 7}",
                        quantity=QUANTITY, source=f"/faults/{tag}") for i in range(n)]


def on_every_partition(tag: str, n: int, accounts: int, partitions: int = 4) -> list[CloudEvent]:
    """``new_events`` whose accounts (the message keys) land on every partition, whoever owns which."""
    partition_of = DefaultPartitioner()
    every = list(range(partitions))
    while True:
        events = new_events(tag, n, accounts)
        if {partition_of(e.subject.encode(), every, every) for e in events} == set(every):
            return events


async def total_count(metrics: httpx.AsyncClient, events: list[CloudEvent]) -> int:
    today = dt.datetime.now(dt.UTC).date()
    start = min(e.time.date() for e in events)
    total = 0
    for account in {e.subject for e in events}:
        rows = await usage_rows(metrics, account, start, today)
        total += sum(r["event_count"] for r in rows.values())
    return total


async def committed(suite: Suite, group: str, topic: str) -> dict[int, int]:
    async with kafka_client(suite.bootstrap, group) as c:
        return {tp.partition: (await c.committed(tp)) or 0 for tp in await topic_partitions(c, suite.prefix + topic)}


async def post_events(metrics: httpx.AsyncClient, events: list[CloudEvent]) -> httpx.Response:
    return await metrics.post("/v1/events", json=[doc(e) for e in events])


def consumed(metrics_text: str, consumer: str) -> float:
    m = re.search(rf'events_consumed_total\{{consumer="{consumer}",outcome="applied"\}} (\S+)', metrics_text)
    return float(m.group(1)) if m else 0.0


# --- (d) poison messages ----------------------------------------------------------------------------------

async def test_poison_messages_are_dead_lettered_and_consumption_goes_on(suite: Suite, probe: KafkaProbe) -> None:
    events = new_events("poison", 200, accounts=1)
    account = events[0].subject
    bad_json = b'{"specversion": "1.0", "id": "broken'
    no_user = doc(usage_event(account, f"no-user-{uuid.uuid4().hex[:6]}", user="x"))
    del no_user["data"]["user_id"]
    too_long = usage_event(account, f"long-user-{uuid.uuid4().hex[:6]}", user="u" * 300)  # user ids: <= 200 chars
    bad_score = CloudEvent.new(type="postsales.survey.nps", source="/faults/poison", subject=account,
                               data={"score": 11})  # valid envelope, refused by the metrics handler
    await probe.publish(USAGE_TOPIC, events[:100])
    await probe.publish(USAGE_TOPIC, [bad_json], key=account)
    await probe.publish(USAGE_TOPIC, [no_user, too_long])
    await probe.publish(USAGE_TOPIC, events[100:])
    await probe.publish(FEEDBACK_TOPIC, [bad_score])
    inj = Injection("poison messages", "bad JSON, two schema violations (usage); handler failure (feedback) "
                    "amid 200 valid events", events=events,
                    poison={USAGE_TOPIC: [bad_json, json_bytes(no_user), too_long.to_bytes()],
                            FEEDBACK_TOPIC: [bad_score.to_bytes()]})

    async def dead_lettered() -> bool:
        return len(await probe.read_all(USAGE_TOPIC + ".dlq", settle=0.2)) >= 3
    await eventually(dead_lettered, timeout=180, message="poison dead-lettered")
    await oracle(suite, probe, inj)
    dlq = [r for r in await probe.read_all(USAGE_TOPIC + ".dlq") if r.key == account.encode()]
    headers = [dict(r.headers) for r in dlq]
    assert all(h["dlq_consumer"] == b"metrics-usage" and h["dlq_error"] for h in headers)
    errors = [h["dlq_error"].decode() for h in headers]
    assert any(e.startswith("invalid event: not JSON") for e in errors), errors
    assert any("data: Object missing required field `user_id`" in e for e in errors), errors
    assert any("data.user_id: Expected `str` of length <= 200" in e for e in errors), errors


def json_bytes(d: dict[str, Any]) -> bytes:
    import json

    return json.dumps(d).encode()


# --- (c) the ingesting service killed while requests are in flight --------------------------------------
# (The outbox relay killed between publish and mark is proven on the real broker by
# tests/shared/test_outbox.py::test_relay_restart_publishes_what_was_left_and_a_lost_mark_only_duplicates.)

async def test_ingest_killed_mid_request_and_client_retries(suite: Suite, probe: KafkaProbe) -> None:
    events = new_events("ingest-kill", 4000)
    topic = suite.prefix + USAGE_TOPIC
    chunks = [events[i:i + 500] for i in range(0, len(events), 500)]
    async with suite.client("metrics") as metrics, kafka_client(suite.bootstrap) as admin:
        tps = await topic_partitions(admin, topic)
        before = sum((await admin.end_offsets(tps)).values())
        posts = [asyncio.create_task(post_events(metrics, c)) for c in chunks]
        # Kill the service the moment the first of these events reach the topic: requests are in
        # flight, some of their events published, none or few acknowledged to the client.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum((await admin.end_offsets(tps)).values()) == before:
            await asyncio.sleep(0.002)
        suite.services["metrics"].kill()
        published_at_kill = sum((await admin.end_offsets(tps)).values()) - before
        results = await asyncio.gather(*posts, return_exceptions=True)
    acked = [isinstance(r, httpx.Response) and r.status_code == 202 for r in results]
    await asyncio.to_thread(suite.restart, "metrics")  # already dead: starts it
    async with suite.client("metrics") as metrics:
        # As any client would: re-send every request that got no 202.
        for chunk, ok in zip(chunks, acked, strict=True):
            if not ok:
                r = await post_events(metrics, chunk)
                assert r.status_code == 202 and r.json()["accepted"] == len(chunk), r.text
    await oracle(suite, probe, Injection(
        "ingest killed mid-request",
        f"SIGKILL metrics with 8x500 POSTs in flight ({published_at_kill} on the topic at kill, "
        f"{sum(acked)} acknowledged); client re-sends the rest",
        events=events))
    assert published_at_kill > 0, "the kill came before anything was published: the case proved nothing"


# --- (b) a service SIGKILLed mid-batch ------------------------------------------------------------------

@pytest.mark.slow
async def test_consumer_killed_mid_batch_and_restarted(suite: Suite, probe: KafkaProbe) -> None:
    events = new_events("kill", 10000)
    metrics_proc = suite.services["metrics"]
    kills = []
    async with suite.client("metrics") as metrics:
        publishing = asyncio.create_task(probe.publish(USAGE_TOPIC, events))
        # Kill once some batches are committed and others are not (after and before a DB commit),
        # then again right after the restarted consumer makes progress.
        for _ in range(2):
            floor = await total_count(metrics, events)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                n = await total_count(metrics, events)
                if n > floor:
                    break
                await asyncio.sleep(0.05)
            if n >= len(events):
                break
            metrics_proc.kill()
            kills.append(n)
            await asyncio.to_thread(suite.restart, "metrics")
        await publishing
    await oracle(suite, probe, Injection(
        "service SIGKILLed mid-batch", f"SIGKILL metrics at {kills} of {len(events)} applied; restart each time",
        events=events), timeout=240)
    assert kills, "the consumer finished before it could be killed"


# --- (f) a webhook receiver down, then slow, then back ---------------------------------------------------

async def test_receiver_down_slow_back(suite: Suite, probe: KafkaProbe, receiver: WebhookReceiver) -> None:
    async with suite.client("notifier") as notifier, suite.client("metrics") as metrics:
        ch = await notifier.post("/v1/channels", json={"name": f"faults-{uuid.uuid4().hex[:6]}", "kind": "webhook",
                                                        "url": receiver.url})
        assert ch.status_code == 201, ch.text
        channel, secret = ch.json()["id"], ch.json()["secret"]
        rule = await notifier.post("/v1/rules", json={
            "name": f"faults-detractor-{channel[:8]}", "event_type": "postsales.survey.nps",
            "conditions": {"data.score": {"lte": 6}}, "severity": "warning", "channels": [channel],
            "group_wait": "0s", "repeat_interval": "24h"})
        assert rule.status_code == 201, rule.text
        tag = uuid.uuid4().hex[:6]
        accounts = [f"hook-{tag}-{i}" for i in range(6)]

        async def detractor(account: str) -> None:
            r = await metrics.post("/v1/surveys", json={"account_id": account, "kind": "nps", "score": 3})
            assert r.status_code == 202, r.text

        async def failed_attempts() -> bool:
            items = (await notifier.get("/v1/deliveries", params={"channel_id": channel})).json()["items"]
            return len(items) == 3 and all(d["attempts"] >= 2 and d["status"] != "delivered" for d in items)

        def arrived(n: int) -> Any:
            async def check() -> bool:
                return len({r.json()["data"]["subject"] for r in receiver.matching(
                    lambda r: r.json()["data"]["subject"] in accounts)}) >= n
            return check

        receiver.stop()
        try:
            for a in accounts[:3]:
                await detractor(a)
            await eventually(failed_attempts, timeout=60, message="deliveries failing while the receiver is down")
        finally:
            receiver.delay = 1.5  # slow, within the notifier's 5 s send timeout
            receiver.start()
        try:
            for a in accounts[3:5]:
                await detractor(a)
            await eventually(arrived(5), timeout=90, message="deliveries after the receiver came back slow")
        finally:
            receiver.delay = 0.0
        await detractor(accounts[5])
        await eventually(arrived(6), timeout=60, message="delivery once the receiver is fast again")
        await asyncio.sleep(3)  # a duplicate send would show up by now
        deliveries = (await notifier.get("/v1/deliveries", params={"channel_id": channel})).json()["items"]
        assert len(deliveries) == 6 and all(d["status"] == "delivered" for d in deliveries)
        retried = sum(d["attempts"] - 1 for d in deliveries)
    await oracle(suite, probe, Injection(
        "webhook receiver down, slow, back",
        f"receiver stopped (3 alerts, {retried} failed attempts in all), then 1.5 s per request, then normal",
        alerts=accounts), receiver=receiver, secret=secret)


# --- (a) the broker paused while writes continue ---------------------------------------------------------

@pytest.mark.slow
async def test_broker_paused_while_writes_continue(suite: Suite, probe: KafkaProbe) -> None:
    assert suite.broker is not None
    events = new_events("pause", 3000)
    http_events, kafka_events = events[:2000], events[2000:]
    accounts = [f"paused-{uuid.uuid4().hex[:6]}-{i}" for i in range(10)]
    acked_events: list[CloudEvent] = []
    refused_chunks: list[list[CloudEvent]] = []
    acked_accounts: list[str] = []
    refused = Counter[int]()
    async with suite.client("metrics") as metrics, suite.client("lifecycle") as lifecycle:
        suite.broker.pause()
        try:
            started = time.monotonic()
            direct = asyncio.create_task(probe.publish(USAGE_TOPIC, kafka_events))
            for i in range(10):
                chunk = http_events[i * 200:(i + 1) * 200]
                r = await post_events(metrics, chunk)
                if r.status_code == 202:
                    assert r.json()["accepted"] == len(chunk)
                    acked_events.extend(chunk)
                else:
                    # Not acknowledged in time: some of these may still reach the topic later.
                    assert r.status_code == 503 and r.headers["content-type"].startswith("application/problem+json")
                    assert r.headers["retry-after"]
                    refused[r.status_code] += 1
                    refused_chunks.append(chunk)
                a = await lifecycle.post("/v1/accounts", json={"id": accounts[i], "name": accounts[i], "seats": 5})
                if a.status_code == 201:
                    acked_accounts.append(accounts[i])
                else:
                    assert a.status_code == 503, a.text
                    refused[a.status_code] += 1
                await asyncio.sleep(max(0.0, started + 2.0 * (i + 1) - time.monotonic()))
            ready = await metrics.get("/readyz")
            assert ready.status_code == 503, "readyz must say the broker is unreachable"
            paused_for = time.monotonic() - started
        finally:
            suite.broker.resume()
        try:
            await direct
            direct_outcome = "acked after resume"
        except KafkaError:  # never acknowledged (bootstrap timed out in the pause): the producer retries
            await probe.publish(USAGE_TOPIC, kafka_events)
            direct_outcome = "timed out in the pause, re-sent"
        acked_events.extend(kafka_events)
        # As a client does with a 503: send the request again once the broker answers.
        for chunk in refused_chunks:
            r = await post_events(metrics, chunk)
            assert r.status_code == 202 and r.json()["accepted"] == len(chunk), r.text
            acked_events.extend(chunk)

        async def published() -> bool:
            created = {e.subject for e in await probe.events(LIFECYCLE_TOPIC)
                       if e.type == "postsales.account.created"}
            return set(acked_accounts) <= created

        await eventually(published, timeout=180, interval=1, message="accounts created during the pause published")
        found = 0
        for a in acked_accounts:
            found += (await lifecycle.get(f"/v1/accounts/{a}")).status_code == 200
    await oracle(suite, probe, Injection(
        "broker paused", f"SIGSTOP broker {paused_for:.0f} s during 10 HTTP batches + 10 account creates + "
        f"1000 direct publishes ({direct_outcome}); 503s: {sum(refused.values())}, re-sent after",
        events=acked_events, other_in=len(acked_accounts), other_out=found), timeout=240)


# --- (e) the database unavailable -----------------------------------------------------------------------

@contextlib.asynccontextmanager
async def database_down(suite: Suite) -> AsyncIterator[str]:
    """Metrics' database unavailable. SQLite: the file held by ``BEGIN EXCLUSIVE``. PostgreSQL: metrics
    is restarted to reach its database through a TCP proxy, which is cut (never stop the server:
    other tests use it); afterwards it is restarted on the direct URL (the proxy is slow under load)."""
    url = suite.database_urls["metrics"]
    if url.startswith("postgresql"):
        svc = suite.services["metrics"]
        proxy = TcpProxy(*database_endpoint(url)).start()
        direct_env = svc.env
        svc.env = direct_env | {"DATABASE_URL": proxied_url(url, proxy)}
        try:
            await asyncio.to_thread(suite.restart, "metrics")
            proxy.cut()
            try:
                yield "PostgreSQL behind a cut TCP proxy"
            finally:
                proxy.restore()
        finally:
            svc.env = direct_env
            await asyncio.to_thread(suite.restart, "metrics")
            proxy.stop()
        return
    path = make_url(url).database
    assert path
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    await asyncio.to_thread(conn.execute, "BEGIN EXCLUSIVE")
    try:
        yield "SQLite file held by BEGIN EXCLUSIVE"
    finally:
        await asyncio.to_thread(conn.execute, "ROLLBACK")
        conn.close()


async def test_database_unavailable(suite: Suite, probe: KafkaProbe) -> None:
    events = new_events("dbdown", 600)
    kafka_events, http_events = events[:400], events[400:]
    group = suite.prefix + "metrics-usage"
    async with database_down(suite) as how:
        before = await committed(suite, group, USAGE_TOPIC)
        await probe.publish(USAGE_TOPIC, kafka_events)
        metrics = suite.client("metrics")  # not a context manager: on PostgreSQL metrics restarts under it
        write = asyncio.create_task(post_events(metrics, http_events))
        await asyncio.sleep(8)
        during = await committed(suite, group, USAGE_TOPIC)
        assert during == before, f"offsets committed for unapplied events: {before} -> {during}"
        assert not any(r.key and r.key.decode() in {e.subject for e in events}
                       for r in await probe.read_all(USAGE_TOPIC + ".dlq", settle=0.2, timeout=3)), \
            "a database outage dead-lettered events"
    try:
        try:
            r: httpx.Response | None = await write
        except httpx.TransportError:  # the process was restarted under the request (PostgreSQL case)
            r = None
        if r is not None and r.status_code == 503:  # refused cleanly while the database was down
            assert r.headers["content-type"].startswith("application/problem+json")
        if r is None or r.status_code != 202:  # the client retries
            async with suite.client("metrics") as again:
                r = await post_events(again, http_events)
        assert r.status_code == 202 and r.json()["accepted"] == len(http_events), r.text
    finally:
        await metrics.aclose()
    await oracle(suite, probe, Injection(
        "database unavailable", f"{how} for ~8 s while 400 events arrive on the topic and 200 over HTTP; "
        "committed offsets unchanged meanwhile", events=events))
    after = await committed(suite, group, USAGE_TOPIC)
    assert sum(after.values()) - sum(before.values()) >= len(kafka_events) + len(http_events)


# --- (g) a consumer added and removed mid-stream ----------------------------------------------------------

@pytest.mark.slow
async def test_consumer_added_and_removed_mid_stream(suite: Suite, probe: KafkaProbe) -> None:
    # Random account names put all 8 on two of the 4 partitions now and then, and the second process may then
    # own the two empty ones: it would take partitions but no work.
    events = on_every_partition("rebalance", 8000, accounts=8)

    async def waves() -> None:  # about 32 s of traffic
        for i in range(0, len(events), 100):
            await probe.publish(USAGE_TOPIC, events[i:i + 100])
            await asyncio.sleep(0.4)

    extra = suite.spawn("metrics", METRICS_RUN_RELAY="false")
    publishing: asyncio.Task[None] | None = None
    try:
        await asyncio.to_thread(extra.wait_ready, suite.ready_timeout)
        publishing = asyncio.create_task(waves())

        async def took_work() -> float | None:
            try:
                async with httpx.AsyncClient(base_url=extra.url, timeout=15) as c:
                    n = consumed((await c.get("/metrics")).text, "metrics-usage")
            except httpx.TransportError:  # a loaded machine: ask again
                return None
            return n or None

        # It joins the groups while events flow (a rebalance), takes partitions and applies some.
        applied_by_extra = await eventually(took_work, timeout=60, interval=0.5,
                                            message="the second process took work")
        await asyncio.sleep(2)
        applied_by_extra = await took_work() or applied_by_extra
    finally:
        extra.stop()  # leaves the group: a second rebalance while events keep coming
    assert publishing is not None
    assert not publishing.done(), "traffic had ended before the second process left: lengthen the waves"
    await publishing
    await oracle(suite, probe, Injection(
        "consumer added and removed", f"2nd metrics process joined mid-stream (applied {applied_by_extra:.0f}), "
        "then SIGTERM", events=events), timeout=240)
