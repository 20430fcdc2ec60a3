"""Queries on playbooks and their runs."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.lifecycle.models import AccountRisk, Playbook, PlaybookRun, Task
from shared.http import keyset_page


async def get(session: AsyncSession, playbook_id: str) -> Playbook | None:
    return await session.get(Playbook, playbook_id)


async def by_name(session: AsyncSession, name: str) -> Playbook | None:
    return (await session.execute(select(Playbook).where(Playbook.name == name))).scalar_one_or_none()


async def page(session: AsyncSession, *, enabled: bool | None, cursor: str | None,
               limit: int) -> tuple[list[Playbook], str | None]:
    """Playbooks, oldest first (the shipped defaults first)."""
    stmt = select(Playbook)
    if enabled is not None:
        stmt = stmt.where(Playbook.enabled == enabled)
    return await keyset_page(session, stmt, order_by=[Playbook.created_at, Playbook.id], cursor=cursor,
                             limit=limit, descending=False)


async def enabled(session: AsyncSession) -> list[Playbook]:
    stmt = select(Playbook).where(Playbook.enabled.is_(True)).order_by(Playbook.created_at, Playbook.id)
    return list((await session.execute(stmt)).scalars())


async def risk_band(session: AsyncSession, account_id: str) -> str | None:
    """The account's churn-risk band as lifecycle's copy knows it (no row lock)."""
    stmt = select(AccountRisk.band).where(AccountRisk.account_id == account_id)
    band: str | None = (await session.execute(stmt)).scalar_one_or_none()
    return band


# --- runs ----------------------------------------------------------------------------------------

async def get_run(session: AsyncSession, run_id: str, *, lock: bool = False) -> PlaybookRun | None:
    stmt = select(PlaybookRun).where(PlaybookRun.id == run_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).scalar_one_or_none()


async def run_for_trigger(session: AsyncSession, playbook_id: str, source: str, event_id: str) -> PlaybookRun | None:
    stmt = select(PlaybookRun).where(PlaybookRun.playbook_id == playbook_id, PlaybookRun.trigger_source == source,
                                     PlaybookRun.trigger_event_id == event_id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def active_run(session: AsyncSession, playbook_id: str, account_id: str) -> PlaybookRun | None:
    stmt = select(PlaybookRun).where(PlaybookRun.playbook_id == playbook_id, PlaybookRun.account_id == account_id,
                                     PlaybookRun.status == "active")
    return (await session.execute(stmt)).scalars().first()


async def last_ended_at(session: AsyncSession, playbook_id: str, account_id: str) -> dt.datetime | None:
    stmt = select(func.max(PlaybookRun.ended_at)).where(PlaybookRun.playbook_id == playbook_id,
                                                        PlaybookRun.account_id == account_id)
    value: dt.datetime | None = (await session.execute(stmt)).scalar_one()
    if value is not None and value.tzinfo is None:  # SQLite's max() returns the raw stored value
        value = value.replace(tzinfo=dt.UTC)
    return value


async def active_runs_of_account(session: AsyncSession, account_id: str) -> list[PlaybookRun]:
    stmt = (select(PlaybookRun).where(PlaybookRun.account_id == account_id, PlaybookRun.status == "active")
            .order_by(PlaybookRun.started_at, PlaybookRun.id).with_for_update())
    return list((await session.execute(stmt)).scalars())


async def runs_page(session: AsyncSession, *, account_id: str | None = None, playbook_id: str | None = None,
                    status: str | None = None, cursor: str | None, limit: int) -> tuple[list[PlaybookRun], str | None]:
    """Runs, newest first."""
    stmt = select(PlaybookRun)
    if account_id is not None:
        stmt = stmt.where(PlaybookRun.account_id == account_id)
    if playbook_id is not None:
        stmt = stmt.where(PlaybookRun.playbook_id == playbook_id)
    if status is not None:
        stmt = stmt.where(PlaybookRun.status == status)
    return await keyset_page(session, stmt, order_by=[PlaybookRun.started_at, PlaybookRun.id], cursor=cursor,
                             limit=limit)


async def runs_by_id(session: AsyncSession, run_ids: Sequence[str]) -> dict[str, PlaybookRun]:
    if not run_ids:
        return {}
    rows = await session.execute(select(PlaybookRun).where(PlaybookRun.id.in_(set(run_ids))))
    return {r.id: r for r in rows.scalars()}


async def tasks_of_run(session: AsyncSession, run_id: str) -> list[Task]:
    stmt = select(Task).where(Task.playbook_run_id == run_id).order_by(Task.created_at, Task.id)
    return list((await session.execute(stmt)).scalars())


async def run_outcomes(session: AsyncSession, playbook_id: str) -> list[Any]:
    """Status, times and bands of every run of the playbook (what its stats are made of)."""
    r = PlaybookRun
    stmt = select(r.status, r.started_at, r.ended_at, r.health_band_start, r.health_band_end, r.risk_band_start,
                  r.risk_band_end).where(r.playbook_id == playbook_id)
    return list((await session.execute(stmt)).all())
