"""HTTP API of renewals."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query

from services.lifecycle.accounts import repository as accounts_repo
from services.lifecycle.accounts.schemas import HealthOut
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
from services.lifecycle.renewals import repository as repo
from services.lifecycle.renewals import service
from services.lifecycle.renewals.schemas import RenewalCreate, RenewalOut, UpcomingRenewalOut
from shared.app import SessionDep
from shared.errors import problems
from shared.http import Cursor, Limit, Page

router = APIRouter(tags=["renewals"])


@router.post("/v1/accounts/{account_id}/renewals", status_code=201, response_model=RenewalOut,
             responses=problems(404, 409))
async def record_renewal(body: RenewalCreate, principal: WriteScope, account: LockedAccountDep,
                         session: SessionDep, idem: IdempotencyDep, now: NowDep,
                         settings: SettingsDep) -> RenewalOut:
    """Record a renewal outcome (emits `renewal.recorded`; churned also `account.stage_changed`)."""
    await idem.check(session)
    renewal = await service.record(session, account, body, now=happened_at(body.at, now, settings.time_bounds),
                                   actor=actor_of(principal, body.actor))
    out = RenewalOut.model_validate(renewal, from_attributes=True)
    await idem.save(session, 201, out)
    return out


@router.get("/v1/accounts/{account_id}/renewals", response_model=Page[RenewalOut], responses=problems(404))
async def list_renewals(_: ReadScope, account: AccountDep, session: SessionDep, limit: Limit = 50,
                        cursor: Cursor = None) -> Page[RenewalOut]:
    """The account's recorded renewals, newest first."""
    rows, nxt = await repo.page(session, account.id, cursor=cursor, limit=limit)
    return Page[RenewalOut](items=[RenewalOut.model_validate(r, from_attributes=True) for r in rows],
                            next_cursor=nxt)


@router.get("/v1/renewals/upcoming", response_model=Page[UpcomingRenewalOut], responses=problems())
async def upcoming_renewals(
    _: ReadScope, session: SessionDep, now: NowDep,
    within_days: Annotated[int, Query(ge=0, le=3650, description="Renewal date within this many days.")] = 90,
    limit: Limit = 50, cursor: Cursor = None,
) -> Page[UpcomingRenewalOut]:
    """Live (not churned) accounts renewing between today and today + within_days, soonest first."""
    today = now.date()
    rows, nxt = await accounts_repo.upcoming_renewals(
        session, start=today, end=today + dt.timedelta(days=within_days), cursor=cursor, limit=limit)
    health = await accounts_repo.health_for(session, [a.id for a in rows])
    items = []
    for a in rows:
        assert a.renewal_date is not None
        h = health.get(a.id)
        items.append(UpcomingRenewalOut(
            account_id=a.id, name=a.name, owner=a.owner, segment=a.segment, stage=a.stage,
            renewal_date=a.renewal_date, days_until=(a.renewal_date - today).days, arr=a.arr, currency=a.currency,
            health=HealthOut(score=h.score, band=h.band, as_of=h.as_of) if h else None,
        ))
    return Page[UpcomingRenewalOut](items=items, next_cursor=nxt)
