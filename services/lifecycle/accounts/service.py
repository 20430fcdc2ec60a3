"""Account rules: creation (HTTP or accepted handoff), updates, the stage machine, read views."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.lifecycle.accounts import repository as repo
from services.lifecycle.accounts.schemas import AccountCreate, AccountOut, AccountUpdate, HealthOut, RiskOut
from services.lifecycle.common import allowed_targets
from services.lifecycle.events import emit, record
from services.lifecycle.models import Account, AccountHealth, AccountRisk, StageChange, quantize_money
from services.lifecycle.onboarding import service as onboarding
from services.lifecycle.playbooks import runs as playbook_runs
from services.lifecycle.settings import Settings
from services.lifecycle.tasks import repository as tasks_repo
from shared.db import utcnow
from shared.errors import Conflict, Unprocessable
from shared.events import CloudEvent
from shared.events.consumer import PermanentError
from shared.events.registry import HandoffPayload, HealthChanged, RiskChanged

ACCOUNT_FIELDS = ("name", "segment", "plan", "owner", "seats", "arr", "currency", "contract_start", "renewal_date")


def account_payload(account: Account) -> dict[str, Any]:
    """The data of `account.created` / `account.updated` (account_id is added by `emit`)."""
    return {"name": account.name, "stage": account.stage, "owner": account.owner, "segment": account.segment,
            "plan": account.plan, "seats": account.seats, "arr": account.arr, "currency": account.currency,
            "contract_start": account.contract_start, "renewal_date": account.renewal_date,
            "handoff_id": account.handoff_id, "crm_opportunity_id": account.crm_opportunity_id}


async def views(session: AsyncSession, accounts: Sequence[Account], *, today: dt.date,
                settings: Settings) -> list[AccountOut]:
    ids = [a.id for a in accounts]
    health = await repo.health_for(session, ids)
    risk = await repo.risk_for(session, ids)
    plans = await tasks_repo.plan_tasks(session, ids)
    out = []
    for a in accounts:
        h = health.get(a.id)
        out.append(AccountOut(
            id=a.id, name=a.name, segment=a.segment, plan=a.plan, stage=a.stage,
            owner=a.owner, seats=a.seats, arr=a.arr, currency=a.currency, contract_start=a.contract_start,
            renewal_date=a.renewal_date, handoff_id=a.handoff_id, crm_opportunity_id=a.crm_opportunity_id,
            onboarding=onboarding.summarize(a, plans[a.id], today=today, settings=settings),
            health=HealthOut(score=h.score, band=h.band, as_of=h.as_of) if h else None,
            risk=_risk_out(risk.get(a.id)),
            stage_changed_at=a.stage_changed_at, created_at=a.created_at, updated_at=a.updated_at,
        ))
    return out


def _risk_out(r: AccountRisk | None) -> RiskOut | None:
    if r is None or r.band not in ("low", "medium", "high"):
        return None
    return RiskOut(band=r.band, probability=r.probability, as_of=r.as_of)


async def view(session: AsyncSession, account: Account, *, today: dt.date, settings: Settings) -> AccountOut:
    return (await views(session, [account], today=today, settings=settings))[0]


async def _add_history(session: AsyncSession, account: Account, *, from_stage: str | None, to_stage: str,
                       reason: str | None, actor: str | None, at: dt.datetime) -> StageChange:
    seq = await repo.last_stage_seq(session, account.id) + 1
    change = StageChange(id=str(uuid.uuid4()), account_id=account.id, seq=seq, from_stage=from_stage,
                         to_stage=to_stage, reason=reason, actor=actor, at=at)
    session.add(change)
    return change


async def create(session: AsyncSession, body: AccountCreate, *, settings: Settings, now: dt.datetime,
                 actor: str) -> Account:
    if await repo.get(session, body.id) is not None:
        raise Conflict(f"account {body.id} already exists")
    ts = utcnow()
    account = Account(
        id=body.id, name=body.name, segment=body.segment, plan=body.plan, stage=body.stage, owner=body.owner,
        seats=body.seats, arr=body.arr, currency=body.currency, contract_start=body.contract_start,
        renewal_date=body.renewal_date, stage_changed_at=now, created_at=ts, updated_at=ts,
    )
    session.add(account)
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"account {body.id} already exists") from None
    await _add_history(session, account, from_stage=None, to_stage=body.stage, reason="created", actor=actor,
                       at=now)
    if body.stage == "onboarding":
        onboarding.add_milestones(session, account, settings, anchor=body.contract_start or now.date(), now=now)
    await emit(session, type="account.created", account_id=account.id, at=now, actor=actor,
               summary=f"Account created in stage {account.stage}", data=account_payload(account))
    await session.flush()
    return account


async def update(session: AsyncSession, account: Account, body: AccountUpdate, *, now: dt.datetime,
                 actor: str) -> Account:
    changed: list[str] = []
    for name in ACCOUNT_FIELDS:
        if name in body.model_fields_set and getattr(body, name) != getattr(account, name):
            changed.append(name)
    proposed = {name: getattr(body, name) if name in changed else getattr(account, name) for name in ACCOUNT_FIELDS}
    if proposed["arr"] is not None and proposed["currency"] is None:
        raise Unprocessable("currency is required with arr",
                            errors=[{"loc": ["body", "currency"], "msg": "required when arr is set"}])
    start, renewal = proposed["contract_start"], proposed["renewal_date"]
    if start is not None and renewal is not None and renewal <= start:
        raise Unprocessable("renewal_date must be after contract_start",
                            errors=[{"loc": ["body", "renewal_date"], "msg": "must be after contract_start"}])
    if not changed:
        return account
    before = {name: getattr(account, name) for name in changed}
    for name in changed:
        setattr(account, name, proposed[name])
    account.updated_at = utcnow()
    await session.flush()
    # A new renewal_date re-arms the renewal windows: the scheduler's ledger is keyed by the date.
    await emit(session, type="account.updated", account_id=account.id, at=now, actor=actor,
               summary="Account updated: " + ", ".join(changed),
               data={**account_payload(account), "changed": changed, "previous": before})
    return account


async def transition(session: AsyncSession, account: Account, to: str, *, reason: str | None, actor: str | None,
                     now: dt.datetime) -> StageChange:
    """Move ``account`` to stage ``to`` or raise Conflict (nothing written) when the machine forbids it."""
    current = account.stage
    allowed = sorted(allowed_targets(current))
    if to == current:
        raise Conflict(f"account {account.id} is already in stage {current}", stage=current, allowed=allowed)
    if to not in allowed:
        raise Conflict(f"cannot move account {account.id} from {current} to {to}", stage=current, allowed=allowed)
    change = await _add_history(session, account, from_stage=current, to_stage=to, reason=reason, actor=actor,
                                at=now)
    account.stage = to
    account.stage_changed_at = now
    account.updated_at = utcnow()
    await emit(session, type="account.stage_changed", account_id=account.id, at=now, actor=actor,
               summary=f"Stage {current} → {to}" + (f": {reason}" if reason else ""),
               data={"from": current, "to": to, "reason": reason, "actor": actor})
    if to == "churned":
        await playbook_runs.cancel_for_account(session, account, now=now, actor=actor, reason="the account churned")
    await session.flush()
    return change


def _clip(value: str | None, size: int) -> str | None:
    """Free text from another service, cut to our column size rather than refused."""
    return value[:size] if value is not None else None


def _currency(value: str | None) -> str | None:
    code = (value or "").strip().upper()
    return code if len(code) == 3 and code.isalpha() else None


async def apply_handoff(session: AsyncSession, event: CloudEvent, handoff: HandoffPayload, *,
                        settings: Settings) -> None:
    """An accepted handoff: create the account and its onboarding plan, or add what is new to it.

    Idempotent in effect: the same handoff again (under any event id) changes nothing."""
    info = handoff.account
    if not 0 < len(info.external_id) <= 200 or "/" in info.external_id:
        raise PermanentError(f"account.external_id {info.external_id[:50]!r} cannot be an account id "
                             "(1-200 characters, no '/')")
    at = event.time
    by = _clip(handoff.by, 200)
    account = await repo.get(session, info.external_id, lock=True)
    fresh_link = account is None or account.handoff_id != handoff.handoff_id
    if account is None:
        ts = utcnow()
        account = Account(
            id=info.external_id, name=info.name[:300], segment=_clip(info.segment, 100), plan=_clip(info.plan, 100),
            stage="onboarding", owner=_clip(handoff.postsales_owner, 200), seats=info.seats,
            arr=quantize_money(info.arr) if info.arr is not None else None, currency=_currency(info.currency),
            contract_start=info.contract_start, renewal_date=info.renewal_date, handoff_id=handoff.handoff_id,
            crm_opportunity_id=_clip(handoff.crm_opportunity_id, 200), stage_changed_at=at, created_at=ts,
            updated_at=ts,
        )
        session.add(account)
        await session.flush()
        await _add_history(session, account, from_stage=None, to_stage="onboarding",
                           reason=f"handoff {handoff.handoff_id} accepted", actor=by, at=at)
        onboarding.add_milestones(session, account, settings, anchor=info.contract_start or at.date(), now=at)
        await emit(session, type="account.created", account_id=account.id, at=at, actor=by,
                   summary=f"Account created from handoff {handoff.handoff_id}", data=account_payload(account))
    elif fresh_link:
        # An account made by hand (or by an earlier handoff): fill gaps, never overwrite what people set.
        filled = []
        for name, value in (("segment", _clip(info.segment, 100)), ("plan", _clip(info.plan, 100)),
                            ("seats", info.seats),
                            ("arr", quantize_money(info.arr) if info.arr is not None else None),
                            ("currency", _currency(info.currency)), ("contract_start", info.contract_start),
                            ("renewal_date", info.renewal_date), ("owner", _clip(handoff.postsales_owner, 200)),
                            ("handoff_id", handoff.handoff_id), ("crm_opportunity_id", handoff.crm_opportunity_id)):
            if getattr(account, name) is None and value is not None:
                setattr(account, name, value)
                filled.append(name)
        if filled:
            account.updated_at = utcnow()
            await session.flush()
            await emit(session, type="account.updated", account_id=account.id, at=at, actor=by,
                       summary=f"Account completed from handoff {handoff.handoff_id}",
                       data={**account_payload(account), "changed": filled})
    existing = await tasks_repo.commitment_ids(session, account.id)
    added = onboarding.add_commitment_tasks(
        session, account, handoff.commitments, handoff_id=handoff.handoff_id,
        default_owner=handoff.postsales_owner or account.owner, skip=existing, now=at)
    if fresh_link:
        record(session, account_id=account.id, type=event.type, occurred_at=at, event_id=event.id,
               actor=by, summary=f"Handoff {handoff.handoff_id} accepted with "
               f"{len(handoff.commitments)} commitment(s)",
               data={"handoff_id": handoff.handoff_id, "crm_opportunity_id": handoff.crm_opportunity_id,
                     "presales_owner": handoff.presales_owner, "postsales_owner": handoff.postsales_owner,
                     "commitments": [c.id for c in handoff.commitments], "goals": handoff.goals,
                     "tasks_added": len(added)})
    await session.flush()


async def apply_health(session: AsyncSession, event: CloudEvent, health: HealthChanged) -> None:
    """Keep the latest health per account (by event time: a late, older event does not win) and put
    every band change on the timeline (a score-only update refreshes the copy without an entry)."""
    account_id = health.account_id or event.subject
    if health.old_band != health.new_band:
        record(session, account_id=account_id, type=event.type, occurred_at=event.time, event_id=event.id,
               summary=f"Health {health.old_band or 'n/a'} → {health.new_band} ({health.new_score:g})",
               data=event.data)
    current = await repo.get_health(session, account_id, lock=True)
    if current is None:
        session.add(AccountHealth(account_id=account_id, score=health.new_score, band=health.new_band,
                                  as_of=event.time, event_id=event.id, factors=health.factors))
    elif current.as_of <= event.time:
        current.score, current.band, current.as_of = health.new_score, health.new_band, event.time
        current.event_id, current.factors = event.id, health.factors
    await session.flush()


async def apply_risk(session: AsyncSession, event: CloudEvent, risk: RiskChanged) -> None:
    """Keep the latest churn risk per account (by event time: a late, older event does not win); band
    changes go on the timeline (an account's first score too, marked as such)."""
    account_id = risk.account_id or event.subject
    first = risk.old_band is None
    record(session, account_id=account_id, type=event.type, occurred_at=event.time, event_id=event.id,
           summary=(f"Churn risk {risk.new_band} ({risk.new_probability:.0%})" if first else
                    f"Churn risk {risk.old_band} → {risk.new_band} ({risk.new_probability:.0%})"),
           data=event.data)
    current = await repo.get_risk(session, account_id)
    drivers = [d.model_dump() for d in risk.drivers]
    if current is None:
        session.add(AccountRisk(account_id=account_id, probability=risk.new_probability, band=risk.new_band,
                                as_of=event.time, event_id=event.id, drivers=drivers))
    elif current.as_of <= event.time:
        current.probability, current.band, current.as_of = risk.new_probability, risk.new_band, event.time
        current.event_id, current.drivers = event.id, drivers
    await session.flush()
