"""HTTP API of the account timeline."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.lifecycle.dependencies import AccountDep, ReadScope
from services.lifecycle.timeline import repository as repo
from services.lifecycle.timeline.schemas import TimelineEntryOut
from shared.app import SessionDep
from shared.errors import problems
from shared.http import Cursor, Limit, Page

router = APIRouter(prefix="/v1/accounts/{account_id}/timeline", tags=["timeline"])


@router.get("", response_model=Page[TimelineEntryOut], responses=problems(404))
async def account_timeline(
    _: ReadScope, account: AccountDep, session: SessionDep,
    type: Annotated[str | None, Query(max_length=200, description=(
        "Only entries whose type starts with this, e.g. `postsales.task.`."))] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> Page[TimelineEntryOut]:
    """Everything that happened to the account (handoff, stages, tasks, touchpoints, renewals,
    opportunities, health), newest first."""
    rows, nxt = await repo.page(session, account.id, type_prefix=type, cursor=cursor, limit=limit)
    return Page[TimelineEntryOut](items=[TimelineEntryOut.model_validate(r, from_attributes=True) for r in rows],
                                  next_cursor=nxt)
