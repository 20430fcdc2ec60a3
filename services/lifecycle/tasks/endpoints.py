"""HTTP API of an account's tasks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from services.lifecycle.common import happened_at
from services.lifecycle.dependencies import (
    AccountDep,
    IdempotencyDep,
    LockedAccountDep,
    NowDep,
    ReadScope,
    SettingsDep,
    WriteScope,
    actor_of,
)
from services.lifecycle.tasks import repository as repo
from services.lifecycle.tasks import service
from services.lifecycle.tasks.schemas import TaskCreate, TaskKind, TaskOut, TaskStatus, TaskUpdate
from shared.app import SessionDep
from shared.errors import NotFound, Unprocessable, problems
from shared.http import Cursor, Limit, Page
from shared.types import Date

router = APIRouter(prefix="/v1/accounts/{account_id}/tasks", tags=["tasks"])
worklist_router = APIRouter(prefix="/v1/tasks", tags=["tasks"])

TaskIdPath = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_model=Page[TaskOut], responses=problems(404))
async def list_tasks(_: ReadScope, account: AccountDep, session: SessionDep, now: NowDep,
                     status: TaskStatus | None = None, kind: TaskKind | None = None,
                     overdue: Annotated[bool, Query(description="Only open tasks past their due date.")] = False,
                     limit: Limit = 50, cursor: Cursor = None) -> Page[TaskOut]:
    """The account's tasks in plan order: milestones, commitment tasks, then ad-hoc tasks."""
    today = now.date()
    rows, nxt = await repo.page(session, account.id, status=status, kind=kind,
                                overdue_before=today if overdue else None, cursor=cursor, limit=limit)
    return Page[TaskOut](items=await service.views(session, rows, today=today), next_cursor=nxt)


@router.post("", status_code=201, response_model=TaskOut, responses=problems(404))
async def create_task(body: TaskCreate, _: WriteScope, account: AccountDep, session: SessionDep,
                      idem: IdempotencyDep, now: NowDep) -> TaskOut:
    """Add an ad-hoc task to the account (owner defaults to the account owner)."""
    await idem.check(session)
    task = await service.create(session, account, body)
    out = service.task_out(task, today=now.date())
    await idem.save(session, 201, out)
    return out


@router.patch("/{task_id}", response_model=TaskOut, responses=problems(404, 409))
async def update_task(task_id: TaskIdPath, body: TaskUpdate, principal: WriteScope, account: LockedAccountDep,
                      session: SessionDep, now: NowDep, settings: SettingsDep) -> TaskOut:
    """Change a task; done emits `task.completed` (with its commitment_id) and done go-live ends onboarding."""
    task = await repo.get(session, account.id, task_id, lock=True)
    if task is None:
        raise NotFound(f"task {task_id} does not exist on account {account.id}")
    await service.update(session, account, task, body, settings=settings,
                         now=happened_at(body.at, now, settings.time_bounds), actor=actor_of(principal))
    return (await service.views(session, [task], today=now.date()))[0]


@worklist_router.get("", response_model=Page[TaskOut], responses=problems(422))
async def worklist(principal: ReadScope, session: SessionDep, now: NowDep,
                   owner: Annotated[str | None, Query(max_length=200, description=(
                       "Whose tasks; `me` = the owner of the calling API key."))] = None,
                   status: Annotated[list[TaskStatus] | None, Query(description=(
                       "Only these statuses (repeat the parameter for several)."))] = None,
                   due_before: Annotated[Date | None, Query(description="Due on or before this date.")] = None,
                   account_id: Annotated[str | None, Query(max_length=200)] = None,
                   kind: TaskKind | None = None,
                   overdue: Annotated[bool, Query(description="Only open tasks past their due date.")] = False,
                   limit: Limit = 50, cursor: Cursor = None) -> Page[TaskOut]:
    """Tasks across accounts (a person's worklist), soonest due first, undated last."""
    if owner == "me":
        if principal.owner is None:
            raise Unprocessable("owner=me needs an API key that names its owner", errors=[
                {"loc": ["query", "owner"], "msg": "this API key has no owner; pass the owner's name"}])
        owner = principal.owner
    today = now.date()
    filters = repo.WorklistFilters(owner=owner, statuses=tuple(status or ()), due_before=due_before,
                                   account_id=account_id, kind=kind, overdue_before=today if overdue else None)
    rows, nxt = await repo.worklist(session, filters, cursor=cursor, limit=limit)
    return Page[TaskOut](items=await service.views(session, rows, today=today), next_cursor=nxt)
