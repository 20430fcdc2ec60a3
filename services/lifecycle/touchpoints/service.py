"""Logging touchpoints (emits `touchpoint.logged`)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from services.lifecycle.events import emit
from services.lifecycle.models import Account, Touchpoint
from services.lifecycle.touchpoints.schemas import TouchpointCreate
from shared.db import utcnow

_LABELS = {"check_in": "Check-in", "training": "Training", "qbr": "QBR", "ebr": "EBR", "other": "Touchpoint"}


async def log_touchpoint(session: AsyncSession, account: Account, body: TouchpointCreate, *, at: dt.datetime,
                         actor: str) -> Touchpoint:
    """Record a touchpoint that happened ``at`` (the caller checked it against the time bounds)."""
    tp = Touchpoint(id=str(uuid.uuid4()), account_id=account.id, kind=body.kind, notes=body.notes,
                    attendees=body.attendees, actor=actor, at=at, created_at=utcnow())
    session.add(tp)
    await session.flush()
    await emit(session, type="touchpoint.logged", account_id=account.id, at=at, actor=actor,
               summary=f"{_LABELS[body.kind]} logged" + (f": {body.notes[:200]}" if body.notes else ""),
               data={"touchpoint_id": tp.id, "kind": tp.kind, "at": at, "attendees": len(body.attendees)})
    return tp
