"""I/O models of KPIs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, Field


class Kpi(BaseModel):
    """A KPI with the numbers it is computed from, so a reader can check it."""

    value: float | None = Field(description="null when the denominator is 0", examples=[42.5])
    numerator: float | None = Field(description="null for medians (see `samples`)", examples=[17])
    denominator: float = Field(examples=[40])
    unit: str = Field(examples=["percent"])
    details: dict[str, Any] = Field(default_factory=dict, description="Further inputs (counts, means, samples).")


class KpisOut(BaseModel):
    from_date: dt.date = Field(serialization_alias="from")
    to_date: dt.date = Field(serialization_alias="to")
    segment: str | None
    owner: str | None
    nps: Kpi
    csat: Kpi
    grr: Kpi
    nrr: Kpi
    renewal_rate: Kpi
    logo_churn_rate: Kpi
    expansion_rate: Kpi
    expansion_arr_rate: Kpi
    utilization_rate: Kpi
    onboarding_ttv_days_median: Kpi
    onboarding_success_rate: Kpi
    ticket_first_response_hours_median: Kpi
    ticket_resolution_rate: Kpi
