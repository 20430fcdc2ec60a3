"""Commitments ledger routes: across handoffs, per handoff, and status changes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from services.handoff.commitments import repository as repo
from services.handoff.commitments import service
from services.handoff.commitments.schemas import CommitmentDetail, CommitmentOut, CommitmentPatch, CommitmentStatus
from services.handoff.dependencies import CommitmentId, ReadScope, ValidHandoff, WriteScope, actor_of
from services.handoff.handoffs.schemas import HandoffStatus
from shared.app import ContextDep, SessionDep
from shared.db import utcnow
from shared.errors import problems
from shared.http import Cursor, Limit, Page
from shared.types import BoundedDate

router = APIRouter(prefix="/v1", tags=["commitments"])

StatusQuery = Annotated[list[CommitmentStatus] | None, Query(description="Repeat to match several.")]
OverdueQuery = Annotated[bool | None, Query(description="Past due and not delivered or waived (true), or not.")]
OwnerQuery = Annotated[str | None, Query(max_length=200)]


async def _page(session: SessionDep, filters: repo.CommitmentFilters, cursor: str | None,
                limit: int) -> Page[CommitmentOut]:
    today = utcnow().date()
    rows, nxt = await repo.page(session, filters, today=today, cursor=cursor, limit=limit)
    return Page[CommitmentOut](items=[service.commitment_out(c, today) for c in rows], next_cursor=nxt)


@router.get("/commitments", response_model=Page[CommitmentOut], responses=problems())
async def list_commitments(
    session: SessionDep, _: ReadScope, status: StatusQuery = None, owner: OwnerQuery = None,
    overdue: OverdueQuery = None,
    account_id: Annotated[str | None, Query(max_length=200)] = None,
    handoff_status: Annotated[list[HandoffStatus] | None, Query(description="Status of the handoff.")] = None,
    due_before: Annotated[BoundedDate | None, Query(description="Due strictly before this date.")] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> Page[CommitmentOut]:
    """The ledger across handoffs, e.g. `?overdue=true&owner=…`, newest first."""
    filters = repo.CommitmentFilters(status=status, owner=owner, overdue=overdue, account_id=account_id,
                                     handoff_status=handoff_status, due_before=due_before)
    return await _page(session, filters, cursor, limit)


@router.get("/handoffs/{handoff_id}/commitments", response_model=Page[CommitmentOut], responses=problems(404))
async def list_handoff_commitments(handoff: ValidHandoff, session: SessionDep, _: ReadScope,
                                   status: StatusQuery = None, owner: OwnerQuery = None, overdue: OverdueQuery = None,
                                   limit: Limit = 50, cursor: Cursor = None) -> Page[CommitmentOut]:
    """One handoff's commitments."""
    filters = repo.CommitmentFilters(handoff_id=handoff.id, status=status, owner=owner, overdue=overdue)
    return await _page(session, filters, cursor, limit)


@router.get("/handoffs/{handoff_id}/commitments/{commitment_id}", response_model=CommitmentDetail,
            responses=problems(404))
async def get_commitment(handoff: ValidHandoff, commitment_id: CommitmentId, session: SessionDep,
                         _: ReadScope) -> CommitmentDetail:
    """A commitment with its full history of changes."""
    return await service.detail(session, await service.load(session, handoff.id, commitment_id))


@router.patch("/handoffs/{handoff_id}/commitments/{commitment_id}", response_model=CommitmentDetail,
              responses=problems(404, 409))
async def update_commitment(handoff: ValidHandoff, commitment_id: CommitmentId, body: CommitmentPatch,
                            session: SessionDep, ctx: ContextDep, principal: WriteScope) -> CommitmentDetail:
    """Change a commitment's status, owner, due date or evidence, with a note kept in its history."""
    return await service.update(session, ctx.outbox, handoff, commitment_id, body, actor_of(principal, body.by))
