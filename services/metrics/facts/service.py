"""Account facts the KPIs and health need, folded in from lifecycle and handoff events.

Every fold is idempotent in effect and tolerates reordering: a fact only overwrites with a
non-null value, first-time timestamps keep the earliest, "last seen" timestamps keep the latest.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.facts import history
from services.metrics.facts import repository as repo
from services.metrics.health import repository as health_repo
from services.metrics.models import Account, Commitment, Opportunity, Renewal
from services.metrics.risk import repository as risk_repo
from shared.db import utcnow
from shared.events.consumer import PermanentError
from shared.events.envelope import CloudEvent, InvalidEvent
from shared.events.registry import (
    AccountPayload,
    CommitmentUpdated,
    HandoffPayload,
    OnboardingCompleted,
    OpportunityUpdated,
    Payload,
    RenewalRecorded,
    RenewalWindowEntered,
    StageChanged,
    TouchpointLogged,
    parse_data,
)

# The account facts the churn-risk features read as of a date (kept with when they changed).
HISTORY_FIELDS = ("stage", "owner", "segment", "seats", "arr", "contract_start", "renewal_date")
CHURN_EVENTS = ("account.created", "account.updated", "account.stage_changed", "renewal.recorded")
ACCOUNT_FIELDS = ("name", "stage", "owner", "segment", "seats", "currency", "contract_start", "renewal_date",
                  "planned_go_live")


def _day_start(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


async def _account(session: AsyncSession, account_id: str) -> Account:
    account = await repo.get_account(session, account_id, for_update=True)
    if account is None:
        account = Account(account_id=account_id, updated_at=utcnow())
        session.add(account)
    return account


def _set_facts(account: Account, values: dict[str, Any]) -> None:
    for name in ACCOUNT_FIELDS:
        value = values.get(name)
        if value is not None:
            setattr(account, name, value)
    if values.get("arr") is not None:
        account.arr = str(values["arr"])
    account.updated_at = utcnow()


def _earliest(current: dt.datetime | None, candidate: dt.datetime) -> dt.datetime:
    return candidate if current is None or candidate < current else current


def _optional_date(value: Any) -> dt.date | None:
    """An extra (unschematised) date field: used when well-formed, ignored otherwise."""
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _parse(event: CloudEvent, schema: type[Payload]) -> Any:
    try:
        return parse_data(event, schema)
    except InvalidEvent as exc:
        raise PermanentError(str(exc)) from None


async def apply_fact(session: AsyncSession, event: CloudEvent) -> None:
    """The handler of the facts consumer (lifecycle and handoff topics)."""
    name = event.type.removeprefix("postsales.")
    at = event.time.astimezone(dt.UTC)
    account_id: str | None = event.subject
    if name in ("account.created", "account.updated"):
        p: Any = _parse(event, AccountPayload)
        account_id = p.account_id
        account = await _account(session, p.account_id)
        facts = p.model_dump()
        facts["planned_go_live"] = _optional_date(facts.get("planned_go_live"))
        _set_facts(account, facts)
        if name == "account.created":
            account.created_at = _earliest(account.created_at, at)
        if p.stage == "churned":
            account.churned_at = _earliest(account.churned_at, at)
        await history.record(session, event_id=event.id, account_id=account_id, kind="account", at=at,
                             data={k: facts.get(k) for k in HISTORY_FIELDS})
    elif name == "account.stage_changed":
        p = _parse(event, StageChanged)
        account_id = p.account_id
        account = await _account(session, p.account_id)
        account.stage = p.to_stage
        account.updated_at = utcnow()
        if p.to_stage == "churned":
            account.churned_at = _earliest(account.churned_at, at)
        await history.record(session, event_id=event.id, account_id=account_id, kind="stage", at=at,
                             data={"to": p.to_stage})
    elif name == "handoff.accepted":
        p = _parse(event, HandoffPayload)
        account_id = p.account.external_id
        account = await _account(session, account_id)
        facts = p.account.model_dump()
        facts["owner"] = p.postsales_owner
        _set_facts(account, facts)
        account.created_at = _earliest(account.created_at, at)
        for c in p.commitments:
            if await repo.get_commitment(session, c.id) is None:
                session.add(Commitment(commitment_id=c.id, account_id=account_id, handoff_id=p.handoff_id,
                                       title=c.title, status=c.status, due_date=c.due_date, updated_at=utcnow()))
        await history.record(session, event_id=event.id, account_id=account_id, kind="handoff", at=at, data={
            **{k: facts.get(k) for k in HISTORY_FIELDS},
            "commitments": [{"id": c.id, "status": c.status, "due_date": c.due_date} for c in p.commitments]})
    elif name == "commitment.updated":
        p = _parse(event, CommitmentUpdated)
        account_id = str((p.model_extra or {}).get("account_id") or event.subject)
        await _commitment(session, account_id, p, at)
        await history.record(session, event_id=event.id, account_id=account_id, kind="commitment", at=at, data={
            "id": p.commitment_id, "status": p.status, "due_date": p.due_date, "delivered_at": p.delivered_at})
    elif name == "onboarding.completed":
        p = _parse(event, OnboardingCompleted)
        account_id = p.account_id
        account = await _account(session, p.account_id)
        account.onboarding_completed_at = _earliest(account.onboarding_completed_at, p.completed_at)
        _set_facts(account, {"planned_go_live": p.planned_go_live, "contract_start": p.contract_start})
        await history.record(session, event_id=event.id, account_id=account_id, kind="onboarding",
                             at=p.completed_at, data={"completed_at": p.completed_at})
    elif name == "touchpoint.logged":
        p = _parse(event, TouchpointLogged)
        account_id = p.account_id
        account = await _account(session, p.account_id)
        if account.last_touchpoint_at is None or p.at > account.last_touchpoint_at:
            account.last_touchpoint_at = p.at
        account.updated_at = utcnow()
        await history.record(session, event_id=event.id, account_id=account_id, kind="touchpoint", at=p.at,
                             data={"kind": p.kind})
    elif name == "renewal.window_entered":
        p = _parse(event, RenewalWindowEntered)
        account_id = p.account_id
        _set_facts(await _account(session, p.account_id), {"renewal_date": p.renewal_date})
        await history.record(session, event_id=event.id, account_id=account_id, kind="account", at=at,
                             data={"renewal_date": p.renewal_date})
    elif name == "renewal.recorded":
        p = _parse(event, RenewalRecorded)
        account_id = p.account_id
        await _renewal(session, p, (p.model_extra or {}).get("currency"), at)
        await history.record(session, event_id=event.id, account_id=account_id, kind="renewal", at=at, data={
            "outcome": p.outcome, "renewal_date": p.renewal_date or at.date(), "arr_before": p.arr_before,
            "arr_after": p.arr_after, "next_renewal_date": (p.model_extra or {}).get("next_renewal_date")})
    elif name == "opportunity.updated":
        p = _parse(event, OpportunityUpdated)
        account_id = p.account_id
        await _opportunity(session, p, (p.model_extra or {}).get("currency"), at)
    else:
        return  # other lifecycle/handoff events carry nothing metrics needs
    await session.flush()
    await health_repo.mark_dirty(session, [account_id])
    if name in CHURN_EVENTS:
        churned = await repo.get_account(session, account_id)
        if churned is not None and churned.churned_at is not None:
            await risk_repo.drop_score(session, account_id)  # off the at-risk worklist at once


async def _commitment(session: AsyncSession, account_id: str, p: CommitmentUpdated, at: dt.datetime) -> None:
    c = await repo.get_commitment(session, p.commitment_id)
    if c is None:
        c = Commitment(commitment_id=p.commitment_id, account_id=account_id, handoff_id=p.handoff_id,
                       status=p.status, updated_at=utcnow())
        session.add(c)
    c.title = p.title
    c.status = p.status
    c.due_date = p.due_date or c.due_date
    if p.status == "delivered":
        c.delivered_at = p.delivered_at or c.delivered_at or at
    c.updated_at = utcnow()


async def _renewal(session: AsyncSession, p: RenewalRecorded, currency: Any, at: dt.datetime) -> None:
    day = p.renewal_date or at.date()
    r = await repo.get_renewal(session, p.account_id, day)
    if r is None:
        r = Renewal(account_id=p.account_id, renewal_date=day, recorded_at=at)
        session.add(r)
    r.outcome = p.outcome
    r.arr_before = str(p.arr_before)
    r.arr_after = str(p.arr_after)
    r.currency = str(currency)[:3] if currency else None
    account = await _account(session, p.account_id)
    if p.outcome == "churned":
        account.churned_at = _earliest(account.churned_at, _day_start(day))
    # ARR itself changes only with account.updated: "starting ARR" must stay the period-start value.
    account.updated_at = utcnow()


async def _opportunity(session: AsyncSession, p: OpportunityUpdated, currency: Any, at: dt.datetime) -> None:
    o = await repo.get_opportunity(session, p.opportunity_id)
    if o is None:
        o = Opportunity(opportunity_id=p.opportunity_id, account_id=p.account_id, updated_at=utcnow())
        session.add(o)
    o.kind = p.kind
    o.amount = str(p.amount)
    o.status = p.status
    o.currency = str(currency)[:3] if currency else o.currency
    if p.status == "won":
        o.won_at = _earliest(o.won_at, at)
    o.updated_at = utcnow()
