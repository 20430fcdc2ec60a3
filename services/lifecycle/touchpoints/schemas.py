"""Request and response models of touchpoints."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.types import DateTime

TouchpointKind = Literal["check_in", "training", "qbr", "ebr", "other"]


class TouchpointCreate(BaseModel):
    """A customer interaction: check-in, training, QBR, EBR or other."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "qbr", "notes": "Reviewed adoption; exec sponsor wants SSO by Q3", "at": "2026-04-10T14:00:00Z",
         "attendees": ["cfo@acme.example", "csm.jane@vendor.example"]}]})

    kind: TouchpointKind
    notes: str | None = Field(default=None, max_length=20_000)
    at: DateTime | None = Field(default=None, description="When it happened; defaults to now. At most "
                                "MAX_FUTURE_SKEW ahead (1 day) and MAX_EVENT_AGE back (3 years).")
    attendees: list[str] = Field(default_factory=list, max_length=100)
    actor: str | None = Field(default=None, max_length=200, description="Who logged it; defaults to the API key id.")


class TouchpointOut(BaseModel):
    """A logged touchpoint."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "0d2f…", "account_id": "acme-corp", "kind": "qbr", "notes": "Reviewed adoption",
        "attendees": ["cfo@acme.example"], "actor": "csm.jane@vendor.example", "at": "2026-04-10T14:00:00Z",
        "created_at": "2026-04-10T15:02:11Z"}]})

    id: str
    account_id: str
    kind: TouchpointKind
    notes: str | None
    attendees: list[str]
    actor: str | None
    at: dt.datetime
    created_at: dt.datetime
