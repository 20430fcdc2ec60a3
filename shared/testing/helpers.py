"""Helpers for tests of the services: running apps, a Kafka probe, polling assertions."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import importlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from fastapi import FastAPI

from shared.app import ServiceContext
from shared.events.envelope import CloudEvent
from shared.settings import ServiceSettings

ADMIN_TOKEN = "test-admin-token-0123456789abcdef"  # noqa: S105 - test-only credential
TEST_API_KEYS: dict[str, list[str]] = {
    ADMIN_TOKEN: ["admin"],
    "test-handoff-rw-token-0123456789": ["handoff:read", "handoff:write"],
    "test-handoff-ro-token-0123456789": ["handoff:read"],
    "test-lifecycle-rw-token-01234567": ["lifecycle:read", "lifecycle:write"],
    "test-lifecycle-ro-token-01234567": ["lifecycle:read"],
    "test-metrics-ro-token-0123456789": ["metrics:read"],
    "test-events-w-token-0123456789ab": ["events:write"],
    "test-alerts-rw-token-0123456789a": ["alerts:read", "alerts:write"],
    "test-alerts-ro-token-0123456789a": ["alerts:read"],
    "test-no-scope-token-0123456789ab": [],
}

T = TypeVar("T")


def service_module(name: str) -> tuple[Callable[[ServiceSettings], FastAPI], type[ServiceSettings], Path]:
    app_mod = importlib.import_module(f"services.{name}.app")
    settings_mod = importlib.import_module(f"services.{name}.settings")
    return app_mod.create_app, settings_mod.Settings, app_mod.MIGRATIONS


@dataclass
class RunningService:
    """A service app running in this process (lifespan started) and an authenticated client."""

    name: str
    app: FastAPI
    client: httpx.AsyncClient
    settings: ServiceSettings

    @property
    def ctx(self) -> ServiceContext[Any, Any]:
        ctx: ServiceContext[Any, Any] = self.app.state.ctx
        return ctx

    def client_for(self, token: str | None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                 base_url="http://testserver", headers=headers)


@contextlib.asynccontextmanager
async def run_service(name: str, settings: ServiceSettings) -> AsyncIterator[RunningService]:
    create_app, _, _ = service_module(name)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://testserver", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        async with client:
            yield RunningService(name=name, app=app, client=client, settings=settings)


def make_event(type: str, subject: str, data: dict[str, Any] | None = None, *, source: str = "/tests",
               id: str | None = None, time: dt.datetime | None = None) -> CloudEvent:
    return CloudEvent.new(type=type, source=source, subject=subject, data=data or {}, id=id, time=time)


async def eventually(check: Callable[[], Awaitable[T]], *, timeout: float = 20.0, interval: float = 0.05,
                     message: str = "condition not met") -> T:
    """Await ``check()`` until it returns a truthy value (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            result = await check()
            if result:
                return result
            last = result
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} within {timeout}s (last: {last!r})")
        await asyncio.sleep(interval)


class KafkaProbe:
    """Publishes raw messages and reads topics from the beginning, for assertions on the real bus."""

    def __init__(self, bootstrap: str, prefix: str) -> None:
        self.bootstrap = bootstrap
        self.prefix = prefix

    async def publish(self, topic: str, messages: list[CloudEvent | bytes | dict[str, Any]],
                      key: str | None = None) -> None:
        import json

        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, enable_idempotence=False, acks="all")
        await producer.start()
        try:
            futures = []
            for m in messages:
                if isinstance(m, CloudEvent):
                    value, k = m.to_bytes(), key or m.subject
                elif isinstance(m, dict):
                    value, k = json.dumps(m).encode(), key or str(m.get("subject", "k"))
                else:
                    value, k = m, key or "k"
                futures.append(await producer.send(self.prefix + topic, value=value, key=k.encode()))
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    async def read_all(self, topic: str, *, settle: float = 0.5, timeout: float = 10.0) -> list[ConsumerRecord]:
        """Every record on ``topic`` (prefixed), read until ``settle`` seconds pass with nothing new."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False,
                                    auto_offset_reset="earliest", group_id=None)
        await consumer.start()
        try:
            name = self.prefix + topic
            parts = await _partitions(consumer, name, timeout)
            if not parts:
                return []
            tps = [TopicPartition(name, p) for p in sorted(parts)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            records: list[ConsumerRecord] = []
            deadline = time.monotonic() + timeout
            quiet_since = time.monotonic()
            while time.monotonic() < deadline:
                batch = await consumer.getmany(timeout_ms=100)
                for recs in batch.values():
                    records.extend(recs)
                if batch:
                    quiet_since = time.monotonic()
                done = all([await _position(consumer, tp) >= end[tp] for tp in tps])
                if done and time.monotonic() - quiet_since >= settle:
                    break
            return records
        finally:
            await consumer.stop()

    async def events(self, topic: str, **kw: Any) -> list[CloudEvent]:
        return [CloudEvent.from_bytes(r.value) for r in await self.read_all(topic, **kw)]


@contextlib.asynccontextmanager
async def kafka_client(bootstrap: str, group: str | None = None) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer that subscribes to nothing: for metadata, watermarks and a group's commits."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    await consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop()


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> list[TopicPartition]:
    """The partitions of ``topic``, in order; AssertionError if it has none within 10 s."""
    parts = await _partitions(consumer, topic, 10.0)
    if not parts:
        raise AssertionError(f"topic {topic} has no partitions")
    return [TopicPartition(topic, p) for p in sorted(parts)]


async def _partitions(consumer: AIOKafkaConsumer, topic: str, timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await consumer._client.force_metadata_update()
        parts = consumer.partitions_for_topic(topic)
        if parts:
            return set(parts)
        await asyncio.sleep(0.1)
    return set()


async def _position(consumer: AIOKafkaConsumer, tp: TopicPartition) -> int:
    return int(await consumer.position(tp))


def unique_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}."
