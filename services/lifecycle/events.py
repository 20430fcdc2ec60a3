"""Emitting the service's events: each goes to the outbox and onto the account's timeline, in the
caller's transaction, so state, event and history commit (or roll back) together."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy.ext.asyncio import AsyncSession

from services.lifecycle.models import TimelineEntry, infra
from shared.db import utcnow
from shared.events import CloudEvent
from shared.events.outbox import Outbox

SOURCE = "/services/lifecycle"
outbox = Outbox(infra.outbox)


def jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """Decimals and dates as strings, times as RFC 3339: the wire form of the suite."""
    out: dict[str, Any] = to_jsonable_python(data)
    return out


async def emit(session: AsyncSession, *, type: str, account_id: str, data: dict[str, Any], at: dt.datetime,
               summary: str, actor: str | None = None) -> CloudEvent:
    """Publish ``postsales.<type>`` about ``account_id`` (via the outbox) and record it on the timeline."""
    payload = jsonable({"account_id": account_id, **data})
    event = CloudEvent.new(type=f"postsales.{type}", source=SOURCE, subject=account_id, data=payload, time=at)
    await outbox.add(session, event)
    record(session, account_id=account_id, type=event.type, summary=summary, data=payload, occurred_at=at,
           event_id=event.id, actor=actor)
    return event


def record(session: AsyncSession, *, account_id: str, type: str, summary: str, data: dict[str, Any],
           occurred_at: dt.datetime, event_id: str | None = None, actor: str | None = None) -> None:
    """Add a timeline entry (for events this service consumes, or emits via :func:`emit`)."""
    session.add(TimelineEntry(
        account_id=account_id, type=type, summary=summary[:500], data=jsonable(data), occurred_at=occurred_at,
        event_id=event_id, actor=actor, created_at=utcnow(),
    ))
