"""Event ingestion over HTTP and survey responses."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from services.metrics.dependencies import IngestScope
from services.metrics.ingest import service
from services.metrics.ingest.schemas import EVENT_EXAMPLE, MAX_EVENTS, IngestResult, SurveyIn, SurveyOut
from services.metrics.models import infra
from shared.app import ContextDep, SessionDep
from shared.errors import Unprocessable, problems
from shared.http import Idempotency, idempotency_dependency

router = APIRouter(prefix="/v1", tags=["ingest"])
IdempotencyDep = Annotated[Idempotency, idempotency_dependency(infra.idempotency_keys)]

EventsBody = Annotated[list[Any], Body(description=f"Up to {MAX_EVENTS} CloudEvents (usage.*, "
                                       "postsales.survey.*, postsales.ticket.*).", examples=[[EVENT_EXAMPLE]])]


@router.post("/events", status_code=202, response_model=IngestResult, responses=problems(413))
async def post_events(events: EventsBody, session: SessionDep, ctx: ContextDep, _: IngestScope) -> IngestResult:
    """Validate a batch of events and publish the valid ones to their topic; invalid ones are listed by index."""
    if len(events) > MAX_EVENTS:
        raise Unprocessable(f"at most {MAX_EVENTS} events per request (got {len(events)})",
                            errors=[{"loc": ["body"], "msg": f"more than {MAX_EVENTS} items"}])
    return await service.ingest(session, ctx.outbox, events)


@router.post("/surveys", status_code=202, response_model=SurveyOut, responses=problems())
async def post_survey(body: SurveyIn, _: IngestScope, session: SessionDep, ctx: ContextDep,
                      idem: IdempotencyDep) -> SurveyOut:
    """Record an NPS or CSAT response: it becomes a `postsales.survey.*` event on the feedback topic."""
    await idem.check(session)
    out = await service.post_survey(session, ctx.outbox, body)
    await idem.save(session, 202, out)
    return out
