"""Request and response models of renewals."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.lifecycle.accounts.schemas import HealthOut
from services.lifecycle.common import Stage
from shared.types import Currency, Date, DateTime, Money, MoneyOut

RenewalOutcome = Literal["renewed", "churned"]


class RenewalCreate(BaseModel):
    """The outcome of a renewal. Renewed moves the renewal date forward (and renewal → adoption);
    churned moves the account to churned."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"outcome": "renewed", "arr_before": "120000.00", "arr_after": "132000.00",
         "new_renewal_date": "2028-01-01", "notes": "3-year price lock declined; +10% seats"},
        {"outcome": "churned", "arr_before": "120000.00", "arr_after": "0", "notes": "Moved to a competitor"}]})

    outcome: RenewalOutcome
    arr_before: Money | None = Field(default=None, description="Defaults to the account's current ARR.")
    arr_after: Money | None = Field(default=None, description="Required when renewed; 0 (the default) if churned.")
    currency: Currency | None = Field(default=None, description="Defaults to the account's currency.")
    renewal_date: Date | None = Field(default=None, description="The renewal decided; defaults to the account's.")
    new_renewal_date: Date | None = Field(default=None, description="Renewed: the next one; default +1 year.")
    notes: str | None = Field(default=None, max_length=20_000)
    actor: str | None = Field(default=None, max_length=200)
    at: DateTime | None = Field(default=None, description="When it was decided (importing history); defaults to now. "
                                "At most MAX_FUTURE_SKEW ahead (1 day) and MAX_EVENT_AGE back (3 years).")


class RenewalOut(BaseModel):
    """A recorded renewal outcome."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "5e1b…", "account_id": "acme-corp", "outcome": "renewed", "arr_before": "120000.00",
        "arr_after": "132000.00", "currency": "EUR", "renewal_date": "2027-01-01",
        "next_renewal_date": "2028-01-01", "notes": None, "actor": "csm.jane@vendor.example",
        "recorded_at": "2026-12-15T10:00:00Z"}]})

    id: str
    account_id: str
    outcome: RenewalOutcome
    arr_before: MoneyOut
    arr_after: MoneyOut
    currency: str | None
    renewal_date: dt.date | None
    next_renewal_date: dt.date | None
    notes: str | None
    actor: str | None
    recorded_at: dt.datetime


class UpcomingRenewalOut(BaseModel):
    """An account whose renewal is coming up."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "account_id": "acme-corp", "name": "Acme Corp", "owner": "csm.jane@vendor.example",
        "segment": "enterprise", "stage": "adoption", "renewal_date": "2027-01-01", "days_until": 45,
        "arr": "120000.00", "currency": "EUR", "health": {"score": 48.0, "band": "yellow",
                                                         "as_of": "2026-11-16T06:00:00Z"}}]})

    account_id: str
    name: str
    owner: str | None
    segment: str | None
    stage: Stage
    renewal_date: dt.date
    days_until: int
    arr: MoneyOut | None
    currency: str | None
    health: HealthOut | None
