"""Transactional outbox: events are written with the state change, in the same transaction,
and a relay publishes them to Kafka afterwards.

Ordering: the relay publishes unpublished rows in id order, and a row only once every earlier
unpublished row with the same key is published in the same pass, so per-key (per-account)
order holds across failures and replicas. On PostgreSQL replicas claim rows with
``FOR UPDATE SKIP LOCKED`` and hold the locks until the rows are marked; on SQLite (one process
per file) the relay reads, publishes, then marks. A crash between publish and mark republishes:
consumers drop the duplicate by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from sqlalchemy import BigInteger, Table, any_, delete, func, literal, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.db import READ_ONLY, is_postgresql, is_sqlite, utcnow
from shared.events.envelope import CloudEvent, InvalidEvent
from shared.events.kafka import start_with_retry
from shared.events.registry import lookup, validate_event
from shared.observability import Metrics, current_request_id
from shared.tracing import current_traceparent, serialize

log = logging.getLogger("postsales.outbox")


class Outbox:
    """Adds events to a service's outbox table, inside the caller's session and transaction."""

    def __init__(self, table: Table) -> None:
        self.table = table

    async def add(self, session: AsyncSession, event: CloudEvent) -> None:
        et = validate_event(event)
        payload = serialize(event, current_traceparent())
        await self.add_raw(session, topic=et.topic, key=event.subject, event_id=event.id, payload=payload)

    async def add_many(self, session: AsyncSession, events: Sequence[CloudEvent], *, validated: bool = False) -> None:
        """Add events in one bulk insert; pass ``validated=True`` when the caller already ran
        :func:`validate_event` on each (high-volume ingestion)."""
        traceparent = current_traceparent()
        rows = []
        for ev in events:
            et = lookup(ev.type) if validated else validate_event(ev)
            if et is None:
                raise InvalidEvent(f"unknown event type '{ev.type}'")
            rows.append(self._row(et.topic, ev.subject, ev.id, serialize(ev, traceparent)))
        if rows:
            await session.execute(self.table.insert(), rows)
            session.info["outbox_dirty"] = True

    async def add_raw(self, session: AsyncSession, *, topic: str, key: str, event_id: str, payload: bytes) -> None:
        await session.execute(self.table.insert().values(**self._row(topic, key, event_id, payload)))
        session.info["outbox_dirty"] = True

    def _row(self, topic: str, key: str, event_id: str, payload: bytes) -> dict[str, Any]:
        headers = {"request_id": rid} if (rid := current_request_id()) else None
        return {"event_id": event_id, "topic": topic, "key": key, "payload": payload,
                "headers": headers, "created_at": utcnow(), "attempts": 0}


def publishable(batch: Sequence[Any], pending_by_key: dict[str, list[int]]) -> list[Any]:
    """The rows of ``batch`` that can go now: for each key, the run of its oldest pending rows
    that are all in the batch (a row whose older same-key sibling is elsewhere must wait)."""
    in_batch = {r.id for r in batch}
    allowed: set[int] = set()
    for ids in pending_by_key.values():
        for row_id in sorted(ids):
            if row_id not in in_batch:
                break
            allowed.add(row_id)
    return [r for r in batch if r.id in allowed]


class OutboxRelay:
    """Publishes a service's outbox to Kafka. Start with :meth:`run` as a task; stop via ``stop``."""

    def __init__(self, *, table: Table, session_factory: async_sessionmaker[AsyncSession],
                 producer: AIOKafkaProducer, topic_prefix: str = "", poll_interval: float = 0.2,
                 batch_size: int = 1000, metrics: Metrics | None = None, publish_timeout: float = 20.0,
                 retention: dt.timedelta = dt.timedelta(days=7)) -> None:
        self.table = table
        self.session_factory = session_factory
        self.producer = producer
        self.topic_prefix = topic_prefix
        self.poll_interval = poll_interval
        self.batch_size = batch_size
        self.metrics = metrics
        self.publish_timeout = publish_timeout
        self.retention = retention
        self._last_purge = 0.0
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self.started = asyncio.Event()

    def notify(self) -> None:
        """Wake the relay now (called after a commit that wrote to the outbox)."""
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    async def run(self) -> None:
        if not await start_with_retry(self.producer.start, what="outbox relay", stop=self._stop):
            return
        self.started.set()
        failures = 0
        while not self._stop.is_set():
            try:
                sent = await self.relay_once()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                sent = 0
                log.warning("outbox relay pass failed (%s: %s); will retry", type(exc).__name__, exc)
                await asyncio.sleep(min(0.2 * 2**failures, 5.0))
            if sent:
                continue
            await self._maybe_purge()
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.poll_interval)

    async def relay_once(self) -> int:
        """One pass: publish up to ``batch_size`` rows; returns how many were marked published."""
        async with self.session_factory() as session:
            if is_sqlite(session):
                async with session.begin():
                    await session.connection(execution_options={READ_ONLY: True})
                    batch, pending = await self._claim(session, lock=False)
                if not batch:
                    return 0
                ok, failed = await self._publish(publishable(batch, pending))
                async with session.begin():
                    await self._mark(session, ok, failed)
                return len(ok)
            async with session.begin():
                batch, pending = await self._claim(session, lock=True)
                if not batch:
                    return 0
                ok, failed = await self._publish(publishable(batch, pending))
                await self._mark(session, ok, failed)
            return len(ok)

    async def _maybe_purge(self) -> None:
        """Delete rows published longer ago than ``retention`` (at most once a minute)."""
        now = time.monotonic()
        if now - self._last_purge < 60:
            return
        self._last_purge = now
        t = self.table
        try:
            async with self.session_factory() as session, session.begin():
                await session.execute(delete(t).where(t.c.published_at < utcnow() - self.retention))
        except Exception as exc:
            log.warning("outbox purge failed (%s)", type(exc).__name__)

    async def _claim(self, session: AsyncSession, *, lock: bool) -> tuple[list[Any], dict[str, list[int]]]:
        t = self.table
        q = (select(t.c.id, t.c.event_id, t.c.topic, t.c.key, t.c.payload, t.c.headers)
             .where(t.c.published_at.is_(None)).order_by(t.c.id).limit(self.batch_size))
        if lock:
            q = q.with_for_update(skip_locked=True)
        batch = list((await session.execute(q)).all())
        if not batch:
            return [], {}
        keys = {r.key for r in batch}
        max_id = max(r.id for r in batch)
        pq = select(t.c.key, t.c.id).where(
            t.c.published_at.is_(None), t.c.key.in_(keys), t.c.id <= max_id
        )
        pending: dict[str, list[int]] = {}
        for key, row_id in (await session.execute(pq)).all():
            pending.setdefault(key, []).append(row_id)
        return batch, pending

    async def _publish(self, rows: Sequence[Any]) -> tuple[list[int], dict[int, str]]:
        futures = []
        for r in rows:
            headers = [(k, str(v).encode()) for k, v in (r.headers or {}).items()]
            headers.append(("ce_id", r.event_id.encode()))
            fut = await self.producer.send(self.topic_prefix + r.topic, value=r.payload,
                                           key=r.key.encode(), headers=headers)
            futures.append(fut)
        try:
            results = await asyncio.wait_for(
                asyncio.gather(*futures, return_exceptions=True), timeout=self.publish_timeout
            )
        except TimeoutError:
            results = [f.result() if f.done() and not f.exception() else TimeoutError("publish timed out")
                       for f in futures]
        ok: list[int] = []
        failed: dict[int, str] = {}
        failed_keys: set[str] = set()
        for r, res in zip(rows, results, strict=True):
            if isinstance(res, BaseException) or r.key in failed_keys:
                # Everything after a failure on the same key is republished later, to keep order.
                failed[r.id] = repr(res) if isinstance(res, BaseException) else "held back behind a failure"
                failed_keys.add(r.key)
            else:
                ok.append(r.id)
        if self.metrics:
            self.metrics.outbox_published.inc(len(ok))
        if failed:
            log.warning("outbox: %d of %d events not published yet", len(failed), len(rows))
        return ok, failed

    async def _mark(self, session: AsyncSession, ok: list[int], failed: dict[int, str]) -> None:
        t = self.table
        now = utcnow()
        if ok and is_postgresql(session):
            # One array parameter: a single cached plan instead of a new 500-parameter statement each pass.
            ids = literal(ok, ARRAY(BigInteger))
            await session.execute(update(t).where(t.c.id == any_(ids)).values(published_at=now))
        else:
            for i in range(0, len(ok), 500):
                await session.execute(update(t).where(t.c.id.in_(ok[i:i + 500])).values(published_at=now))
        for row_id, err in failed.items():
            await session.execute(
                update(t).where(t.c.id == row_id).values(attempts=t.c.attempts + 1, last_error=err[:1000])
            )


async def outbox_backlog(session: AsyncSession, table: Table) -> int:
    return int((await session.execute(
        select(func.count()).select_from(table).where(table.c.published_at.is_(None))
    )).scalar_one())
