"""Response models of deliveries."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    number: int
    outcome: Literal["sending", "success", "failure", "abandoned"]
    status_code: int | None
    error: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None


class DeliveryOut(BaseModel):
    id: str = Field(description="Also the `webhook-id` header: the same on every retry.")
    alert_id: str
    channel_id: str
    channel_kind: str
    reason: Literal["firing", "repeat", "escalation", "resolved"]
    status: Literal["pending", "sending", "delivered", "dead"]
    attempts: int
    next_attempt_at: dt.datetime | None
    last_error: str | None
    delivered_at: dt.datetime | None
    created_at: dt.datetime
    attempt_log: list[AttemptOut]
