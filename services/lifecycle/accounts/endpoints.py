"""HTTP API of accounts and their stage machine."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from services.lifecycle.accounts import repository as repo
from services.lifecycle.accounts import service
from services.lifecycle.accounts.schemas import (
    AccountCreate,
    AccountOut,
    AccountUpdate,
    HealthBand,
    StageChangeOut,
    TransitionIn,
)
from services.lifecycle.common import Stage, happened_at
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
from shared.app import SessionDep
from shared.errors import problems
from shared.http import Cursor, Limit, Page

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])


@router.get("", response_model=Page[AccountOut], responses=problems())
async def list_accounts(
    _: ReadScope, session: SessionDep, now: NowDep, settings: SettingsDep,
    stage: Stage | None = None,
    owner: Annotated[str | None, Query(max_length=200)] = None,
    segment: Annotated[str | None, Query(max_length=100)] = None,
    health_band: HealthBand | None = None,
    renewal_within_days: Annotated[int | None, Query(ge=0, le=3650, description=(
        "Only accounts renewing between today and today + N days."))] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> Page[AccountOut]:
    """List accounts, newest first, filtered by stage, owner, segment, health band or renewal horizon."""
    today = now.date()
    filters = repo.AccountFilters(
        stage=stage, owner=owner, segment=segment, health_band=health_band,
        renewal_from=today if renewal_within_days is not None else None,
        renewal_before=today + dt.timedelta(days=renewal_within_days) if renewal_within_days is not None else None,
    )
    rows, nxt = await repo.page(session, filters, cursor=cursor, limit=limit)
    return Page[AccountOut](items=await service.views(session, rows, today=today, settings=settings),
                            next_cursor=nxt)


@router.post("", status_code=201, response_model=AccountOut, responses=problems(409))
async def create_account(body: AccountCreate, principal: WriteScope, session: SessionDep, idem: IdempotencyDep,
                         now: NowDep, settings: SettingsDep) -> AccountOut:
    """Create an account directly (in onboarding it gets the standard milestone plan); 409 if the id exists."""
    await idem.check(session)
    account = await service.create(session, body, settings=settings, now=now, actor=actor_of(principal))
    out = await service.view(session, account, today=now.date(), settings=settings)
    await idem.save(session, 201, out)
    return out


@router.get("/{account_id}", response_model=AccountOut, responses=problems(404))
async def get_account(_: ReadScope, account: AccountDep, session: SessionDep, now: NowDep,
                      settings: SettingsDep) -> AccountOut:
    """Read one account with its onboarding summary and latest health."""
    return await service.view(session, account, today=now.date(), settings=settings)


@router.patch("/{account_id}", response_model=AccountOut, responses=problems(404))
async def update_account(body: AccountUpdate, principal: WriteScope, account: LockedAccountDep,
                         session: SessionDep, now: NowDep, settings: SettingsDep) -> AccountOut:
    """Change account facts (emits `account.updated`); a new renewal_date re-arms the renewal windows."""
    await service.update(session, account, body, now=now, actor=actor_of(principal))
    return await service.view(session, account, today=now.date(), settings=settings)


@router.post("/{account_id}/transitions", status_code=201, response_model=StageChangeOut,
             responses=problems(404, 409))
async def transition_account(body: TransitionIn, principal: WriteScope, account: LockedAccountDep,
                             session: SessionDep, idem: IdempotencyDep, now: NowDep,
                             settings: SettingsDep) -> StageChangeOut:
    """Move the account to another stage; 409 when the stage machine does not allow it."""
    await idem.check(session)
    change = await service.transition(session, account, body.to, reason=body.reason,
                                      actor=actor_of(principal, body.actor),
                                      now=happened_at(body.at, now, settings.time_bounds))
    out = StageChangeOut.model_validate(change, from_attributes=True)
    await idem.save(session, 201, out)
    return out


@router.get("/{account_id}/transitions", response_model=Page[StageChangeOut], responses=problems(404))
async def list_transitions(_: ReadScope, account: AccountDep, session: SessionDep, limit: Limit = 50,
                           cursor: Cursor = None) -> Page[StageChangeOut]:
    """The account's stage history (reason, actor, time), newest first."""
    rows, nxt = await repo.stage_history(session, account.id, cursor=cursor, limit=limit)
    return Page[StageChangeOut](items=[StageChangeOut.model_validate(r, from_attributes=True) for r in rows],
                                next_cursor=nxt)
