"""Queries on alerts, account states and silences used by the alert engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.models import AccountState, Alert, Silence

ACTIVE = ("firing", "acknowledged")


def _lock(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name != "sqlite"


async def active_by_fingerprint(session: AsyncSession, fp: str) -> Alert | None:
    stmt = select(Alert).where(Alert.active_key == fp)
    if _lock(session):
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def active_of_rules(session: AsyncSession, rule_ids: Sequence[str]) -> list[Alert]:
    if not rule_ids:
        return []
    stmt = select(Alert).where(Alert.rule_id.in_(list(rule_ids)), Alert.status.in_(ACTIVE))
    return list((await session.execute(stmt)).scalars().all())


async def due_for_notification(session: AsyncSession, now: dt.datetime, limit: int) -> list[Alert]:
    """Active alerts whose next notification check is due; locked (skipping locked rows) on PostgreSQL."""
    stmt = (select(Alert).where(Alert.status.in_(ACTIVE), Alert.next_notify_at.is_not(None),
                                Alert.next_notify_at <= now)
            .order_by(Alert.next_notify_at, Alert.id).limit(limit))
    if _lock(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.execute(stmt)).scalars().all())


async def account(session: AsyncSession, account_id: str) -> AccountState | None:
    return await session.get(AccountState, account_id)


async def active_silences(session: AsyncSession, now: dt.datetime) -> list[Silence]:
    stmt = select(Silence).where(Silence.starts_at <= now, Silence.ends_at > now)
    return list((await session.execute(stmt)).scalars().all())
