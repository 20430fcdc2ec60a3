"""Handoff routes: create, read, list, edit, and the submit/accept/return workflow."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query

from services.handoff.dependencies import (
    HandoffId,
    IdempotencyDep,
    ReadScope,
    SettingsDep,
    ValidHandoff,
    WriteScope,
    actor_of,
)
from services.handoff.handoffs import repository as repo
from services.handoff.handoffs import service
from services.handoff.handoffs.schemas import (
    AcceptIn,
    HandoffCreate,
    HandoffOut,
    HandoffPatch,
    HandoffStatus,
    ReturnIn,
    SubmitIn,
)
from shared.app import ContextDep, SessionDep
from shared.errors import problems
from shared.http import Cursor, Limit, Page

router = APIRouter(prefix="/v1/handoffs", tags=["handoffs"])


@router.post("", status_code=201, response_model=HandoffOut, responses=problems(409))
async def create_handoff(body: HandoffCreate, session: SessionDep, idem: IdempotencyDep, settings: SettingsDep,
                         _: WriteScope) -> HandoffOut:
    """Create a draft handoff; 409 if the CRM opportunity already has one."""
    await idem.check(session)
    out = await service.create(session, body, settings.completeness_checklist)
    await idem.save(session, 201, out)
    return out


@router.get("", response_model=Page[HandoffOut])
async def list_handoffs(
    session: SessionDep, settings: SettingsDep, _: ReadScope,
    status: Annotated[list[HandoffStatus] | None, Query(description="Repeat to match several.")] = None,
    owner: Annotated[str | None, Query(max_length=200, description="Presales or post-sales owner.")] = None,
    presales_owner: Annotated[str | None, Query(max_length=200)] = None,
    postsales_owner: Annotated[str | None, Query(max_length=200)] = None,
    segment: Annotated[str | None, Query(max_length=100)] = None,
    account_id: Annotated[str | None, Query(max_length=200, description="account.external_id")] = None,
    overdue: Annotated[bool | None, Query(description="Only handoffs with (true) or without (false) an "
                                                     "overdue commitment.")] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> Page[HandoffOut]:
    """List handoffs, newest first."""
    filters = repo.HandoffFilters(status=status, owner=owner, presales_owner=presales_owner,
                                  postsales_owner=postsales_owner, segment=segment, account_id=account_id,
                                  overdue=overdue)
    rows, nxt = await repo.page(session, filters, today=service.today(), cursor=cursor, limit=limit)
    items = await service.read_many(session, rows, settings.completeness_checklist)
    return Page[HandoffOut](items=items, next_cursor=nxt)


@router.get("/{handoff_id}", response_model=HandoffOut, responses=problems(404))
async def get_handoff(handoff: ValidHandoff, session: SessionDep, settings: SettingsDep,
                      _: ReadScope) -> HandoffOut:
    """Read a handoff with its completeness, commitments and history."""
    return await service.read(session, handoff, settings.completeness_checklist)


@router.patch("/{handoff_id}", response_model=HandoffOut, responses=problems(404, 409))
async def update_handoff(handoff_id: HandoffId, body: HandoffPatch, session: SessionDep, settings: SettingsDep,
                         _: WriteScope) -> HandoffOut:
    """Edit a draft or returned handoff (409 once submitted or accepted)."""
    return await service.update(session, handoff_id, body, settings.completeness_checklist)


@router.post("/{handoff_id}/submit", response_model=HandoffOut, responses=problems(404, 409))
async def submit_handoff(handoff_id: HandoffId, session: SessionDep, ctx: ContextDep, settings: SettingsDep,
                         principal: WriteScope, body: Annotated[SubmitIn | None, Body()] = None) -> HandoffOut:
    """Submit a draft or returned handoff; 422 listing each missing item when incomplete."""
    body = body or SubmitIn()
    return await service.transition(session, ctx.outbox, handoff_id, "submit", by=body.by, reason=body.reason,
                                     checklist=settings.completeness_checklist,
                                     fallback_actor=actor_of(principal, None))


@router.post("/{handoff_id}/accept", response_model=HandoffOut, responses=problems(404, 409))
async def accept_handoff(handoff_id: HandoffId, session: SessionDep, ctx: ContextDep, settings: SettingsDep,
                         principal: WriteScope, body: Annotated[AcceptIn | None, Body()] = None) -> HandoffOut:
    """Accept a submitted handoff (post-sales); lifecycle onboards the account from its event."""
    body = body or AcceptIn()
    return await service.transition(session, ctx.outbox, handoff_id, "accept", by=body.by, reason=body.reason,
                                     checklist=settings.completeness_checklist,
                                     fallback_actor=actor_of(principal, None))


@router.post("/{handoff_id}/return", response_model=HandoffOut, responses=problems(404, 409))
async def return_handoff(handoff_id: HandoffId, body: ReturnIn, session: SessionDep, ctx: ContextDep,
                         settings: SettingsDep, principal: WriteScope) -> HandoffOut:
    """Return a submitted handoff to presales with the reason."""
    return await service.transition(session, ctx.outbox, handoff_id, "return", by=body.by,
                                    reason=body.reason.strip(), checklist=settings.completeness_checklist,
                                    fallback_actor=actor_of(principal, None))
