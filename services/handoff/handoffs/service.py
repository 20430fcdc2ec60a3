"""Handoff domain logic: drafts, edits, completeness and the submit/accept/return workflow."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.handoff.commitments.service import commitment_out
from services.handoff.events import handoff_event
from services.handoff.handoffs import repository as repo
from services.handoff.handoffs.completeness import Completeness, evaluate
from services.handoff.handoffs.schemas import (
    AccountOut,
    HandoffCreate,
    HandoffOut,
    HandoffPatch,
    Stakeholder,
    TransitionOut,
)
from services.handoff.models import Commitment, Handoff, HandoffTransition
from shared.db import utcnow
from shared.errors import Conflict, NotFound, Unprocessable
from shared.events.outbox import Outbox

EDITABLE = ("draft", "returned")
# verb -> (statuses it may start from, status it leads to, event type)
WORKFLOW: dict[str, tuple[tuple[str, ...], str, str]] = {
    "submit": (("draft", "returned"), "submitted", "postsales.handoff.submitted"),
    "accept": (("submitted",), "accepted", "postsales.handoff.accepted"),
    "return": (("submitted",), "returned", "postsales.handoff.returned"),
}


def today() -> dt.date:
    return utcnow().date()


def new_id() -> str:
    return str(uuid.uuid4())


async def load(session: AsyncSession, handoff_id: str, *, for_update: bool = False) -> Handoff:
    h = await repo.get(session, handoff_id, for_update=for_update)
    if h is None:
        raise NotFound(f"handoff {handoff_id} does not exist")
    return h


def to_out(h: Handoff, commitments: Sequence[Commitment], history: Sequence[HandoffTransition],
           checklist: Sequence[str], on: dt.date) -> HandoffOut:
    c = evaluate(h, len(commitments), checklist)
    return HandoffOut(
        id=h.id, status=h.status, completeness=c.ratio, missing=c.missing,
        crm_opportunity_id=h.crm_opportunity_id,
        account=AccountOut(
            external_id=h.account_external_id, name=h.account_name, segment=h.account_segment,
            plan=h.account_plan, seats=h.account_seats, arr=h.account_arr,
            currency=h.account_currency, contract_start=h.account_contract_start,
            renewal_date=h.account_renewal_date,
        ),
        challenges=list(h.challenges), goals=list(h.goals), proposal=h.proposal, demo_notes=h.demo_notes,
        commitments=[commitment_out(x, on) for x in commitments], no_commitments=h.no_commitments,
        stakeholders=[Stakeholder.model_validate(s) for s in h.stakeholders], risks=list(h.risks),
        presales_owner=h.presales_owner, postsales_owner=h.postsales_owner,
        history=[TransitionOut(from_status=t.from_status, to_status=t.to_status, by=t.actor, reason=t.reason,
                               at=t.at) for t in history],
        created_at=h.created_at, updated_at=h.updated_at, submitted_at=h.submitted_at, accepted_at=h.accepted_at,
        accepted_by=h.accepted_by, returned_at=h.returned_at, return_reason=h.return_reason,
    )


async def read(session: AsyncSession, h: Handoff, checklist: Sequence[str]) -> HandoffOut:
    commitments = (await repo.commitments_for(session, [h.id]))[h.id]
    history = (await repo.transitions_for(session, [h.id]))[h.id]
    return to_out(h, commitments, history, checklist, today())


async def read_many(session: AsyncSession, handoffs: Sequence[Handoff], checklist: Sequence[str]) -> list[HandoffOut]:
    ids = [h.id for h in handoffs]
    commitments = await repo.commitments_for(session, ids)
    history = await repo.transitions_for(session, ids)
    on = today()
    return [to_out(h, commitments[h.id], history[h.id], checklist, on) for h in handoffs]


def _clean(items: Sequence[str]) -> list[str]:
    return [s.strip() for s in items if s.strip()]


def _new_commitment(h: Handoff, position: int, title: str, kind: str, due_date: dt.date | None,
                    description: str | None, owner: str | None, now: dt.datetime) -> Commitment:
    return Commitment(
        id=new_id(), handoff_id=h.id, account_external_id=h.account_external_id, position=position,
        title=title.strip(), kind=kind, status="open", owner=owner, due_date=due_date, description=description,
        evidence=None, delivered_at=None, overdue_flagged_due=None, created_at=now, updated_at=now,
    )


async def _ensure_opportunity_free(session: AsyncSession, crm_opportunity_id: str, *, own_id: str | None) -> None:
    existing = await repo.id_for_opportunity(session, crm_opportunity_id)
    if existing is not None and existing != own_id:
        raise Conflict(f"a handoff for CRM opportunity '{crm_opportunity_id}' already exists: {existing}",
                       existing_handoff_id=existing)


async def _flush_unique(session: AsyncSession, crm_opportunity_id: str) -> None:
    """Flush, turning a concurrent insert of the same opportunity into a 409."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        raise Conflict(f"a handoff for CRM opportunity '{crm_opportunity_id}' already exists") from None


async def create(session: AsyncSession, body: HandoffCreate, checklist: Sequence[str]) -> HandoffOut:
    await _ensure_opportunity_free(session, body.crm_opportunity_id, own_id=None)
    now = utcnow()
    a = body.account
    h = Handoff(
        id=new_id(), crm_opportunity_id=body.crm_opportunity_id, status="draft",
        account_external_id=a.external_id, account_name=a.name.strip(), account_segment=a.segment,
        account_plan=a.plan, account_seats=a.seats, account_arr=None if a.arr is None else str(a.arr),
        account_currency=a.currency, account_contract_start=a.contract_start, account_renewal_date=a.renewal_date,
        challenges=_clean(body.challenges), goals=_clean(body.goals), proposal=body.proposal,
        demo_notes=body.demo_notes, stakeholders=[s.model_dump() for s in body.stakeholders],
        risks=_clean(body.risks), no_commitments=body.no_commitments, presales_owner=body.presales_owner,
        postsales_owner=body.postsales_owner, created_at=now, updated_at=now,
    )
    session.add(h)
    commitments = [_new_commitment(h, i, c.title, c.kind, c.due_date, c.description, c.owner, now)
                   for i, c in enumerate(body.commitments)]
    transition = HandoffTransition(id=new_id(), handoff_id=h.id, from_status=None, to_status="draft",
                                   actor=body.presales_owner, reason=None, at=now)
    await _flush_unique(session, body.crm_opportunity_id)
    session.add_all([*commitments, transition])
    await session.flush()
    return to_out(h, commitments, [transition], checklist, now.date())


_ACCOUNT_COLUMNS = {
    "external_id": "account_external_id", "name": "account_name", "segment": "account_segment",
    "plan": "account_plan", "seats": "account_seats", "arr": "account_arr", "currency": "account_currency",
    "contract_start": "account_contract_start", "renewal_date": "account_renewal_date",
}


async def update(session: AsyncSession, handoff_id: str, patch: HandoffPatch, checklist: Sequence[str]) -> HandoffOut:
    h = await load(session, handoff_id, for_update=True)
    if h.status not in EDITABLE:
        raise Conflict(f"handoff {h.id} is {h.status}; only draft or returned handoffs can be edited",
                       current_status=h.status)
    fields = patch.model_fields_set
    now = utcnow()
    if "crm_opportunity_id" in fields and patch.crm_opportunity_id != h.crm_opportunity_id:
        assert patch.crm_opportunity_id is not None
        await _ensure_opportunity_free(session, patch.crm_opportunity_id, own_id=h.id)
        h.crm_opportunity_id = patch.crm_opportunity_id
    if patch.account is not None:
        _patch_account(h, patch.account)
    for name in ("challenges", "goals", "risks"):
        if name in fields:
            setattr(h, name, _clean(getattr(patch, name)))
    for name in ("proposal", "demo_notes", "presales_owner", "postsales_owner", "no_commitments"):
        if name in fields:
            setattr(h, name, getattr(patch, name))
    if "stakeholders" in fields:
        h.stakeholders = [s.model_dump() for s in patch.stakeholders or []]
    existing = (await repo.commitments_for(session, [h.id]))[h.id]
    commitments = await _replace_commitments(session, h, existing, patch, now) if "commitments" in fields \
        else existing
    for c in commitments:
        c.account_external_id = h.account_external_id
    if h.no_commitments and commitments:
        raise Unprocessable("no_commitments is true but the handoff has commitments",
                            errors=[{"loc": ["body", "no_commitments"],
                                     "msg": "remove the commitments or set no_commitments to false"}])
    h.updated_at = now
    await _flush_unique(session, h.crm_opportunity_id)
    history = (await repo.transitions_for(session, [h.id]))[h.id]
    return to_out(h, commitments, history, checklist, now.date())


def _patch_account(h: Handoff, account: Any) -> None:
    merged = {f: getattr(h, col) for f, col in _ACCOUNT_COLUMNS.items()}
    for name in account.model_fields_set:
        value = getattr(account, name)
        merged[name] = str(value) if name == "arr" and value is not None else value
    start, renewal = merged["contract_start"], merged["renewal_date"]
    if start and renewal and renewal <= start:
        raise Unprocessable("account.renewal_date must be after account.contract_start",
                            errors=[{"loc": ["body", "account", "renewal_date"],
                                     "msg": "must be after contract_start"}])
    for name, col in _ACCOUNT_COLUMNS.items():
        setattr(h, col, merged[name].strip() if name == "name" else merged[name])


async def _replace_commitments(session: AsyncSession, h: Handoff, existing: list[Commitment], patch: HandoffPatch,
                               now: dt.datetime) -> list[Commitment]:
    by_id = {c.id: c for c in existing}
    items = patch.commitments or []
    unknown = [(i, item.id) for i, item in enumerate(items) if item.id is not None and item.id not in by_id]
    if unknown:
        raise Unprocessable(
            f"commitment {unknown[0][1]} is not part of handoff {h.id}",
            errors=[{"loc": ["body", "commitments", i, "id"], "msg": "no such commitment on this handoff"}
                    for i, _ in unknown])
    ids = [item.id for item in items if item.id]
    if len(ids) != len(set(ids)):
        raise Unprocessable("a commitment id appears twice in commitments",
                            errors=[{"loc": ["body", "commitments"], "msg": "duplicate commitment id"}])
    kept: list[Commitment] = []
    for position, item in enumerate(items):
        if item.id is None:
            c = _new_commitment(h, position, item.title, item.kind, item.due_date, item.description, item.owner, now)
            session.add(c)
        else:
            c = by_id[item.id]
            c.position, c.title, c.kind = position, item.title.strip(), item.kind
            c.due_date, c.description, c.owner, c.updated_at = item.due_date, item.description, item.owner, now
        kept.append(c)
    await repo.delete_commitments(session, [c.id for c in existing if c.id not in set(ids)])
    return kept


async def transition(session: AsyncSession, outbox: Outbox, handoff_id: str, verb: str, *, by: str | None,
                     reason: str | None, checklist: Sequence[str], fallback_actor: str) -> HandoffOut:
    sources, target, event_type = WORKFLOW[verb]
    h = await load(session, handoff_id, for_update=True)
    if h.status not in sources:
        raise Conflict(
            f"cannot {verb} handoff {h.id}: it is {h.status}; {verb} is allowed from {' or '.join(sources)}",
            current_status=h.status)
    commitments = (await repo.commitments_for(session, [h.id]))[h.id]
    if verb == "submit":
        _require_complete(h, evaluate(h, len(commitments), checklist))
    now = utcnow()
    actor = by or (h.presales_owner if verb == "submit" else h.postsales_owner) or fallback_actor
    previous = h.status
    h.status, h.updated_at = target, now
    if verb == "submit":
        h.submitted_at = now
    elif verb == "accept":
        h.accepted_at, h.accepted_by = now, actor
    else:
        h.returned_at, h.return_reason = now, reason
    session.add(HandoffTransition(id=new_id(), handoff_id=h.id, from_status=previous, to_status=target,
                                  actor=actor, reason=reason, at=now))
    await session.flush()
    await outbox.add(session, handoff_event(event_type, h, commitments, by=actor, reason=reason, at=now))
    history = (await repo.transitions_for(session, [h.id]))[h.id]
    return to_out(h, commitments, history, checklist, now.date())


def _require_complete(h: Handoff, completeness: Completeness) -> None:
    if completeness.missing:
        raise Unprocessable(
            f"handoff {h.id} is incomplete and cannot be submitted; missing: {', '.join(completeness.missing)}",
            errors=completeness.errors(), missing=completeness.missing,
        )
