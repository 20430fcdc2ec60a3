"""I/O models of usage rollups and recompute."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.types import BoundedDate


class UsageDay(BaseModel):
    """One UTC day of an account's usage (days without events are omitted)."""

    date: dt.date = Field(examples=["2026-11-20"])
    events: float = Field(description="Sum of the events' `quantity`.", examples=[42])
    event_count: int = Field(description="Number of distinct events.", examples=[40])
    active_users: int = Field(description="Distinct `user_id`s that day.", examples=[7])
    by_type: dict[str, float] = Field(description="Sum of `quantity` per event type.",
                                      examples=[{"usage.login": 12, "usage.feature_used": 30}])
    features: dict[str, float] = Field(description="Sum of `quantity` per `data.feature`.",
                                       examples=[{"reports": 30}])


class UsageOut(BaseModel):
    account_id: str
    from_date: dt.date = Field(serialization_alias="from")
    to_date: dt.date = Field(serialization_alias="to")
    items: list[UsageDay]


class RecomputeIn(BaseModel):
    """The period (inclusive UTC dates) to rebuild, optionally for one account only."""

    model_config = ConfigDict(populate_by_name=True, json_schema_extra={
        "examples": [{"from": "2026-11-01", "to": "2026-11-30"}]})

    from_date: BoundedDate = Field(alias="from")
    to_date: BoundedDate = Field(alias="to")
    account_id: str | None = Field(default=None, min_length=1, max_length=200)

    @model_validator(mode="after")
    def _order(self) -> RecomputeIn:
        if self.from_date > self.to_date:
            raise ValueError("'from' must not be after 'to'")
        if (self.to_date - self.from_date).days > 3660:
            raise ValueError("the period may span at most 10 years")
        return self


class RecomputeOut(BaseModel):
    from_date: dt.date = Field(serialization_alias="from")
    to_date: dt.date = Field(serialization_alias="to")
    raw_events: int = Field(description="Raw events in the period the rollups were rebuilt from.")
    rollup_days: int = Field(description="(account, day) rollup rows after the rebuild.")
    accounts: int = Field(description="Accounts whose rollups were rebuilt and health re-scored.")
