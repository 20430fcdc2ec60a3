"""The ``postsales`` ops CLI against the real embedded broker, real databases and real services over HTTP."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from aiokafka import AIOKafkaConsumer, TopicPartition
from click.testing import Result
from fastapi import FastAPI
from sqlalchemy import BigInteger, Column, Integer, String, Table, insert, select, update
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import DeclarativeBase
from typer.testing import CliRunner

from deploy.cli import app, suitefile
from shared.auth import KeyStore
from shared.db import TYPE_ANNOTATION_MAP, create_engine, infra_tables, service_metadata
from shared.events.broker import free_port
from shared.events.consumer import EventConsumer
from shared.events.kafka import ensure_topics, make_producer
from shared.events.registry import FEEDBACK_TOPIC, HANDOFF_TOPIC, LIFECYCLE_TOPIC, USAGE_TOPIC, dlq_topic
from shared.settings import hash_token
from shared.testing import ADMIN_TOKEN, KafkaProbe, eventually, make_event

ROOT = Path(__file__).parents[2]
runner = CliRunner()


async def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI off the event loop (it runs its own), so the services under test keep serving."""
    return await asyncio.to_thread(runner.invoke, app, list(args), env=env, catch_exceptions=False)


def json_lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def kafka_env(bootstrap: str, prefix: str) -> dict[str, str]:
    return {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "KAFKA_TOPIC_PREFIX": prefix}


@contextlib.asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Serve an app (its lifespan already running) with a real uvicorn on a free port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_config=None,
                                           access_log=False))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: _started(server), timeout=10, message="uvicorn started")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _started(server: uvicorn.Server) -> bool:
    return server.started


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test has its own data directory: a `make run` in the checkout must not leak into it."""
    path = tmp_path / "data"
    path.mkdir()
    monkeypatch.setenv("POSTSALES_DATA_DIR", str(path))
    for name in ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_TOPIC_PREFIX", "POSTSALES_TOKEN", "POSTSALES_METRICS_URL",
                 "POSTSALES_NOTIFIER_URL"):
        monkeypatch.delenv(name, raising=False)
    return path


def write_suite(data_dir: Path, **fields: Any) -> suitefile.SuiteFile:
    suite = suitefile.SuiteFile(**({"services": {}, "bootstrap": "", "pid": os.getpid()} | fields))
    suitefile.write(suitefile.path(data_dir), suite)
    return suite


# --- hash-token -------------------------------------------------------------------------------------

def test_hash_token_generates_a_strong_token_whose_hash_the_services_accept() -> None:
    result = runner.invoke(app, ["hash-token", "--scope", "alerts:read", "--scope", "metrics:read"])
    assert result.exit_code == 0, result.output
    lines = dict(line.split(":", 1) for line in result.stdout.splitlines()[:2])
    token, digest = lines["token"].strip(), lines["hash"].strip()
    assert len(token) >= 40 and digest == hash_token(token)
    entry = json.loads(result.stdout.splitlines()[2].split(":", 1)[1])
    assert entry == {digest: ["alerts:read", "metrics:read"]}
    principal = KeyStore(entry).authenticate(token)
    assert principal is not None and principal.scopes == {"alerts:read", "metrics:read"}
    assert KeyStore(entry).authenticate(token + "x") is None
    # Two runs never give the same token.
    again = runner.invoke(app, ["hash-token"])
    assert again.stdout.splitlines()[0].split(":", 1)[1].strip() != token


def test_hash_token_of_a_given_token_prints_only_the_hash_and_refuses_bad_input() -> None:
    token = "a-token-the-operator-chose-0123456789"
    result = runner.invoke(app, ["hash-token", token])
    assert result.exit_code == 0 and result.stdout.strip() == hash_token(token)
    assert token not in result.stdout
    assert KeyStore({result.stdout.strip(): ["admin"]}).authenticate(token) is not None
    from_stdin = runner.invoke(app, ["hash-token", "-"], input=token + "\n")
    assert from_stdin.stdout.strip() == hash_token(token)
    assert runner.invoke(app, ["hash-token", "short"]).exit_code == 2
    bad_scope = runner.invoke(app, ["hash-token", token, "--scope", "root"])
    assert bad_scope.exit_code == 2 and "unknown scope" in bad_scope.stderr


async def test_the_module_entry_point_runs_the_cli() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deploy.cli", "hash-token", "entry-point-token-0123456789",
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == hash_token("entry-point-token-0123456789")


# --- DLQ --------------------------------------------------------------------------------------------

class DemoBase(DeclarativeBase):
    metadata = service_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


demo_infra = infra_tables(DemoBase.metadata)
applied_table = Table("applied", DemoBase.metadata,
                      Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
                      Column("event_id", String(200), nullable=False))


def account_event(account: str, name: str) -> Any:
    return make_event("postsales.account.updated", account, {"account_id": account, "name": name})


async def test_dlq_list_and_replay_move_failed_events_back_once_and_they_are_applied_once(
        database_factory: Any, kafka_bootstrap: str, topic_prefix: str, kafka: KafkaProbe) -> None:
    topic = topic_prefix + LIFECYCLE_TOPIC
    await ensure_topics(kafka_bootstrap, [topic, dlq_topic(topic)], partitions=2)
    engine = create_engine(database_factory.empty("dlq"))
    async with engine.begin() as conn:
        await conn.run_sync(DemoBase.metadata.create_all)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    bug = {"present": True}

    async def handler(session: Any, event: Any) -> None:
        if bug["present"] and event.data["name"] == "poison":
            raise RuntimeError("downstream bug")
        await session.execute(insert(applied_table).values(event_id=event.id))

    producer = make_producer(kafka_bootstrap, client_id="dlq-test")
    await producer.start()
    consumer = EventConsumer(name="cli-dlq-consumer", topics=[LIFECYCLE_TOPIC], bootstrap=kafka_bootstrap,
                             session_factory=sessions, infra=demo_infra, handler=handler, topic_prefix=topic_prefix,
                             dlq_producer=producer, max_retries=0, retry_backoff=0)
    task = asyncio.create_task(consumer.run())
    good = [account_event(f"acct-{i}", "fine") for i in range(3)]
    poison = [account_event(f"acct-p{i}", "poison") for i in range(2)]
    env = kafka_env(kafka_bootstrap, topic_prefix)

    async def applied() -> Counter[str]:
        async with sessions() as s:
            return Counter((await s.execute(select(applied_table.c.event_id))).scalars())

    try:
        await kafka.publish(LIFECYCLE_TOPIC, [good[0], poison[0], good[1], poison[1], good[2]])
        await eventually(lambda: _stat(consumer, "dlq", 2), timeout=40, message="2 messages dead-lettered")
        await eventually(lambda: _applied_exactly(applied, {e.id for e in good}))
        originals = {event_id_of(r): r for r in await kafka.read_all(LIFECYCLE_TOPIC)}

        listed = await cli("dlq", "list", LIFECYCLE_TOPIC, "--json", env=env)
        assert listed.exit_code == 0, listed.output
        rows = json_lines(listed)
        assert {r["event_id"] for r in rows} == {e.id for e in poison}
        for r in rows:
            original = originals[r["event_id"]]
            assert r["event_type"] == "postsales.account.updated"
            assert r["error"] == "handler failed: RuntimeError: downstream bug"
            assert (r["original_topic"], r["original_partition"], r["original_offset"]) == (
                topic, original.partition, original.offset)
            assert r["consumer"] == "cli-dlq-consumer" and r["key"] == original.key.decode()
            assert r["replayed"] is False
        table = await cli("dlq", "list", f"{LIFECYCLE_TOPIC}.dlq", env=env)
        assert table.exit_code == 0 and "downstream bug" in table.stdout and "2 message(s)" in table.stderr

        dry = await cli("dlq", "replay", LIFECYCLE_TOPIC, "--dry-run", env=env)
        assert dry.exit_code == 0 and dry.stdout.count("would replay") == 2
        assert len(await kafka.read_all(LIFECYCLE_TOPIC, settle=0.2)) == 5

        bug["present"] = False  # the cause is fixed; now replay
        first = await cli("dlq", "replay", LIFECYCLE_TOPIC, env=env)
        assert first.exit_code == 0, first.output
        assert "replayed 2 message(s)" in first.stderr
        await eventually(lambda: _applied_exactly(applied, {e.id for e in good + poison}), timeout=30)

        second = await cli("dlq", "replay", LIFECYCLE_TOPIC, env=env)
        assert second.exit_code == 0 and "replayed 0 message(s)" in second.stderr
        records = await kafka.read_all(LIFECYCLE_TOPIC)
        on_topic = Counter(event_id_of(r) for r in records)
        assert on_topic == Counter({**{e.id: 1 for e in good}, **{e.id: 2 for e in poison}})
        for r in records:
            assert not any(k.startswith("dlq_") for k, _ in r.headers or [])
            if event_id_of(r) in {e.id for e in poison}:
                assert r.key == originals[event_id_of(r)].key and r.value == originals[event_id_of(r)].value
        await asyncio.sleep(0.5)  # a late duplicate application would show up here
        assert await applied() == Counter({e.id: 1 for e in good + poison})
        after = json_lines(await cli("dlq", "list", LIFECYCLE_TOPIC, "--json", env=env))
        assert [r["replayed"] for r in after] == [True, True]
        assert json_lines(await cli("dlq", "list", LIFECYCLE_TOPIC, "--json", "--pending", env=env)) == []
    finally:
        consumer.stop()
        await task
        await producer.stop()
        await engine.dispose()


def event_id_of(record: Any) -> str:
    return str(json.loads(record.value)["id"])


async def _stat(consumer: EventConsumer, key: str, n: int) -> bool:
    return consumer.stats[key] >= n


async def _applied_exactly(applied: Any, ids: set[str]) -> bool:
    counts = await applied()
    return set(counts) == ids and all(n == 1 for n in counts.values())


async def test_dlq_replay_sends_a_message_dead_lettered_by_two_consumers_once_and_lists_non_json(
        kafka_bootstrap: str, topic_prefix: str, kafka: KafkaProbe) -> None:
    topic = topic_prefix + HANDOFF_TOPIC
    await ensure_topics(kafka_bootstrap, [topic, dlq_topic(topic)], partitions=1)
    event = make_event("postsales.commitment.updated", "acct-9", {"handoff_id": "h1", "commitment_id": "c1",
                                                                  "title": "SSO", "status": "delivered"})
    producer = make_producer(kafka_bootstrap, client_id="dlq-direct")
    await producer.start()
    try:
        # Exactly the record shape shared/events/consumer.py writes: original bytes, key, dlq_* headers.
        for value, consumer_name, offset in [(event.to_bytes(), "lifecycle-events", 7),
                                             (event.to_bytes(), f"{topic_prefix}notifier-events", 7),
                                             (b"{not json", "lifecycle-events", 8)]:
            await producer.send_and_wait(dlq_topic(topic), value=value, key=b"acct-9", headers=[
                ("traceparent", b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
                ("dlq_error", b"invalid event: boom" if value.startswith(b"{not") else b"handler failed: X: y"),
                ("dlq_original_topic", topic.encode()), ("dlq_original_partition", b"0"),
                ("dlq_original_offset", str(offset).encode()), ("dlq_consumer", consumer_name.encode())])
    finally:
        await producer.stop()
    env = kafka_env(kafka_bootstrap, topic_prefix)
    rows = json_lines(await cli("dlq", "list", HANDOFF_TOPIC, "--json", env=env))
    assert [(r["event_id"], r["original_offset"]) for r in rows] == [(event.id, 7), (event.id, 7), (None, 8)]
    assert rows[2]["error"] == "invalid event: boom" and rows[2]["event_type"] is None
    assert len(json_lines(await cli("dlq", "list", HANDOFF_TOPIC, "--json", "--limit", "1", env=env))) == 1

    replay = await cli("dlq", "replay", HANDOFF_TOPIC, env=env)
    assert replay.exit_code == 0 and "replayed 2 message(s)" in replay.stderr and "skipped 1" in replay.stderr
    records = await kafka.read_all(HANDOFF_TOPIC)
    assert [r.value for r in records] == [event.to_bytes(), b"{not json"]
    assert all(r.key == b"acct-9" for r in records)
    assert dict(records[0].headers)["traceparent"].startswith(b"00-0af7")  # trace context survives a replay

    unknown = await cli("dlq", "list", "postsales.nope.v1", env=env)
    assert unknown.exit_code == 2 and "unknown topic" in unknown.stderr
    missing = await cli("dlq", "list", FEEDBACK_TOPIC, env=env)
    assert missing.exit_code == 1 and "does not exist" in missing.stderr
    down = await cli("dlq", "list", HANDOFF_TOPIC, env=kafka_env(f"127.0.0.1:{free_port()}", topic_prefix))
    assert down.exit_code == 1 and "Kafka" in down.stderr


# --- outbox backlog and consumer lag ---------------------------------------------------------------

async def test_outbox_reports_each_services_unpublished_rows_from_its_own_database(
        database_factory: Any, tmp_path: Path) -> None:
    from services.handoff.models import infra

    url = database_factory.new("handoff")
    engine = create_engine(url)
    outbox = infra.outbox
    try:
        async with engine.begin() as conn:
            for i in range(4):
                await conn.execute(insert(outbox).values(
                    event_id=f"e{i}", topic=HANDOFF_TOPIC, key="acct", payload=b"{}", attempts=0,
                    created_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10 - i)))
            await conn.execute(update(outbox).where(outbox.c.event_id == "e0")
                               .values(published_at=dt.datetime.now(dt.UTC)))
            await conn.execute(update(outbox).where(outbox.c.event_id == "e2")
                               .values(attempts=3, last_error="KafkaTimeoutError: broker down"))
        env = {"HANDOFF_DATABASE_URL": url, "DATABASE_URL": "",
               "LIFECYCLE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'missing.db'}"}
        result = await cli("outbox", "--service", "handoff", "--service", "lifecycle", "--json", env=env)
        assert result.exit_code == 1  # lifecycle has no database: reported, and the exit code says so
        rows = {r["service"]: r for r in json_lines(result)}
        handoff = rows["handoff"]
        assert (handoff["pending"], handoff["failing"], handoff["error"]) == (3, 1, None)
        assert 9 * 60 - 5 <= handoff["oldest_age_seconds"] <= 9 * 60 + 60  # e1 is the oldest unpublished
        assert handoff["last_error"] == "KafkaTimeoutError: broker down"
        assert "no database" in rows["lifecycle"]["error"]

        async with engine.begin() as conn:
            await conn.execute(update(outbox).values(published_at=dt.datetime.now(dt.UTC)))
        table = await cli("outbox", "--service", "handoff", env=env)
        assert table.exit_code == 0
        assert table.stdout.splitlines()[0].split()[:4] == ["SERVICE", "PENDING", "FAILING", "OLDEST_AGE_SECONDS"]
        assert table.stdout.splitlines()[1].split()[:3] == ["handoff", "0", "0"]
        assert (await cli("outbox", "--service", "billing", env=env)).exit_code == 2
    finally:
        await engine.dispose()


async def test_lag_shows_end_minus_committed_per_group_and_partition(
        kafka_bootstrap: str, topic_prefix: str, kafka: KafkaProbe) -> None:
    topic = topic_prefix + USAGE_TOPIC
    await ensure_topics(kafka_bootstrap, [topic], partitions=2)
    # Multi-record batches, as the relay and ingest send them: on the embedded broker, ListOffsets
    # answers the last batch's base offset + 1 (END 1 for a 3-record batch), the high watermark is right.
    await kafka.publish(USAGE_TOPIC, [make_event("usage.login", f"a{i}", {"user_id": "u"}) for i in range(3)],
                        key="left")
    await kafka.publish(USAGE_TOPIC, [make_event("usage.login", f"a{i}", {"user_id": "u"}) for i in (3, 4)],
                        key="right")
    records = await kafka.read_all(USAGE_TOPIC)
    per_partition = Counter(r.partition for r in records)
    assert sum(per_partition.values()) == 5
    group = f"{topic_prefix}metrics-usage"
    consumer = AIOKafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        committed = {p: min(1, n) for p, n in per_partition.items()}  # one read per non-empty partition
        consumer.assign([TopicPartition(topic, p) for p in committed])
        await consumer.commit({TopicPartition(topic, p): c for p, c in committed.items()})
    finally:
        await consumer.stop()
    expected = sorted((group, USAGE_TOPIC, p, committed[p], per_partition[p], per_partition[p] - committed[p])
                      for p in per_partition)
    env = kafka_env(kafka_bootstrap, topic_prefix)
    for args in (["lag", "--json"], ["lag", "--json", "--group", group]):
        result = await cli(*args, env=env)
        assert result.exit_code == 0, result.output
        got = sorted((r["group"], r["topic"], r["partition"], r["committed"], r["end"], r["lag"])
                     for r in json_lines(result))
        assert got == expected, args
    table = await cli("lag", env=env)
    assert f"total lag {group}: {5 - sum(committed.values())}" in table.stderr

    # Without flags or environment, the running `make run` suite's broker and prefix are used.
    data_dir = Path(os.environ["POSTSALES_DATA_DIR"])
    write_suite(data_dir, bootstrap=kafka_bootstrap, topic_prefix=topic_prefix)
    found = await cli("lag", "--json", "--group", group)
    assert found.exit_code == 0, found.output
    assert sorted((r["topic"], r["partition"], r["end"]) for r in json_lines(found)) == sorted(
        (USAGE_TOPIC, p, per_partition[p]) for p in per_partition)
    # A flag beats the suite file: a broker nobody listens on fails, it does not fall back.
    down = await cli("lag", "--bootstrap", f"127.0.0.1:{free_port()}", "--group", group)
    assert down.exit_code == 1 and "Kafka" in down.stderr


# --- HTTP commands ---------------------------------------------------------------------------------

async def test_recompute_posts_the_period_to_the_metrics_service(service: Any, kafka: KafkaProbe) -> None:
    async with service("metrics") as svc, serve(svc.app) as url:
        day = dt.datetime(2026, 11, 12, 10, tzinfo=dt.UTC)
        events = [make_event("usage.login", "acct-r", {"user_id": f"u{i}"}, time=day, source="/product")
                  for i in range(3)]
        response = await svc.client.post("/v1/events", json=[json.loads(e.to_bytes()) for e in events])
        assert response.status_code == 202, response.text

        async def ingested() -> bool:
            r = await svc.client.get("/v1/accounts/acct-r/usage", params={"from": "2026-11-12", "to": "2026-11-12"})
            return r.status_code == 200 and bool(r.json()["items"])

        await eventually(ingested, timeout=60, message="usage ingested")
        env = {"POSTSALES_TOKEN": ADMIN_TOKEN, "POSTSALES_METRICS_URL": url}
        result = await cli("recompute", "--from", "2026-11-01", "--to", "2026-11-30", env=env)
        assert result.exit_code == 0, result.output
        body = json.loads(result.stdout)
        assert (body["from"], body["to"], body["raw_events"], body["accounts"]) == ("2026-11-01", "2026-11-30", 3, 1)
        assert ADMIN_TOKEN not in result.output
        one = json.loads((await cli("recompute", "--from", "2026-11-12", "--to", "2026-11-12", "--account",
                                    "nobody", env=env)).stdout)
        assert one["raw_events"] == 0

        wrong = await cli("recompute", "--from", "2026-11-01", "--to", "2026-11-30",
                          env={**env, "POSTSALES_TOKEN": "not-a-real-token-0123456789"})
        assert wrong.exit_code == 1 and "HTTP 401" in wrong.stderr and "not-a-real-token" not in wrong.output
        read_only = await cli("recompute", "--from", "2026-11-01", "--to", "2026-11-30", "--url", url,
                              "--token", "test-metrics-ro-token-0123456789", env={"POSTSALES_TOKEN": ""})
        assert read_only.exit_code == 1 and "HTTP 403" in read_only.stderr
        backwards = await cli("recompute", "--from", "2026-11-30", "--to", "2026-11-01", env=env)
        assert backwards.exit_code == 2
        no_token = await cli("recompute", "--from", "2026-11-01", "--to", "2026-11-30", "--url", url,
                             env={"POSTSALES_TOKEN": ""})
        assert no_token.exit_code == 2 and "POSTSALES_TOKEN" in no_token.stderr


async def test_alerts_tail_prints_existing_then_new_alerts_once(service: Any, kafka: KafkaProbe) -> None:
    def detractor(account: str) -> Any:
        return make_event("postsales.survey.nps", account, {"score": 2, "respondent": "cfo@example.com"})

    async def firing(n: int) -> list[dict[str, Any]] | None:
        items = (await svc.client.get("/v1/alerts", params={"status": "firing"})).json()["items"]
        return items if len(items) >= n else None

    async with service("notifier") as svc, serve(svc.app) as url:
        await kafka.publish(FEEDBACK_TOPIC, [detractor("acct-1")])
        await eventually(lambda: firing(1), timeout=60, message="first alert fired")
        env = {**os.environ, "POSTSALES_TOKEN": ADMIN_TOKEN, "POSTSALES_NOTIFIER_URL": url}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "deploy.cli", "alerts", "tail", "--status", "firing", "--count", "2",
            "--interval", "0.1", "--json", cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            assert proc.stdout is not None
            first = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
            assert first["subject"] == "acct-1" and first["status"] == "firing"
            await kafka.publish(FEEDBACK_TOPIC, [detractor("acct-1"), detractor("acct-2")])
            out, err = await asyncio.wait_for(proc.communicate(), 60)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert proc.returncode == 0, err.decode()
        rest = [json.loads(line) for line in out.decode().splitlines()]
        # acct-1's second detractor folds into the open alert: only acct-2's alert is new.
        assert [a["subject"] for a in rest] == ["acct-2"]
        assert ADMIN_TOKEN.encode() not in out + err

        lines = await cli("alerts", "tail", "--count", "2", "--backlog", "5", "--url", url,
                          env={"POSTSALES_TOKEN": ADMIN_TOKEN})
        assert lines.exit_code == 0
        assert sorted(line.split()[3] for line in lines.stdout.splitlines()) == ["acct-1", "acct-2"]
        refused = await cli("alerts", "tail", "--url", url, env={"POSTSALES_TOKEN": "test-no-scope-token-0123456789ab"})
        assert refused.exit_code == 1 and "HTTP 403" in refused.stderr


# --- finding the local suite --------------------------------------------------------------------------

async def test_http_commands_use_the_running_suite_and_send_its_token_only_to_its_own_addresses(
        service: Any, data_dir: Path) -> None:
    async with service("notifier") as svc, serve(svc.app) as url:
        token_file = data_dir / "dev-token"
        no_scope = "test-no-scope-token-0123456789ab"
        token_file.write_text(no_scope + "\n")
        # No suite file: no address to guess, so nothing is sent anywhere.
        nowhere = await cli("alerts", "tail", "--count", "1")
        assert nowhere.exit_code == 2 and "make run" in nowhere.stderr

        write_suite(data_dir, services={"notifier": url, "metrics": "http://127.0.0.1:1"}, token_file=str(token_file))
        found = await cli("alerts", "tail", "--count", "1")
        # The suite's notifier answered, with the suite's token (which has no alerts scope here).
        assert found.exit_code == 1 and "HTTP 403" in found.stderr, found.output

        # An address the suite did not list never receives the suite's token.
        elsewhere = await cli("alerts", "tail", "--url", "http://127.0.0.1:9/")
        assert elsewhere.exit_code == 2 and "no token" in elsewhere.stderr
        # The environment beats the suite file; flags beat the environment.
        bad = await cli("alerts", "tail", env={"POSTSALES_NOTIFIER_URL": f"http://127.0.0.1:{free_port()}",
                                               "POSTSALES_TOKEN": ADMIN_TOKEN})
        assert bad.exit_code == 1 and "notifier at http://127.0.0.1:" in bad.stderr
        back = await cli("recompute", "--from", "2026-11-01", "--to", "2026-11-02", "--url", url,
                         env={"POSTSALES_METRICS_URL": "http://127.0.0.1:1"})
        assert "HTTP 404" in back.stderr  # the flag's address (the notifier) answered, not the env's
        assert ADMIN_TOKEN not in back.output + bad.output + elsewhere.output
        assert no_scope not in found.output

        # A suite whose runner is gone (or that stopped) is ignored.
        write_suite(data_dir, services={"notifier": url}, token_file=str(token_file), pid=2**22 + 12345)
        assert (await cli("alerts", "tail", "--count", "1")).exit_code == 2
        write_suite(data_dir, services={"notifier": url}, token_file=str(token_file), status="stopped")
        assert (await cli("alerts", "tail", "--count", "1")).exit_code == 2


def test_the_suite_file_is_written_atomically_and_read_back(data_dir: Path) -> None:
    target = suitefile.path(data_dir)
    suite = write_suite(data_dir, services={"handoff": "http://127.0.0.1:8001"}, bootstrap="127.0.0.1:9092")
    assert suitefile.read(target) == suite
    assert [p.name for p in data_dir.iterdir()] == ["suite.json"]  # no temp file left behind
    assert oct(target.stat().st_mode & 0o777) == "0o600"
    assert suite.knows("http://127.0.0.1:8001/") and not suite.knows("http://127.0.0.1:8004")
    suitefile.mark_stopped(target, pid=os.getpid() + 1)  # another runner's exit leaves ours alone
    assert suitefile.read(target) == suite
    suitefile.mark_stopped(target, pid=os.getpid())
    assert suitefile.read(target) is None and suitefile.read_any(target).status == "stopped"
    target.write_text("{half a fi")
    assert suitefile.read(target) is None


# --- webhooks listen ---------------------------------------------------------------------------------

async def test_webhooks_listen_prints_each_delivery_and_checks_its_signature() -> None:
    import httpx
    from standardwebhooks import Webhook

    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "deploy.cli", "webhooks", "listen", "--port", str(port), "--secret", secret,
        "--count", "2", "--json", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        body = json.dumps({"type": "alert.firing", "data": {"subject": "acme-corp"}})
        now = dt.datetime.now(dt.UTC)
        good = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": Webhook(secret).sign("msg_1", now, body), "content-type": "application/json"}
        forged = good | {"webhook-id": "msg_2"}  # the signature covers the id: reusing it is a forgery

        async def post(headers: dict[str, str]) -> int | None:
            try:
                async with httpx.AsyncClient() as client:
                    return (await client.post(f"http://127.0.0.1:{port}/hooks/cs", content=body,
                                              headers=headers)).status_code
            except httpx.TransportError:
                return None

        await eventually(lambda: post(good), timeout=60, message="the listener answered")
        assert await post(forged) == 204
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    lines = [json.loads(line) for line in out.decode().splitlines()]
    assert [(d["webhook_id"], d["path"]) for d in lines] == [("msg_1", "/hooks/cs"), ("msg_2", "/hooks/cs")]
    assert lines[0]["signature"] == "valid" and lines[0]["body"]["data"] == {"subject": "acme-corp"}
    assert lines[1]["signature"].startswith("INVALID")
