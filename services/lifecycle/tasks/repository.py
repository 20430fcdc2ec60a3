"""Queries on tasks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Date, func, literal, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.lifecycle.models import Account, Task
from shared.errors import Unprocessable
from shared.http import decode_cursor, encode_cursor, keyset_page

PLAN_KINDS = ("milestone", "commitment")
OPEN_STATUSES = ("open", "in_progress")
NO_DUE_DATE = dt.date(9999, 12, 31)  # sorts undated tasks last, on every backend


async def get(session: AsyncSession, account_id: str, task_id: str, *, lock: bool = False) -> Task | None:
    stmt = select(Task).where(Task.id == task_id, Task.account_id == account_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def page(session: AsyncSession, account_id: str, *, status: str | None, kind: str | None,
               overdue_before: dt.date | None, cursor: str | None, limit: int) -> tuple[list[Task], str | None]:
    """An account's tasks in plan order (oldest first)."""
    stmt = select(Task).where(Task.account_id == account_id)
    if status:
        stmt = stmt.where(Task.status == status)
    if kind:
        stmt = stmt.where(Task.kind == kind)
    if overdue_before is not None:
        stmt = stmt.where(Task.status.in_(OPEN_STATUSES), Task.due_date < overdue_before)
    return await keyset_page(session, stmt, order_by=[Task.created_at, Task.id], cursor=cursor, limit=limit,
                             descending=False)


async def plan_tasks(session: AsyncSession, account_ids: Sequence[str]) -> dict[str, list[Task]]:
    """The onboarding-plan tasks (milestones and commitments) of each account."""
    out: dict[str, list[Task]] = {a: [] for a in account_ids}
    if not account_ids:
        return out
    rows = await session.execute(select(Task).where(Task.account_id.in_(account_ids), Task.kind.in_(PLAN_KINDS)))
    for task in rows.scalars():
        out[task.account_id].append(task)
    return out


async def commitment_ids(session: AsyncSession, account_id: str) -> set[str]:
    rows = await session.execute(select(Task.commitment_id).where(
        Task.account_id == account_id, Task.commitment_id.is_not(None)))
    return {c for c in rows.scalars() if c is not None}


async def due_for_overdue_notice(session: AsyncSession, *, today: dt.date, limit: int) -> list[Task]:
    """Open tasks past their due date not yet announced, of live accounts; locked (SKIP LOCKED) on PostgreSQL."""
    stmt = (select(Task).join(Account, Account.id == Task.account_id)
            .where(Task.status.in_(OPEN_STATUSES), Task.due_date < today, Task.overdue_notified_at.is_(None),
                   Account.stage != "churned")
            .order_by(Task.due_date, Task.id).limit(limit)
            .with_for_update(skip_locked=True, of=Task))
    return list((await session.execute(stmt)).scalars())


async def claim_overdue_notice(session: AsyncSession, task_id: str, at: dt.datetime) -> bool:
    """Mark the task's overdue notice as sent; False when another pass already did."""
    result = await session.execute(
        update(Task).where(Task.id == task_id, Task.overdue_notified_at.is_(None))
        .values(overdue_notified_at=at).execution_options(synchronize_session=False))
    return bool(getattr(result, "rowcount", 0) == 1)


@dataclass(frozen=True)
class WorklistFilters:
    owner: str | None = None
    statuses: tuple[str, ...] = ()
    due_before: dt.date | None = None
    account_id: str | None = None
    kind: str | None = None
    overdue_before: dt.date | None = None


async def worklist(session: AsyncSession, filters: WorklistFilters, *, cursor: str | None,
                   limit: int) -> tuple[list[Task], str | None]:
    """Tasks across accounts, soonest due first and undated last (keyset on due date, then id)."""
    due = func.coalesce(Task.due_date, literal(NO_DUE_DATE, Date))
    stmt = select(Task)
    if filters.owner is not None:
        stmt = stmt.where(Task.owner == filters.owner)
    if filters.statuses:
        stmt = stmt.where(Task.status.in_(filters.statuses))
    if filters.due_before is not None:
        stmt = stmt.where(Task.due_date <= filters.due_before)
    if filters.account_id is not None:
        stmt = stmt.where(Task.account_id == filters.account_id)
    if filters.kind is not None:
        stmt = stmt.where(Task.kind == filters.kind)
    if filters.overdue_before is not None:
        stmt = stmt.where(Task.status.in_(OPEN_STATUSES), Task.due_date < filters.overdue_before)
    if cursor:
        after_due, after_id = decode_cursor(cursor, 2)
        if not isinstance(after_due, dt.date) or not isinstance(after_id, str):
            raise Unprocessable("invalid cursor", errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}])
        stmt = stmt.where(tuple_(due, Task.id) > tuple_(literal(after_due, Date), literal(after_id)))
    rows = list((await session.execute(stmt.order_by(due, Task.id).limit(limit + 1))).scalars())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    last = rows[-1]
    return rows, encode_cursor([last.due_date or NO_DUE_DATE, last.id])
