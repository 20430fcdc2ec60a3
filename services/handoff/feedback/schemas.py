"""Request and response models of post-sales feedback to presales."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FeedbackCategory = Literal["actual_need", "missing_context", "wrong_promise", "praise", "other"]

_EXAMPLE: dict[str, Any] = {
    "author": "csm.kato@example.com",
    "category": "actual_need",
    "body": "They needed audit logs for their SOC 2 audit far more than the Salesforce integration.",
}


class FeedbackIn(BaseModel):
    """A note from post-sales back to presales: what the customer actually needed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    author: str = Field(min_length=1, max_length=200, pattern=r"\S")
    category: FeedbackCategory = "other"
    body: str = Field(min_length=1, max_length=20_000, pattern=r"\S")


class FeedbackOut(BaseModel):
    """A feedback note with the handoff it is about."""

    model_config = ConfigDict(json_schema_extra={"examples": [_EXAMPLE | {
        "id": "9f8e7d6c-5b4a-4392-8180-7f6e5d4c3b2a", "handoff_id": "7d5c1b8e-3f4a-4a55-8f7e-2b1c9d0e6f12",
        "account_id": "acme-corp", "crm_opportunity_id": "OPP-2026-0042", "presales_owner": "ae.sato@example.com",
        "created_at": "2027-01-10T09:00:00Z"}]})

    id: str
    handoff_id: str
    account_id: str
    crm_opportunity_id: str
    presales_owner: str | None
    author: str
    category: FeedbackCategory
    body: str
    created_at: dt.datetime
