"""The onboarding plan: standard milestones from the configured template plus one task per promised
commitment, and the plan's summary (progress, on track / behind / stuck, go-live)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from services.lifecycle.accounts.schemas import OnboardingOut, OnboardingStatus
from services.lifecycle.events import emit
from services.lifecycle.models import Account, Task
from services.lifecycle.settings import Settings
from services.lifecycle.tasks.repository import OPEN_STATUSES, PLAN_KINDS
from shared.db import utcnow
from shared.events.registry import CommitmentInfo

# How a commitment's status at handoff maps onto its task.
_COMMITMENT_TASK_STATUS = {"delivered": "done", "waived": "cancelled", "in_progress": "in_progress"}


def add_milestones(session: AsyncSession, account: Account, settings: Settings, *, anchor: dt.date,
                   now: dt.datetime) -> list[Task]:
    """The template's milestones, due ``offset_days`` after ``anchor`` (the contract start)."""
    tasks = []
    base = utcnow()
    for i, m in enumerate(settings.onboarding_milestones):
        tasks.append(Task(
            id=str(uuid.uuid4()), account_id=account.id, kind="milestone", milestone=m.key, title=m.title,
            status="open", owner=account.owner, due_date=anchor + dt.timedelta(days=m.offset_days),
            # Microsecond steps keep the plan's order when listing by creation time.
            created_at=base + dt.timedelta(microseconds=i), updated_at=base,
        ))
    session.add_all(tasks)
    return tasks


def add_commitment_tasks(session: AsyncSession, account: Account, commitments: Sequence[CommitmentInfo], *,
                         handoff_id: str, default_owner: str | None, skip: set[str],
                         now: dt.datetime) -> list[Task]:
    """One task per commitment not in ``skip`` (already has one), linked by commitment and handoff id."""
    tasks = []
    base = utcnow()
    for i, c in enumerate(commitments):
        if c.id in skip:
            continue
        skip.add(c.id)
        status = _COMMITMENT_TASK_STATUS.get(c.status, "open")
        tasks.append(Task(
            id=str(uuid.uuid4()), account_id=account.id, kind="commitment", title=c.title[:300],
            description=c.description, status=status, owner=(c.owner or default_owner or "")[:200] or None,
            due_date=c.due_date,
            commitment_id=c.id, handoff_id=handoff_id, completed_at=now if status == "done" else None,
            created_at=base + dt.timedelta(microseconds=100 + i), updated_at=base,
        ))
    session.add_all(tasks)
    return tasks


def summarize(account: Account, tasks: Sequence[Task], *, today: dt.date, settings: Settings) -> OnboardingOut | None:
    """The plan's state on ``today``; None when the account has no plan."""
    plan = [t for t in tasks if t.kind in PLAN_KINDS and t.status != "cancelled"]
    if not plan and account.onboarding_completed_at is None:
        return None
    done = sum(1 for t in plan if t.status == "done")
    go_live = next((t for t in tasks if t.milestone == settings.go_live_milestone), None)
    planned_go_live = go_live.due_date if go_live else None
    overdue = [t for t in plan if t.status in OPEN_STATUSES and t.due_date is not None and t.due_date < today]
    status: OnboardingStatus
    if account.onboarding_completed_at is not None:
        status = "completed"
    elif (planned_go_live is not None and planned_go_live < today) or any(
            t.due_date is not None and (today - t.due_date).days >= settings.onboarding_stuck_after_days
            for t in overdue):
        status = "stuck"
    elif overdue:
        status = "behind"
    else:
        status = "on_track"
    return OnboardingOut(
        progress=(done * 100 // len(plan)) if plan else 100, status=status, planned_go_live=planned_go_live,
        completed_at=account.onboarding_completed_at, tasks_total=len(plan), tasks_done=done,
        tasks_overdue=len(overdue),
    )


async def complete_if_go_live(session: AsyncSession, account: Account, task: Task, *, settings: Settings,
                              now: dt.datetime, actor: str | None) -> None:
    """Done go-live ends onboarding: stamp it on the account and emit `onboarding.completed`, once."""
    if task.milestone != settings.go_live_milestone or account.onboarding_completed_at is not None:
        return
    account.onboarding_completed_at = now
    account.updated_at = utcnow()
    await emit(session, type="onboarding.completed", account_id=account.id, at=now, actor=actor,
               summary=f"Onboarding completed (go-live planned {task.due_date or 'n/a'})",
               data={"completed_at": now, "planned_go_live": task.due_date,
                     "contract_start": account.contract_start, "on_time": (
                         task.due_date is None or now.date() <= task.due_date)})
