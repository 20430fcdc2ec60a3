"""Queries on deliveries and their attempts, the delivery worker's included."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Literal

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.models import Delivery, DeliveryAttempt
from shared.db import is_postgresql
from shared.http import keyset_page

FINISHED = ("delivered", "dead")


async def get(session: AsyncSession, delivery_id: str) -> Delivery | None:
    return await session.get(Delivery, delivery_id)


async def page(session: AsyncSession, *, alert_id: str | None, channel_id: str | None,
               status: Literal["pending", "sending", "delivered", "dead"] | None,
               cursor: str | None, limit: int) -> tuple[list[Delivery], str | None]:
    stmt = select(Delivery)
    if alert_id:
        stmt = stmt.where(Delivery.alert_id == alert_id)
    if channel_id:
        stmt = stmt.where(Delivery.channel_id == channel_id)
    if status:
        stmt = stmt.where(Delivery.status == status)
    rows, nxt = await keyset_page(session, stmt, order_by=[Delivery.created_at, Delivery.id],
                                  cursor=cursor, limit=limit)
    return list(rows), nxt


async def attempts_of(session: AsyncSession, delivery_ids: Sequence[str]) -> dict[str, list[DeliveryAttempt]]:
    out: dict[str, list[DeliveryAttempt]] = {d: [] for d in delivery_ids}
    if not delivery_ids:
        return out
    stmt = (select(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(list(delivery_ids)))
            .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.number, DeliveryAttempt.started_at))
    for a in (await session.execute(stmt)).scalars().all():
        out[a.delivery_id].append(a)
    return out


async def add_all(session: AsyncSession, deliveries: Sequence[Delivery]) -> None:
    session.add_all(deliveries)
    await session.flush()


async def kill_undelivered_of_channel(session: AsyncSession, channel_id: str, reason: str) -> None:
    await session.execute(
        update(Delivery).where(Delivery.channel_id == channel_id, Delivery.status.in_(("pending", "sending")))
        .values(status="dead", last_error=reason, claimed_until=None, updated_at=dt.datetime.now(dt.UTC)))


# --- the worker ---------------------------------------------------------------------------------

async def due(session: AsyncSession, now: dt.datetime, limit: int) -> list[Delivery]:
    """Pending deliveries that are due, and ``sending`` ones whose lease ran out; locked (skipping
    locked rows) on PostgreSQL so replicas never claim the same delivery."""
    cond = or_(
        and_(Delivery.status == "pending", Delivery.next_attempt_at <= now),
        and_(Delivery.status == "sending", Delivery.claimed_until < now),
    )
    stmt = select(Delivery).where(cond).order_by(Delivery.next_attempt_at, Delivery.id).limit(limit)
    if is_postgresql(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.execute(stmt)).scalars().all())


async def abandon_open_attempts(session: AsyncSession, delivery_id: str, now: dt.datetime) -> None:
    await session.execute(
        update(DeliveryAttempt)
        .where(DeliveryAttempt.delivery_id == delivery_id, DeliveryAttempt.outcome == "sending")
        .values(outcome="abandoned", finished_at=now, error="the sender stopped mid-send; outcome unknown, retried"))


async def add_attempt(session: AsyncSession, attempt: DeliveryAttempt) -> None:
    session.add(attempt)
    await session.flush()


async def finish_attempt(session: AsyncSession, attempt_id: str, *, outcome: str, status_code: int | None,
                         error: str | None, now: dt.datetime) -> None:
    await session.execute(
        update(DeliveryAttempt).where(DeliveryAttempt.id == attempt_id)
        .values(outcome=outcome, status_code=status_code, error=error, finished_at=now))


async def locked(session: AsyncSession, delivery_id: str) -> Delivery | None:
    stmt = select(Delivery).where(Delivery.id == delivery_id)
    if is_postgresql(session):
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


# --- retention ----------------------------------------------------------------------------------

async def purge_finished(session: AsyncSession, before: dt.datetime, batch: int) -> tuple[int, int]:
    """Delete up to ``batch`` delivered/dead deliveries last touched before ``before``, with their
    attempts; returns (deliveries, attempts) deleted. Pending and sending ones are never touched."""
    stmt = (select(Delivery.id).where(Delivery.status.in_(FINISHED), Delivery.updated_at < before)
            .order_by(Delivery.updated_at, Delivery.id).limit(batch))
    if is_postgresql(session):
        stmt = stmt.with_for_update(skip_locked=True)  # replicas purging together split the rows
    ids = list((await session.execute(stmt)).scalars().all())
    return await _delete_deliveries(session, ids)


async def purge_of_alerts(session: AsyncSession, alert_ids: Sequence[str]) -> tuple[int, int]:
    """Delete the finished deliveries (and attempts) of purged alerts."""
    if not alert_ids:
        return 0, 0
    ids = list((await session.execute(
        select(Delivery.id).where(Delivery.alert_id.in_(list(alert_ids)), Delivery.status.in_(FINISHED))
    )).scalars().all())
    return await _delete_deliveries(session, ids)


async def _delete_deliveries(session: AsyncSession, ids: list[str]) -> tuple[int, int]:
    if not ids:
        return 0, 0
    attempts = await session.execute(delete(DeliveryAttempt).where(DeliveryAttempt.delivery_id.in_(ids)))
    deliveries = await session.execute(delete(Delivery).where(Delivery.id.in_(ids)))
    return int(getattr(deliveries, "rowcount", 0) or 0), int(getattr(attempts, "rowcount", 0) or 0)


async def alerts_with_open_deliveries(session: AsyncSession, alert_ids: Sequence[str]) -> set[str]:
    if not alert_ids:
        return set()
    stmt = select(Delivery.alert_id).where(Delivery.alert_id.in_(list(alert_ids)),
                                           Delivery.status.not_in(FINISHED)).distinct()
    return set((await session.execute(stmt)).scalars().all())


