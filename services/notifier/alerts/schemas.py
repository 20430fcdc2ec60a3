"""Request and response models of alerts."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["firing", "acknowledged", "resolved"]


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    fingerprint: str
    rule_id: str
    rule_name: str
    severity: str
    status: Status
    labels: dict[str, Any]
    subject: str = Field(description="The account id.")
    summary: str
    event_count: int = Field(description="Matching events folded into this alert.")
    last_event: dict[str, Any]
    starts_at: dt.datetime
    last_event_at: dt.datetime
    last_notified_at: dt.datetime | None
    notify_count: int
    suppressed_by: str | None = Field(description="`silence:<id>` or `inhibited:<alert id>` while muted.")
    escalated_at: dt.datetime | None
    acknowledged_at: dt.datetime | None
    acknowledged_by: str | None
    resolved_at: dt.datetime | None
    resolved_by: str | None
    resolution: str | None
    created_at: dt.datetime
    updated_at: dt.datetime


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str | None = Field(default=None, max_length=200, examples=["csm@example.com"])
    comment: str | None = Field(default=None, max_length=2000)


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str | None = Field(default=None, max_length=200, examples=["csm@example.com"])
    reason: str | None = Field(default=None, max_length=2000, examples=["called the customer"])
