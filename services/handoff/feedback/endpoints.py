"""Feedback routes: notes on a handoff, and the listing per presales owner."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.handoff.dependencies import IdempotencyDep, ReadScope, ValidHandoff, WriteScope
from services.handoff.feedback import repository as repo
from services.handoff.feedback import service
from services.handoff.feedback.schemas import FeedbackCategory, FeedbackIn, FeedbackOut
from shared.app import SessionDep
from shared.errors import problems
from shared.http import Cursor, Limit, Page

router = APIRouter(prefix="/v1", tags=["feedback"])


@router.post("/handoffs/{handoff_id}/feedback", status_code=201, response_model=FeedbackOut,
             responses=problems(404))
async def add_feedback(handoff: ValidHandoff, body: FeedbackIn, session: SessionDep, idem: IdempotencyDep,
                       _: WriteScope) -> FeedbackOut:
    """Add a post-sales note for presales on this handoff."""
    await idem.check(session)
    out = await service.add(session, handoff, body)
    await idem.save(session, 201, out)
    return out


@router.get("/handoffs/{handoff_id}/feedback", response_model=Page[FeedbackOut], responses=problems(404))
async def list_handoff_feedback(handoff: ValidHandoff, session: SessionDep, _: ReadScope, limit: Limit = 50,
                                cursor: Cursor = None) -> Page[FeedbackOut]:
    """Feedback notes on one handoff, newest first."""
    rows, nxt = await repo.page(session, handoff_id=handoff.id, cursor=cursor, limit=limit)
    return Page[FeedbackOut](items=await service.outs(session, rows), next_cursor=nxt)


@router.get("/feedback", response_model=Page[FeedbackOut], responses=problems())
async def list_feedback(
    session: SessionDep, _: ReadScope,
    presales_owner: Annotated[str | None, Query(max_length=200, description="The handoffs' presales owner.")] = None,
    category: Annotated[FeedbackCategory | None, Query()] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> Page[FeedbackOut]:
    """Feedback across handoffs, e.g. everything a presales owner received, newest first."""
    rows, nxt = await repo.page(session, presales_owner=presales_owner, category=category, cursor=cursor,
                                limit=limit)
    return Page[FeedbackOut](items=await service.outs(session, rows), next_cursor=nxt)
