"""Feedback: survey responses (NPS, CSAT) and support tickets, from the feedback topic."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.feedback import repository as repo
from services.metrics.health import repository as health_repo
from services.metrics.models import Ticket
from services.metrics.validation import DEFAULT_BOUNDS, Bounds, check_feedback, survey_kind
from shared.db import utcnow
from shared.events.consumer import PermanentError
from shared.events.envelope import CloudEvent, InvalidEvent


def _earliest(current: dt.datetime | None, candidate: dt.datetime) -> dt.datetime:
    return candidate if current is None or candidate < current else current


async def apply_feedback(session: AsyncSession, event: CloudEvent, bounds: Bounds = DEFAULT_BOUNDS) -> None:
    try:
        check_feedback(event, bounds)
    except InvalidEvent as exc:
        raise PermanentError(str(exc)) from None
    at = event.time.astimezone(dt.UTC)
    data = event.data
    if event.type.startswith("postsales.survey."):
        await repo.add_survey(session, source=event.source, event_id=event.id, account_id=event.subject,
                              kind=survey_kind(event.type), score=int(data["score"]),
                              respondent=_short(data.get("respondent"), 320), comment=_short(data.get("comment"),
                                                                                             10_000), at=at)
    else:
        await apply_ticket(session, event.subject, str(data["ticket_id"]), event.type.rsplit(".", 1)[-1], at)
    await health_repo.mark_dirty(session, [event.subject])


def _short(value: object, limit: int) -> str | None:
    return None if value is None else str(value)[:limit]


async def apply_ticket(session: AsyncSession, account_id: str, ticket_id: str, what: str, at: dt.datetime) -> None:
    """Fold a ticket event in; order-independent (a response may arrive before the opening)."""
    ticket = await repo.get_ticket(session, ticket_id)
    if ticket is None:
        ticket = Ticket(ticket_id=ticket_id, account_id=account_id, updated_at=utcnow())
        session.add(ticket)
    if what == "opened":
        ticket.opened_at = _earliest(ticket.opened_at, at)
    elif what == "responded":
        ticket.first_response_at = _earliest(ticket.first_response_at, at)
    elif what == "resolved":
        ticket.resolved_at = at if ticket.resolved_at is None or at > ticket.resolved_at else ticket.resolved_at
    ticket.updated_at = utcnow()
    await session.flush()
