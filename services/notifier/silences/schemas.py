"""Request and response models of silences."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.types import Bool, DateTime


class Matcher(BaseModel):
    """Matches an alert label: `alertname`, `severity`, or a group_by label such as `subject`."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, examples=["subject"])
    value: str = Field(max_length=500, examples=["acme-corp"])
    is_regex: Bool = Field(default=False, description="`value` is a full-match regular expression.")
    is_equal: Bool = Field(default=True, description="false: the label must NOT match.")


class SilenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "matchers": [{"name": "subject", "value": "acme-corp"}, {"name": "alertname", "value": "nps-detractor"}],
        "created_by": "csm@example.com", "comment": "Known issue, call scheduled",
        "ends_at": "2026-11-30T00:00:00Z"}]})
    matchers: list[Matcher] = Field(min_length=1, max_length=20)
    created_by: str = Field(min_length=1, max_length=200)
    comment: str = Field(min_length=1, max_length=2000)
    starts_at: DateTime | None = Field(default=None, description="Default: now.")
    ends_at: DateTime


class SilenceOut(BaseModel):
    id: str
    matchers: list[Matcher]
    created_by: str
    comment: str
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: Literal["pending", "active", "expired"]
    created_at: dt.datetime
