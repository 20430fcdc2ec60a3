"""I/O models of churn risk."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.types import Date

Band = Literal["low", "medium", "high"]


class Driver(BaseModel):
    """A feature's value for the account and its contribution to the log-odds of churn (positive raises it)."""

    name: str = Field(examples=["usage_trend_30d"])
    value: float | None = Field(examples=[-0.62], description="Null when unknown (the model used the average).")
    contribution: float = Field(examples=[0.83])


class RiskOut(BaseModel):
    """An account's churn risk within `horizon_days`, with the drivers that explain it."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "account_id": "acme-corp", "probability": 0.41, "band": "medium", "horizon_days": 90,
        "drivers": [{"name": "usage_trend_30d", "value": -0.62, "contribution": 0.83},
                    {"name": "nps_last", "value": 4, "contribution": 0.51}],
        "model_version": 3, "as_of": "2026-12-01T06:00:00Z", "reason": None}]})

    account_id: str
    probability: float | None = Field(ge=0, le=1)
    band: Band | None
    horizon_days: int | None
    drivers: list[Driver] | None = Field(description="Ordered by contribution to risk, largest first.")
    model_version: int | None
    as_of: dt.datetime | None
    reason: str | None = Field(default=None, description="Why there is no probability (no model yet, churned).")


class RiskItem(BaseModel):
    """A row of the at-risk worklist."""

    account_id: str
    probability: float
    band: Band
    arr: str | None = Field(description="ARR as a decimal string (the account's currency).")
    arr_at_risk: float = Field(description="probability x ARR: the order of the list.")
    renewal_date: dt.date | None
    owner: str | None
    segment: str | None
    top_driver: str | None = Field(description="The feature pushing the risk up the most.")
    as_of: dt.datetime


class RiskList(BaseModel):
    """The at-risk worklist, by ARR at risk (probability x ARR), largest first."""

    items: list[RiskItem]
    next_cursor: str | None = None
    reason: str | None = Field(default=None, description="Set when no model has been trained yet.")


class TrainIn(BaseModel):
    """Training options."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"horizon_days": 90},
                                                                              {"cutoff": "2026-06-01"}]})

    horizon_days: int = Field(default=90, ge=7, le=730, description="Predict churn within this many days.")
    cutoff: Date | None = Field(default=None, description="Backtest split date; default leaves ~1/3 for the test.")


class Metrics(BaseModel):
    auc: float | None
    brier: float | None
    precision_at_top_decile: float | None


class Baseline(Metrics):
    name: str = "health score"


class Backtest(Metrics):
    """Trained on snapshots dated <= cutoff - horizon, tested on snapshots dated cutoff .. today - horizon."""

    model_config = ConfigDict(extra="allow")

    cutoff: dt.date
    n_train: int
    n_test: int
    positives_test: int
    baseline: Baseline


class RiskModelOut(BaseModel):
    """A trained churn-risk model: its features, coefficients (on standardised features) and backtest."""

    version: int
    trained_at: dt.datetime
    trained_by: str | None
    horizon_days: int
    features: list[str]
    coefficients: dict[str, float]
    intercept: float
    backtest: Backtest


class CurrentModelOut(BaseModel):
    """The current model, or a reason when there is none yet."""

    model_config = ConfigDict(extra="allow")

    version: int | None = None
    reason: str | None = None
    feature_descriptions: dict[str, str] = Field(default_factory=dict)


class RiskModelList(BaseModel):
    items: list[RiskModelOut]


class ScoreOut(BaseModel):
    scored: int
    model_version: int | None
    reason: str | None = None


