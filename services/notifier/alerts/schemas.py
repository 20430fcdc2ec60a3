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
    acknowledged_note: str | None = Field(description="The `note` given when acknowledged.")
    resolved_at: dt.datetime | None
    resolved_by: str | None
    resolution: str | None = Field(
        description="The `note` given when resolved, or why it resolved by itself (`resolved by <event type> ...`).")
    created_at: dt.datetime
    updated_at: dt.datetime


class _NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str | None = Field(default=None, max_length=200, examples=["csm@example.com"],
                           description="Who did it; default: the API key's id.")
    note: str | None = Field(default=None, max_length=2000, examples=["called the customer"],
                             description="Recorded on the alert.")


class AckIn(_NoteIn):
    comment: str | None = Field(default=None, max_length=2000, description="Deprecated: the old name of `note`.")

    def text(self) -> str | None:
        return self.note if self.note is not None else self.comment


class ResolveIn(_NoteIn):
    reason: str | None = Field(default=None, max_length=2000, description="Deprecated: the old name of `note`.")

    def text(self) -> str | None:
        return self.note if self.note is not None else self.reason
