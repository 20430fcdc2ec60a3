"""Validate events posted over HTTP and queue them, through the outbox, for their topics."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.metrics.ingest.schemas import IngestResult, Rejection, SurveyIn, SurveyOut
from services.metrics.validation import check_ingestible
from shared.db import utcnow
from shared.events.envelope import CloudEvent, InvalidEvent
from shared.events.outbox import Outbox

SOURCE = "/services/metrics"


async def ingest(session: AsyncSession, outbox: Outbox, items: list[Any]) -> IngestResult:
    """Queue the valid events (one bulk insert into the outbox); report the others by index.

    The events keep their own ``source`` and ``id``: consumers count a (source, id) once, so a
    client retrying a request, or also publishing straight to Kafka, never double counts.
    """
    accepted: list[CloudEvent] = []
    rejected: list[Rejection] = []
    for index, item in enumerate(items):
        try:
            event = CloudEvent.parse_document(item)
            check_ingestible(event)
        except InvalidEvent as exc:
            rejected.append(Rejection(index=index, error=str(exc)))
            continue
        accepted.append(event)
    await outbox.add_many(session, accepted, validated=True)  # check_ingestible ran validate_event
    return IngestResult(accepted=len(accepted), rejected=rejected)


async def post_survey(session: AsyncSession, outbox: Outbox, body: SurveyIn) -> SurveyOut:
    at = body.at or utcnow()
    event = CloudEvent.new(type=f"postsales.survey.{body.kind}", source=SOURCE, subject=body.account_id, time=at,
                           data={"score": body.score, "respondent": body.respondent, "comment": body.comment})
    await outbox.add(session, event)
    return SurveyOut(event_id=event.id, account_id=body.account_id, kind=body.kind, score=body.score,
                     respondent=body.respondent, comment=body.comment, at=at)
