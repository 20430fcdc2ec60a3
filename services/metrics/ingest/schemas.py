"""I/O models of event and survey ingestion."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.metrics.validation import SCORE_RANGES
from shared.types import DateTime, Int

MAX_EVENTS = 1000


class Rejection(BaseModel):
    index: int = Field(description="Position of the event in the request array.", examples=[3])
    error: str = Field(examples=["data.user_id: Field required"])


class IngestResult(BaseModel):
    accepted: int = Field(description="Events validated and acknowledged by the broker on their topic.", examples=[999])
    rejected: list[Rejection]


EVENT_EXAMPLE = {"specversion": "1.0", "id": "4f1c0a2e-usage-1", "source": "/product/web", "type": "usage.login",
                 "time": "2026-11-20T09:30:00Z", "subject": "acme-corp", "data": {"user_id": "u-17"}}


class SurveyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "account_id": "acme-corp", "kind": "nps", "score": 9, "respondent": "cto@acme.example",
        "comment": "Great onboarding", "at": "2026-11-20T10:00:00Z"}]})

    account_id: str = Field(min_length=1, max_length=200)
    kind: Literal["nps", "csat"]
    score: Int = Field(description="NPS 0-10, CSAT 1-5.")
    respondent: str | None = Field(default=None, max_length=320)
    comment: str | None = Field(default=None, max_length=10_000)
    at: DateTime | None = Field(default=None, description="When the response was given; default now.")

    @model_validator(mode="after")
    def _score_range(self) -> SurveyIn:
        low, high = SCORE_RANGES[self.kind]
        if not low <= self.score <= high:
            raise ValueError(f"a {self.kind} score must be from {low} to {high}")
        return self


class SurveyOut(BaseModel):
    event_id: str = Field(description="Id of the `postsales.survey.*` event carrying the response.")
    account_id: str
    kind: Literal["nps", "csat"]
    score: int
    respondent: str | None
    comment: str | None
    at: dt.datetime
