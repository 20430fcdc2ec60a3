"""I/O models of health scores and the health model."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.metrics.health.scoring import DEFAULT_THRESHOLDS, Thresholds
from shared.types import Number


class Weights(BaseModel):
    """Relative weight of each component (any non-negative numbers, not all zero)."""

    model_config = ConfigDict(extra="forbid")

    usage: Number = Field(ge=0, le=1000)
    engagement: Number = Field(ge=0, le=1000)
    sentiment: Number = Field(ge=0, le=1000)
    support: Number = Field(ge=0, le=1000)
    commitments: Number = Field(ge=0, le=1000)
    renewal_proximity: Number = Field(ge=0, le=1000)

    @model_validator(mode="after")
    def _some_weight(self) -> Weights:
        if sum(self.model_dump().values()) <= 0:
            raise ValueError("at least one weight must be positive")
        return self


class Bands(BaseModel):
    """Lower bounds of the bands: score >= green is green, >= yellow is yellow, else red."""

    model_config = ConfigDict(extra="forbid")

    green: Number = Field(gt=0, le=100)
    yellow: Number = Field(gt=0, le=100)

    @model_validator(mode="after")
    def _ordered(self) -> Bands:
        if self.yellow >= self.green:
            raise ValueError("bands.yellow must be below bands.green")
        return self


class HealthModelIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "weights": {"usage": 30, "engagement": 15, "sentiment": 20, "support": 15, "commitments": 10,
                    "renewal_proximity": 10},
        "bands": {"green": 70, "yellow": 40}, "thresholds": {"slow_ticket_hours": 8, "touchpoint_stale_days": 60}}]})

    weights: Weights
    bands: Bands
    thresholds: Thresholds = Field(default=DEFAULT_THRESHOLDS,
                                   description="Omitted fields (or the whole object) take the defaults.")


class ComponentInfo(BaseModel):
    name: str
    description: str


class HealthModelOut(BaseModel):
    version: int = Field(description="0 is the built-in default; each PUT adds a version.", examples=[2])
    weights: dict[str, float]
    bands: dict[str, float]
    thresholds: Thresholds
    created_at: dt.datetime | None
    created_by: str | None
    components: list[ComponentInfo]


class HealthModelList(BaseModel):
    items: list[HealthModelOut]


class ComponentOut(BaseModel):
    name: str = Field(examples=["usage"])
    status: Literal["known", "unknown"] = Field(
        description="unknown: no data; counted at `assumed_value` (the lower of the model's neutral value and the "
                    "weighted mean of the known components)")
    value: float | None = Field(description="0-100, null when unknown", examples=[72.5])
    assumed_value: float | None = Field(description="What an unknown component is counted at; null when known.",
                                        examples=[None])
    weight: float = Field(description="Share of the model's total weight (configured weight / their sum).",
                          examples=[0.3])
    configured_weight: float = Field(examples=[30])
    contribution: float = Field(description="Points this component adds to the score (weight x value, or x "
                                            "assumed_value when unknown); they add up to the score.",
                                examples=[21.75])
    inputs: dict[str, Any]
    explanation: str


class Reason(BaseModel):
    name: str
    previous_contribution: float | None
    contribution: float | None
    delta: float


class Change(BaseModel):
    previous_score: float | None
    previous_band: str | None
    previous_computed_at: dt.datetime | None
    delta: float | None
    reasons: list[Reason] = Field(description="Components whose contribution moved, largest move first.")


class HealthOut(BaseModel):
    account_id: str
    score: float | None = Field(description="0-100; null when no component has data", examples=[74.2])
    band: Literal["green", "yellow", "red"] | None = Field(
        description="null while no component has data or `coverage` is below METRICS_HEALTH_MIN_COVERAGE")
    band_reason: str | None = Field(description="Why `band` is null; null when there is a band.",
                                    examples=[None])
    coverage: float = Field(description="Share of the configured weight resting on real data (0-1).",
                            examples=[0.85])
    components: list[ComponentOut]
    computed_at: dt.datetime
    as_of: dt.datetime | None = Field(description="Time of the newest input the score saw.")
    model_version: int
    change: Change | None = Field(description="Since the previous (different) score; null for a first score.")
