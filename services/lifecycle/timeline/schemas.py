"""Response model of the account timeline."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TimelineEntryOut(BaseModel):
    """Something that happened to the account: an event this service emitted or consumed."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": 42, "type": "postsales.task.completed", "summary": "Task done: Salesforce integration",
        "actor": "csm.jane@vendor.example", "event_id": "0b6a1f3e-…", "occurred_at": "2026-03-01T10:00:00Z",
        "data": {"account_id": "acme-corp", "task_id": "8c1d…", "commitment_id": "c-42"}}]})

    id: int
    type: str = Field(description="The CloudEvents type (postsales.*).")
    summary: str
    actor: str | None
    event_id: str | None
    occurred_at: dt.datetime
    data: dict[str, Any]
