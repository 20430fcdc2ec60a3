"""Opportunity rules; every change emits `opportunity.updated`."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.lifecycle.events import emit
from services.lifecycle.models import Account, Opportunity
from services.lifecycle.opportunities.schemas import OpportunityCreate, OpportunityUpdate
from shared.db import utcnow
from shared.errors import Conflict, Unprocessable

CLOSED = ("won", "lost")


async def _emit(session: AsyncSession, opp: Opportunity, *, now: dt.datetime, actor: str,
                previous_status: str | None, summary: str) -> None:
    await emit(session, type="opportunity.updated", account_id=opp.account_id, at=now, actor=actor, summary=summary,
               data={"opportunity_id": opp.id, "kind": opp.kind, "amount": opp.amount, "currency": opp.currency,
                     "status": opp.status, "previous_status": previous_status, "title": opp.title,
                     "closed_at": opp.closed_at})


async def create(session: AsyncSession, account: Account, body: OpportunityCreate, *, now: dt.datetime,
                 actor: str) -> Opportunity:
    currency = body.currency or account.currency
    if currency is None:
        raise Unprocessable("currency is required: the account has none",
                            errors=[{"loc": ["body", "currency"], "msg": "required (the account has no currency)"}])
    ts = utcnow()
    opp = Opportunity(id=str(uuid.uuid4()), account_id=account.id, kind=body.kind, title=body.title,
                      amount=body.amount, currency=currency, status=body.status, owner=body.owner or account.owner,
                      notes=body.notes, expected_close_date=body.expected_close_date,
                      closed_at=now if body.status in CLOSED else None, created_at=ts, updated_at=ts)
    session.add(opp)
    await session.flush()
    await _emit(session, opp, now=now, actor=actor, previous_status=None,
                summary=f"Opportunity ({opp.kind}) {opp.amount} {opp.currency} created: {opp.status}")
    return opp


async def update(session: AsyncSession, opp: Opportunity, body: OpportunityUpdate, *, now: dt.datetime,
                 actor: str) -> Opportunity:
    fields = body.model_fields_set
    previous = opp.status
    closed = previous in CLOSED
    if closed and (("status" in fields and body.status != previous)
                   or ("amount" in fields and body.amount != opp.amount)
                   or ("currency" in fields and body.currency != opp.currency)):
        raise Conflict(f"opportunity {opp.id} is {previous}; its status and amount are final",
                       current_status=previous)
    changed = False
    for name in ("status", "amount", "currency", "title", "owner", "notes", "expected_close_date"):
        if name in fields and getattr(body, name) != getattr(opp, name):
            setattr(opp, name, getattr(body, name))
            changed = True
    if not changed:
        return opp
    if opp.status in CLOSED and not closed:
        opp.closed_at = now
    opp.updated_at = utcnow()
    await session.flush()
    summary = (f"Opportunity ({opp.kind}) {opp.amount} {opp.currency} {opp.status}" if opp.status != previous
               else f"Opportunity ({opp.kind}) updated")
    await _emit(session, opp, now=now, actor=actor, previous_status=previous, summary=summary)
    return opp
