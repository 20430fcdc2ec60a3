"""HTTP API of alerts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query

from services.notifier.alerts import service
from services.notifier.alerts.schemas import AckIn, AlertOut, ResolveIn, Status
from services.notifier.dependencies import AlertDep, EngineDep, ReadScope, WriteScope
from shared.app import SessionDep
from shared.auth import actor_of
from shared.errors import problems
from shared.http import Cursor, Limit, Page

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


@router.get("", response_model=Page[AlertOut])
async def list_alerts(
    session: SessionDep, _: ReadScope, status: Status | None = None,
    subject: Annotated[str | None, Query(max_length=200, description="Only this account's alerts.")] = None,
    rule_id: Annotated[str | None, Query(max_length=36)] = None,
    limit: Limit = 50, cursor: Cursor = None,
) -> Page[AlertOut]:
    """List alerts, newest first, by status, account or rule."""
    return await service.list_page(session, status=status, subject=subject, rule_id=rule_id, cursor=cursor,
                                   limit=limit)


@router.get("/{alert_id}", response_model=AlertOut, responses=problems(404))
async def get_alert(alert: AlertDep, _: ReadScope) -> AlertOut:
    """Read one alert."""
    return AlertOut.model_validate(alert)


@router.post("/{alert_id}/ack", response_model=AlertOut, responses=problems(404, 409))
async def acknowledge_alert(alert: AlertDep, session: SessionDep, principal: WriteScope,
                            body: Annotated[AckIn | None, Body()] = None) -> AlertOut:
    """Acknowledge a firing alert, with an optional note: it stops repeating and escalating (409 unless firing)."""
    body = body or AckIn()
    await service.acknowledge(session, alert, actor_of(principal, body.by), body.text())
    return AlertOut.model_validate(alert)


@router.post("/{alert_id}/resolve", response_model=AlertOut, responses=problems(404, 409))
async def resolve_alert(alert: AlertDep, session: SessionDep, engine: EngineDep, principal: WriteScope,
                        body: Annotated[ResolveIn | None, Body()] = None) -> AlertOut:
    """Resolve a firing or acknowledged alert, with an optional note (409 if resolved); emits `alert.resolved`."""
    body = body or ResolveIn()
    await service.resolve(session, engine, alert, by=actor_of(principal, body.by), reason=body.text())
    return AlertOut.model_validate(alert)
