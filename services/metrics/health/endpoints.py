"""Explainable health scores and the configurable health model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from services.metrics.dependencies import AccountId, AdminScope, ReadScope, SettingsDep
from services.metrics.health import repository as repo
from services.metrics.health import service
from services.metrics.health.schemas import (
    Change,
    HealthModelIn,
    HealthModelList,
    HealthModelOut,
    HealthOut,
    Reason,
)
from services.metrics.models import HealthScore
from shared.app import SessionDep
from shared.db import utcnow
from shared.errors import NotFound, problems

router = APIRouter(prefix="/v1", tags=["health"])


def _change(row: HealthScore) -> Change | None:
    if row.previous_computed_at is None:
        return None
    before = {c["name"]: c for c in row.previous_components or []}
    reasons = []
    for c in row.components:
        old_c = before[c["name"]]["contribution"] if c["name"] in before else None
        new_c = c["contribution"]
        delta = round(new_c - (old_c or 0.0), 2)
        if delta or old_c is None or before[c["name"]].get("status") != c["status"]:
            reasons.append(Reason(name=c["name"], previous_contribution=old_c, contribution=new_c, delta=delta))
    reasons.sort(key=lambda r: abs(r.delta), reverse=True)
    delta_score = None if row.score is None or row.previous_score is None else round(row.score - row.previous_score, 1)
    return Change(previous_score=row.previous_score, previous_band=row.previous_band,
                  previous_computed_at=row.previous_computed_at, delta=delta_score, reasons=reasons)


def _out(row: HealthScore) -> HealthOut:
    return HealthOut.model_validate({
        "account_id": row.account_id, "score": row.score, "band": row.band, "band_reason": row.band_reason,
        "coverage": row.coverage,
        "components": row.components, "computed_at": row.computed_at, "as_of": row.as_of,
        "model_version": row.model_version, "change": _change(row)})


@router.get("/accounts/{account_id}/health", response_model=HealthOut, responses=problems(404))
async def get_health(account_id: AccountId, session: SessionDep, settings: SettingsDep, _: ReadScope) -> HealthOut:
    """The account's health score, each component explained, and what changed since the previous score."""
    row = await repo.get_score(session, account_id)
    if row is not None:
        return _out(row)
    # Not scored yet (the scorer runs shortly after inputs arrive): evaluate now, without storing.
    now = utcnow()
    scored, version = await service.evaluate(session, [account_id], now, service.Policy.of(settings))
    if account_id not in scored:
        raise NotFound(f"nothing is known about account {account_id}")
    result, inputs = scored[account_id]
    return _out(HealthScore(account_id=account_id, score=result.score, band=result.band,
                            band_reason=result.band_reason, coverage=result.coverage,
                            components=result.components, model_version=version, computed_at=now,
                            as_of=inputs.as_of))


@router.get("/health-model", response_model=HealthModelOut, responses=problems())
async def get_health_model(session: SessionDep, _: ReadScope) -> dict[str, Any]:
    """The current health model: weights, bands, thresholds, version and what each component measures."""
    return await service.get_model(session)


@router.get("/health-model/versions", response_model=HealthModelList, responses=problems())
async def list_health_models(session: SessionDep, _: ReadScope) -> dict[str, Any]:
    """Every version of the health model, newest first (version 0 is the built-in default)."""
    return {"items": await service.list_models(session)}


@router.put("/health-model", response_model=HealthModelOut, responses=problems())
async def put_health_model(body: HealthModelIn, session: SessionDep, principal: AdminScope) -> dict[str, Any]:
    """Replace weights, bands and thresholds: stores a new version and queues every account for re-scoring."""
    return await service.put_model(session, body, principal.key_id)
