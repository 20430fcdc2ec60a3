"""The commitments ledger: status changes with history and events, delivery from lifecycle tasks,
and the overdue scan."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.handoff.commitments import repository as repo
from services.handoff.commitments.schemas import (
    CommitmentChangeOut,
    CommitmentDetail,
    CommitmentOut,
    CommitmentPatch,
)
from services.handoff.events import commitment_event, is_overdue
from services.handoff.models import Commitment, CommitmentChange, Handoff
from shared.db import utcnow
from shared.errors import Conflict, NotFound, Unprocessable
from shared.events.outbox import Outbox

log = logging.getLogger("postsales.handoff.commitments")

# Handoff statuses in which the ledger is live: the promises are post-sales' to deliver.
LIVE_HANDOFF_STATUSES = ("submitted", "accepted")


def commitment_out(c: Commitment, today: dt.date) -> CommitmentOut:
    return CommitmentOut(
        id=c.id, handoff_id=c.handoff_id, account_id=c.account_external_id, title=c.title, kind=c.kind,
        status=c.status, owner=c.owner, due_date=c.due_date,
        description=c.description, evidence=c.evidence, delivered_at=c.delivered_at,
        overdue=is_overdue(c, today), created_at=c.created_at, updated_at=c.updated_at,
    )


def change_out(ch: CommitmentChange) -> CommitmentChangeOut:
    return CommitmentChangeOut(id=ch.id, from_status=ch.from_status, to_status=ch.to_status, changes=ch.changes,
                               note=ch.note, actor=ch.actor, cause=ch.cause, cause_ref=ch.cause_ref, at=ch.at)


async def detail(session: AsyncSession, c: Commitment) -> CommitmentDetail:
    history = await repo.history(session, c.id)
    base = commitment_out(c, utcnow().date())
    return CommitmentDetail(**base.model_dump(), history=[change_out(h) for h in history])


async def load(session: AsyncSession, handoff_id: str, commitment_id: str, *, for_update: bool = False) -> Commitment:
    c = await repo.get(session, commitment_id, for_update=for_update)
    if c is None or c.handoff_id != handoff_id:
        raise NotFound(f"commitment {commitment_id} does not exist on handoff {handoff_id}")
    return c


def _record(c: Commitment, *, previous: str, changes: dict[str, Any], note: str | None, actor: str | None,
            cause: str, cause_ref: str | None, at: dt.datetime) -> CommitmentChange:
    return CommitmentChange(id=str(uuid.uuid4()), commitment_id=c.id, handoff_id=c.handoff_id, from_status=previous,
                            to_status=c.status, changes=changes, note=note, actor=actor, cause=cause,
                            cause_ref=cause_ref, at=at)


def _json(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.date) else value


async def update(session: AsyncSession, outbox: Outbox, handoff: Handoff, commitment_id: str,
                 patch: CommitmentPatch, actor: str | None) -> CommitmentDetail:
    if handoff.status not in LIVE_HANDOFF_STATUSES:
        raise Conflict(
            f"handoff {handoff.id} is {handoff.status}: commitments are tracked once it is submitted; "
            f"edit a {handoff.status} handoff's commitments with PATCH /v1/handoffs/{handoff.id}",
            current_status=handoff.status)
    c = await load(session, handoff.id, commitment_id, for_update=True)
    fields = patch.model_fields_set
    if "status" in fields and patch.status is None:
        raise Unprocessable("status cannot be null", errors=[{"loc": ["body", "status"], "msg": "cannot be null"}])
    if patch.status == "waived" and c.status != "waived" and not (patch.note or "").strip():
        raise Unprocessable("waiving a commitment needs a note saying why",
                            errors=[{"loc": ["body", "note"], "msg": "required when status is waived"}])
    now = utcnow()
    changes: dict[str, Any] = {}
    for name in ("status", "owner", "due_date", "evidence"):
        if name in fields and getattr(patch, name) != getattr(c, name):
            changes[name] = [_json(getattr(c, name)), _json(getattr(patch, name))]
    note = patch.note.strip() if patch.note and patch.note.strip() else None
    if not changes and note is None:
        return await detail(session, c)
    previous = c.status
    for name in changes:
        setattr(c, name, getattr(patch, name))
    if "status" in changes:
        c.delivered_at = now if c.status == "delivered" else None
    c.updated_at = now
    session.add(_record(c, previous=previous, changes=changes, note=note, actor=actor, cause="api",
                        cause_ref=None, at=now))
    await session.flush()
    if changes.keys() & {"status", "owner", "due_date"}:
        await outbox.add(session, commitment_event(c, previous_status=previous, today=now.date(), at=now,
                                                   cause="api", note=note))
    return await detail(session, c)


async def apply_task_event(session: AsyncSession, outbox: Outbox, *, event_type: str, commitment_id: str,
                           handoff_id: str | None, task_id: str, at: dt.datetime) -> bool:
    """Apply lifecycle's `task.completed` (-> delivered) or `task.overdue` (-> at_risk) to a commitment.

    Idempotent in effect: the change happens only if the commitment is not already in the target
    state (or past it), so the same fact under another event id changes nothing and emits nothing.
    """
    c = await repo.get(session, commitment_id, for_update=True)
    if c is None or (handoff_id is not None and c.handoff_id != handoff_id):
        log.warning("%s for unknown commitment %s (handoff %s); ignored", event_type, commitment_id, handoff_id)
        return False
    now = utcnow()
    previous = c.status
    if event_type == "postsales.task.completed":
        if c.status in ("delivered", "waived"):
            return False
        c.status, c.delivered_at, cause = "delivered", at, "task.completed"
    else:
        if c.status not in ("open", "in_progress"):
            return False
        c.status, cause = "at_risk", "task.overdue"
        c.overdue_flagged_due = c.due_date
    c.updated_at = now
    session.add(_record(c, previous=previous, changes={"status": [previous, c.status]}, note=None,
                        actor="lifecycle", cause=cause, cause_ref=f"task {task_id}", at=now))
    await session.flush()
    await outbox.add(session, commitment_event(c, previous_status=previous, today=now.date(), at=now, cause=cause))
    return True


async def scan_overdue(session_factory: async_sessionmaker[AsyncSession], outbox: Outbox, *, batch_size: int,
                       today: dt.date | None = None) -> int:
    """Flag every overdue, not yet flagged commitment of a live handoff as at_risk, emitting one
    `commitment.updated` each. Safe with several replicas: rows are claimed with SKIP LOCKED on
    PostgreSQL and each is changed by a conditional UPDATE that only one transaction can win."""
    flagged = 0
    while True:
        async with session_factory() as session, session.begin():
            now = utcnow()
            on = today or now.date()
            ids = await repo.claim_overdue(session, today=on, live_statuses=LIVE_HANDOFF_STATUSES, limit=batch_size)
            won = 0
            for cid in ids:
                c = await repo.get(session, cid)
                assert c is not None
                previous = c.status
                if not await repo.flag_at_risk(session, cid, today=on, now=now):
                    continue
                await session.refresh(c)
                session.add(_record(c, previous=previous, changes={"status": [previous, "at_risk"]},
                                    note=f"past its due date {c.due_date}", actor="overdue-scan",
                                    cause="overdue_scan", cause_ref=None, at=now))
                await outbox.add(session, commitment_event(c, previous_status=previous, today=on, at=now,
                                                           cause="overdue_scan"))
                won += 1
            flagged += won
        if len(ids) < batch_size or won == 0:
            return flagged
