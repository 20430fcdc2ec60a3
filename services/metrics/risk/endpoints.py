"""Churn risk: an account's risk and drivers, the at-risk worklist, the model and its training."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.metrics.dependencies import AccountId, AdminScope, ReadScope, SettingsDep
from services.metrics.risk import repository as repo
from services.metrics.risk import service
from services.metrics.risk.features import DESCRIPTIONS
from services.metrics.risk.schemas import (
    Band,
    CurrentModelOut,
    RiskItem,
    RiskList,
    RiskModelList,
    RiskModelOut,
    RiskOut,
    ScoreOut,
    TrainIn,
)
from services.metrics.settings import Settings
from shared.app import ContextDep, SessionDep
from shared.errors import NotFound, problems
from shared.http import Cursor, Limit

router = APIRouter(prefix="/v1", tags=["risk"])


def config_of(settings: Settings) -> service.RiskConfig:
    return service.RiskConfig(bands={"high": settings.risk_band_high, "medium": settings.risk_band_medium},
                              snapshot_days=settings.risk_snapshot_days)


@router.get("/accounts/{account_id}/risk", response_model=RiskOut, responses=problems(404))
async def get_risk(account_id: AccountId, session: SessionDep, settings: SettingsDep, _: ReadScope) -> dict[str, Any]:
    """The account's churn probability within the horizon, its band and the drivers behind it."""
    out = await service.risk_of(session, account_id, config_of(settings))
    if out is None:
        raise NotFound(f"nothing is known about account {account_id}")
    return out


@router.get("/risk", response_model=RiskList, responses=problems())
async def list_risk(session: SessionDep, _: ReadScope, band: Band | None = None,
                    owner: Annotated[str | None, Query(max_length=320)] = None,
                    segment: Annotated[str | None, Query(max_length=100)] = None,
                    limit: Limit = 50, cursor: Cursor = None) -> RiskList:
    """The at-risk worklist: active accounts by ARR at risk (probability x ARR), largest first."""
    if await repo.latest_model(session) is None:
        return RiskList(items=[], next_cursor=None, reason=service.NO_MODEL)
    rows, next_cursor = await repo.worklist(session, band=band, owner=owner, segment=segment, cursor=cursor,
                                            limit=limit)
    return RiskList(items=[RiskItem(account_id=r.account_id, probability=r.probability, band=r.band,
                                    arr=r.arr, arr_at_risk=r.arr_at_risk, renewal_date=r.renewal_date,
                                    owner=r.owner, segment=r.segment, top_driver=service.top_driver(r),
                                    as_of=r.as_of) for r in rows], next_cursor=next_cursor)


@router.get("/risk-model", response_model=CurrentModelOut, responses=problems())
async def get_risk_model(session: SessionDep, _: ReadScope) -> dict[str, Any]:
    """The current churn-risk model with its backtest, or why there is none."""
    m = await repo.latest_model(session)
    if m is None:
        return {"version": None, "reason": service.NO_MODEL, "feature_descriptions": DESCRIPTIONS}
    return {**service.model_out(m), "feature_descriptions": DESCRIPTIONS}


@router.get("/risk-model/versions", response_model=RiskModelList, responses=problems())
async def list_risk_models(session: SessionDep, _: ReadScope) -> dict[str, Any]:
    """Every trained version, newest first."""
    return {"items": [service.model_out(m) for m in await repo.model_versions(session)]}


@router.post("/risk-model/train", status_code=201, response_model=RiskModelOut, responses=problems(422))
async def train_risk_model(session: SessionDep, ctx: ContextDep, settings: SettingsDep, principal: AdminScope,
                           body: TrainIn | None = None) -> dict[str, Any]:
    """Train a new version with a time-split backtest against the health score, then score every account."""
    body = body or TrainIn()
    out = await service.train(session, ctx.outbox, horizon=body.horizon_days, cutoff=body.cutoff,
                              by=principal.key_id, config=config_of(settings))
    return out


@router.post("/risk-model/score", response_model=ScoreOut, responses=problems())
async def score_now(session: SessionDep, ctx: ContextDep, settings: SettingsDep, _: AdminScope) -> ScoreOut:
    """Score every active account now with the current model (it also runs daily)."""
    m = await repo.latest_model(session)
    if m is None:
        return ScoreOut(scored=0, model_version=None, reason=service.NO_MODEL)
    n = await service.score_all(session, ctx.outbox, model=m, config=config_of(settings))
    return ScoreOut(scored=n, model_version=m.version)
