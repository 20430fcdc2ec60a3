"""HTTP API of an account's opportunities."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from services.lifecycle.dependencies import (
    AccountDep,
    IdempotencyDep,
    LockedAccountDep,
    NowDep,
    ReadScope,
    WriteScope,
    actor_of,
)
from services.lifecycle.opportunities import repository as repo
from services.lifecycle.opportunities import service
from services.lifecycle.opportunities.schemas import (
    OpportunityCreate,
    OpportunityOut,
    OpportunityStatus,
    OpportunityUpdate,
)
from shared.app import SessionDep
from shared.errors import NotFound, problems
from shared.http import Cursor, Limit, Page

router = APIRouter(prefix="/v1/accounts/{account_id}/opportunities", tags=["opportunities"])

OpportunityIdPath = Annotated[str, Path(min_length=1, max_length=64)]


@router.get("", response_model=Page[OpportunityOut], responses=problems(404))
async def list_opportunities(_: ReadScope, account: AccountDep, session: SessionDep,
                             status: OpportunityStatus | None = None, limit: Limit = 50,
                             cursor: Cursor = None) -> Page[OpportunityOut]:
    """The account's upsell and cross-sell opportunities, newest first."""
    rows, nxt = await repo.page(session, account.id, status=status, cursor=cursor, limit=limit)
    return Page[OpportunityOut](items=[OpportunityOut.model_validate(r, from_attributes=True) for r in rows],
                                next_cursor=nxt)


@router.post("", status_code=201, response_model=OpportunityOut, responses=problems(404))
async def create_opportunity(body: OpportunityCreate, principal: WriteScope, account: AccountDep,
                             session: SessionDep, idem: IdempotencyDep, now: NowDep) -> OpportunityOut:
    """Open an opportunity (emits `opportunity.updated`)."""
    await idem.check(session)
    opp = await service.create(session, account, body, now=now, actor=actor_of(principal))
    out = OpportunityOut.model_validate(opp, from_attributes=True)
    await idem.save(session, 201, out)
    return out


@router.get("/{opportunity_id}", response_model=OpportunityOut, responses=problems(404))
async def get_opportunity(opportunity_id: OpportunityIdPath, _: ReadScope, account: AccountDep,
                          session: SessionDep) -> OpportunityOut:
    """Read one opportunity."""
    opp = await repo.get(session, account.id, opportunity_id)
    if opp is None:
        raise NotFound(f"opportunity {opportunity_id} does not exist on account {account.id}")
    return OpportunityOut.model_validate(opp, from_attributes=True)


@router.patch("/{opportunity_id}", response_model=OpportunityOut, responses=problems(404, 409))
async def update_opportunity(opportunity_id: OpportunityIdPath, body: OpportunityUpdate, principal: WriteScope,
                             account: LockedAccountDep, session: SessionDep, now: NowDep) -> OpportunityOut:
    """Change an opportunity (status open → won | lost; emits `opportunity.updated`); 409 once closed."""
    opp = await repo.get(session, account.id, opportunity_id, lock=True)
    if opp is None:
        raise NotFound(f"opportunity {opportunity_id} does not exist on account {account.id}")
    await service.update(session, opp, body, now=now, actor=actor_of(principal))
    return OpportunityOut.model_validate(opp, from_attributes=True)
