"""The delivery worker: claims due deliveries, sends them concurrently, records every attempt.

A claim (one transaction) marks the delivery ``sending`` with a lease (``claimed_until``), bumps
its attempt count and writes the attempt row before anything is sent; rows are picked with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL so replicas never claim the same delivery. The outcome is
written afterwards. If the process dies in between, the lease runs out, the open attempt is closed
as ``abandoned`` and a new attempt (a new row) is made: each attempt row is at most one send, and the
receiver sees the same ``webhook-id`` on every attempt to drop repeats.

Per-channel in-flight limits are applied when claiming, so a slow or failing target can only hold
its own slots, and every send has a timeout. The queries are in ``deliveries/repository.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.channels import repository as channels_repo
from services.notifier.crypto import SecretBox
from services.notifier.deliveries import repository
from services.notifier.deliveries.service import backoff
from services.notifier.models import DeliveryAttempt
from services.notifier.senders import SendError, dispatch
from services.notifier.settings import Settings
from shared.db import utcnow

log = logging.getLogger("postsales.notifier.deliveries")


@dataclass(frozen=True)
class Claim:
    delivery_id: str
    channel_id: str
    kind: str
    payload: dict[str, Any]
    number: int
    attempt_id: str


class DeliveryWorker:
    def __init__(self, *, settings: Settings, session_factory: async_sessionmaker[AsyncSession],
                 box: SecretBox, client: httpx.AsyncClient, wake: asyncio.Event, stopping: asyncio.Event) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.box = box
        self.client = client
        self.wake = wake
        self.stopping = stopping
        self.in_flight: Counter[str] = Counter()
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        try:
            while not self.stopping.is_set():
                claims = await self.claim()
                for c in claims:
                    task = asyncio.create_task(self._send(c), name=f"delivery:{c.delivery_id}")
                    self.tasks.add(task)
                    task.add_done_callback(self._done)
                if claims:
                    continue
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first(self.wake.wait(), self.stopping.wait()),
                                           timeout=self.settings.delivery_poll_interval)
        finally:
            if self.tasks:
                # Let sends in flight finish and record their outcome; they have their own timeout.
                await asyncio.wait(self.tasks, timeout=self.settings.delivery_timeout + 2)

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed: %r", task.exception())
        self.wake.set()

    async def claim(self) -> list[Claim]:
        now = utcnow()
        limit = self.settings.delivery_concurrency_per_channel
        async with self.session_factory() as session, session.begin():
            rows = await repository.due(session, now, self.settings.delivery_batch_size)
            counts = Counter(self.in_flight)
            claims: list[Claim] = []
            lease_end = now + dt.timedelta(seconds=self.settings.delivery_lease)
            for d in rows:
                if counts[d.channel_id] >= limit:
                    continue
                counts[d.channel_id] += 1
                if d.status == "sending":
                    await repository.abandon_open_attempts(session, d.id, now)
                d.status = "sending"
                d.attempts += 1
                d.claimed_until = lease_end
                d.updated_at = now
                attempt = DeliveryAttempt(id=str(uuid.uuid4()), delivery_id=d.id, number=d.attempts,
                                          outcome="sending", started_at=now)
                await repository.add_attempt(session, attempt)
                claims.append(Claim(d.id, d.channel_id, d.channel_kind, d.payload, d.attempts, attempt.id))
        for c in claims:
            self.in_flight[c.channel_id] += 1
        return claims

    async def _send(self, claim: Claim) -> None:
        try:
            status_code: int | None = None
            error: str | None = None
            permanent = False
            async with self.session_factory() as session:
                channel = await channels_repo.get(session, claim.channel_id)
            if channel is None:
                error, permanent = "channel deleted", True
            else:
                try:
                    secret = self.box.decrypt(channel.secret_enc) if channel.secret_enc else None
                    status_code = await asyncio.wait_for(
                        dispatch(kind=channel.kind, config=channel.config, secret=secret, payload=claim.payload,
                                 msg_id=claim.delivery_id, settings=self.settings, client=self.client),
                        timeout=self.settings.delivery_timeout + 1)
                except SendError as exc:
                    status_code, error, permanent = exc.status_code, str(exc), exc.permanent
                except TimeoutError:
                    error = f"timed out after {self.settings.delivery_timeout:g}s"
                except ValueError as exc:
                    error, permanent = str(exc), True
            await self._record(claim, status_code, error, permanent)
        finally:
            self.in_flight[claim.channel_id] -= 1
            if self.in_flight[claim.channel_id] <= 0:
                del self.in_flight[claim.channel_id]

    async def _record(self, claim: Claim, status_code: int | None, error: str | None, permanent: bool) -> None:
        now = utcnow()
        async with self.session_factory() as session, session.begin():
            await repository.finish_attempt(session, claim.attempt_id, outcome="failure" if error else "success",
                                            status_code=status_code, error=error, now=now)
            d = await repository.locked(session, claim.delivery_id)
            if d is None or d.status != "sending" or d.attempts != claim.number:
                return  # the lease ran out and another attempt took over (or the channel was deleted)
            d.claimed_until = None
            d.updated_at = now
            if error is None:
                d.status, d.delivered_at, d.last_error = "delivered", now, None
            elif permanent or d.attempts >= self.settings.delivery_max_attempts:
                d.status, d.last_error = "dead", error
                log.warning("delivery %s to channel %s is dead after %d attempts: %s",
                            d.id, d.channel_id, d.attempts, error)
            else:
                d.status, d.last_error = "pending", error
                d.next_attempt_at = now + dt.timedelta(seconds=backoff(self.settings, d.attempts))


async def _first(*aws: Any) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
