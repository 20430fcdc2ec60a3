"""Queries on alerts and account states."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.models import AccountState, Alert
from shared.db import is_postgresql
from shared.http import keyset_page

ACTIVE = ("firing", "acknowledged")


async def get(session: AsyncSession, alert_id: str) -> Alert | None:
    return await session.get(Alert, alert_id)


async def page(session: AsyncSession, *, status: str | None, subject: str | None, rule_id: str | None,
               cursor: str | None, limit: int) -> tuple[list[Alert], str | None]:
    stmt = select(Alert)
    if status:
        stmt = stmt.where(Alert.status == status)
    if subject:
        stmt = stmt.where(Alert.subject == subject)
    if rule_id:
        stmt = stmt.where(Alert.rule_id == rule_id)
    rows, nxt = await keyset_page(session, stmt, order_by=[Alert.created_at, Alert.id], cursor=cursor, limit=limit)
    return list(rows), nxt


async def add(session: AsyncSession, alert: Alert) -> None:
    session.add(alert)
    await session.flush()


async def active_of_rule_for_subject(session: AsyncSession, rule_id: str, subject: str) -> list[Alert]:
    stmt = select(Alert).where(Alert.rule_id == rule_id, Alert.subject == subject, Alert.status.in_(ACTIVE)) \
        .order_by(Alert.created_at, Alert.id)
    if is_postgresql(session):
        stmt = stmt.with_for_update()
    return list((await session.execute(stmt)).scalars().all())


async def active_by_fingerprint(session: AsyncSession, fp: str) -> Alert | None:
    stmt = select(Alert).where(Alert.active_key == fp)
    if is_postgresql(session):
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
    if is_postgresql(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return list((await session.execute(stmt)).scalars().all())


async def account(session: AsyncSession, account_id: str) -> AccountState | None:
    return await session.get(AccountState, account_id)


async def add_account(session: AsyncSession, state: AccountState) -> None:
    session.add(state)
    await session.flush()


async def resolved_before(session: AsyncSession, before: dt.datetime, limit: int) -> list[str]:
    """Ids of up to ``limit`` resolved alerts resolved before ``before`` (never an active one)."""
    stmt = (select(Alert.id).where(Alert.status == "resolved", Alert.active_key.is_(None),
                                   Alert.resolved_at < before)
            .order_by(Alert.resolved_at, Alert.id).limit(limit))
    if is_postgresql(session):
        stmt = stmt.with_for_update(skip_locked=True)  # replicas purging together split the rows
    return list((await session.execute(stmt)).scalars().all())


async def delete_resolved(session: AsyncSession, ids: Sequence[str]) -> int:
    if not ids:
        return 0
    result = await session.execute(delete(Alert).where(Alert.id.in_(list(ids)), Alert.status == "resolved"))
    return int(getattr(result, "rowcount", 0) or 0)
