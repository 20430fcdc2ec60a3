"""Event ingestion over HTTP and survey responses."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from services.metrics.dependencies import IngestScope, ProducerDep, SettingsDep
from services.metrics.ingest import service
from services.metrics.ingest.schemas import EVENT_EXAMPLE, MAX_EVENTS, IngestResult, SurveyIn, SurveyOut
from services.metrics.models import infra
from services.metrics.validation import Bounds
from shared.app import ContextDep, SessionDep
from shared.errors import problems
from shared.http import Idempotency, idempotency_dependency

router = APIRouter(prefix="/v1", tags=["ingest"])
IdempotencyDep = Annotated[Idempotency, idempotency_dependency(infra.idempotency_keys)]

# The body is read as bytes and split with msgspec (each item is validated, then published as
# posted); FastAPI does not parse it, so its schema is declared here for the OpenAPI document.
EVENTS_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    # Items are not constrained here: an invalid item is reported in `rejected`, the others still go.
    "schema": {"type": "array", "maxItems": MAX_EVENTS, "items": {"description": "A CloudEvent (JSON object)."},
               "description": f"Up to {MAX_EVENTS} CloudEvents (usage.*, postsales.survey.*, postsales.ticket.*)."},
    "examples": {"usage": {"value": [EVENT_EXAMPLE]}}}}}}


@router.post("/events", status_code=202, response_model=IngestResult, responses=problems(413, 503),
             openapi_extra=EVENTS_BODY)
async def post_events(request: Request, _: IngestScope, settings: SettingsDep, producer: ProducerDep) -> IngestResult:
    """Validate a batch of events and publish the valid ones; invalid ones are listed by index (422 if all are)."""
    items = service.parse_batch(await request.body())
    return await service.ingest(producer, settings.kafka_topic_prefix, items,
                                timeout=settings.ingest_publish_timeout, bounds=Bounds.of(settings))


@router.post("/surveys", status_code=202, response_model=SurveyOut, responses=problems())
async def post_survey(body: SurveyIn, _: IngestScope, session: SessionDep, ctx: ContextDep,
                      idem: IdempotencyDep, settings: SettingsDep) -> SurveyOut:
    """Record an NPS or CSAT response: it becomes a `postsales.survey.*` event on the feedback topic."""
    await idem.check(session)
    out = await service.post_survey(session, ctx.outbox, body, Bounds.of(settings))
    await idem.save(session, 202, out)
    return out
