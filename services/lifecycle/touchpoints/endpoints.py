"""HTTP API of an account's touchpoints."""

from __future__ import annotations

from fastapi import APIRouter

from services.lifecycle.common import happened_at
from services.lifecycle.dependencies import (
    AccountDep,
    IdempotencyDep,
    NowDep,
    ReadScope,
    SettingsDep,
    WriteScope,
    actor_of,
)
from services.lifecycle.touchpoints import repository as repo
from services.lifecycle.touchpoints.schemas import TouchpointCreate, TouchpointKind, TouchpointOut
from services.lifecycle.touchpoints.service import log_touchpoint
from shared.app import SessionDep
from shared.errors import problems
from shared.http import Cursor, Limit, Page

router = APIRouter(prefix="/v1/accounts/{account_id}/touchpoints", tags=["touchpoints"])


@router.post("", status_code=201, response_model=TouchpointOut, responses=problems(404))
async def create_touchpoint(body: TouchpointCreate, principal: WriteScope, account: AccountDep,
                            session: SessionDep, idem: IdempotencyDep, now: NowDep,
                            settings: SettingsDep) -> TouchpointOut:
    """Log a touchpoint (emits `touchpoint.logged`); 422 when `at` is out of the time bounds."""
    await idem.check(session)
    tp = await log_touchpoint(session, account, body, at=happened_at(body.at, now, settings.time_bounds),
                              actor=actor_of(principal, body.actor))
    out = TouchpointOut.model_validate(tp, from_attributes=True)
    await idem.save(session, 201, out)
    return out


@router.get("", response_model=Page[TouchpointOut], responses=problems(404))
async def list_touchpoints(_: ReadScope, account: AccountDep, session: SessionDep,
                           kind: TouchpointKind | None = None, limit: Limit = 50,
                           cursor: Cursor = None) -> Page[TouchpointOut]:
    """The account's touchpoints, most recent first."""
    rows, nxt = await repo.page(session, account.id, kind=kind, cursor=cursor, limit=limit)
    return Page[TouchpointOut](items=[TouchpointOut.model_validate(r, from_attributes=True) for r in rows],
                               next_cursor=nxt)
