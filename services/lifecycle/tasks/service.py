"""Task rules: creation, updates, completion (which emits `task.completed` and may end onboarding)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.lifecycle.events import emit
from services.lifecycle.models import Account, PlaybookRun, Task
from services.lifecycle.onboarding.service import complete_if_go_live
from services.lifecycle.playbooks import repository as playbooks_repo
from services.lifecycle.playbooks import runs as playbook_runs
from services.lifecycle.settings import Settings
from services.lifecycle.tasks.repository import OPEN_STATUSES
from services.lifecycle.tasks.schemas import PlaybookRef, TaskCreate, TaskOut, TaskUpdate
from shared.db import utcnow
from shared.errors import Conflict


def task_out(task: Task, *, today: dt.date, run: PlaybookRun | None = None) -> TaskOut:
    return TaskOut(
        id=task.id, account_id=task.account_id, kind=task.kind,
        milestone=task.milestone, title=task.title, description=task.description,
        status=task.status,
        owner=task.owner, due_date=task.due_date, commitment_id=task.commitment_id, handoff_id=task.handoff_id,
        playbook_run_id=task.playbook_run_id,
        playbook=PlaybookRef(id=run.playbook_id, name=run.playbook_name) if run is not None else None,
        overdue=task.status in OPEN_STATUSES and task.due_date is not None and task.due_date < today,
        completed_at=task.completed_at, created_at=task.created_at, updated_at=task.updated_at,
    )


def task_payload(task: Task) -> dict[str, Any]:
    """The data of `task.completed` / `task.overdue` (account_id is added by `emit`)."""
    return {"task_id": task.id, "title": task.title, "commitment_id": task.commitment_id,
            "handoff_id": task.handoff_id, "due_date": task.due_date, "owner": task.owner, "kind": task.kind,
            "milestone": task.milestone, "status": task.status, "completed_at": task.completed_at,
            "playbook_run_id": task.playbook_run_id}


async def views(session: AsyncSession, tasks: Sequence[Task], *, today: dt.date) -> list[TaskOut]:
    """Tasks as the API shows them, each with the playbook (if any) whose run created it."""
    runs = await playbooks_repo.runs_by_id(session, [t.playbook_run_id for t in tasks if t.playbook_run_id])
    return [task_out(t, today=today, run=runs.get(t.playbook_run_id) if t.playbook_run_id else None)
            for t in tasks]


async def create(session: AsyncSession, account: Account, body: TaskCreate) -> Task:
    now = utcnow()
    task = Task(id=str(uuid.uuid4()), account_id=account.id, kind="task", title=body.title,
                description=body.description, status=body.status, owner=body.owner or account.owner,
                due_date=body.due_date, created_at=now, updated_at=now)
    session.add(task)
    await session.flush()
    return task


async def update(session: AsyncSession, account: Account, task: Task, body: TaskUpdate, *, settings: Settings,
                 now: dt.datetime, actor: str) -> Task:
    fields = body.model_fields_set
    completing = ending = False
    if "status" in fields and body.status != task.status:
        if task.status == "done":
            raise Conflict(f"task {task.id} is done; a done task cannot change status",
                           current_status=task.status)
        completing = body.status == "done"
        ending = body.status in ("done", "cancelled")
        task.status = body.status  # type: ignore[assignment]
        task.completed_at = now if completing else None
    if "title" in fields and body.title is not None:
        task.title = body.title
    if "description" in fields:
        task.description = body.description
    if "owner" in fields:
        task.owner = body.owner
    if "due_date" in fields and body.due_date != task.due_date:
        task.due_date = body.due_date
        task.overdue_notified_at = None  # a new due date re-arms the overdue notice
    task.updated_at = utcnow()
    await session.flush()
    if completing:
        await emit(session, type="task.completed", account_id=account.id, at=now, actor=actor,
                   summary=f"Task done: {task.title}", data=task_payload(task))
        await complete_if_go_live(session, account, task, settings=settings, now=now, actor=actor)
    if ending:
        await playbook_runs.task_ended(session, account, task, now=now, actor=actor)
    return task
