"""Request and response models of accounts and stage transitions."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.lifecycle.common import Stage
from shared.types import Currency, Date, DateTime, Int, Money, MoneyOut

OnboardingStatus = Literal["on_track", "behind", "stuck", "completed"]
HealthBand = Literal["green", "yellow", "red"]

_ACCOUNT_EXAMPLE: dict[str, Any] = {
    "id": "acme-corp", "name": "Acme Corp", "segment": "enterprise", "plan": "scale",
    "owner": "csm.jane@vendor.example", "seats": 250, "arr": "120000.00", "currency": "EUR",
    "contract_start": "2026-01-01", "renewal_date": "2027-01-01",
}


def _check_dates_and_money(values: BaseModel) -> None:
    start: dt.date | None = getattr(values, "contract_start", None)
    renewal: dt.date | None = getattr(values, "renewal_date", None)
    if start and renewal and renewal <= start:
        raise ValueError("renewal_date must be after contract_start")


class AccountCreate(BaseModel):
    """A customer account created directly (accounts usually come from an accepted handoff)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_ACCOUNT_EXAMPLE]})

    id: str = Field(min_length=1, max_length=200, pattern=r"^[^/\s][^/]*$",
                    description="The account's external id (as in the CRM).")
    name: str = Field(min_length=1, max_length=300)
    segment: str | None = Field(default=None, max_length=100)
    plan: str | None = Field(default=None, max_length=100)
    owner: str | None = Field(default=None, max_length=200, description="The post-sales owner (CSM).")
    seats: Int | None = Field(default=None, ge=0, le=10_000_000)
    arr: Money | None = None
    currency: Currency | None = None
    contract_start: Date | None = None
    renewal_date: Date | None = None
    stage: Stage = Field(default="onboarding", description="Initial stage (not churned); onboarding gets a plan.")

    @model_validator(mode="after")
    def _check(self) -> AccountCreate:
        _check_dates_and_money(self)
        if self.arr is not None and self.currency is None:
            raise ValueError("currency is required with arr")
        if self.stage == "churned":
            raise ValueError("an account cannot be created churned")
        return self


class AccountUpdate(BaseModel):
    """Fields to change; absent fields stay, null clears (name cannot be cleared). Stage changes go
    through `POST /v1/accounts/{id}/transitions`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"owner": "csm.max@vendor.example", "renewal_date": "2027-03-01", "arr": "150000.00"}]})

    name: str | None = Field(default=None, min_length=1, max_length=300)
    segment: str | None = Field(default=None, max_length=100)
    plan: str | None = Field(default=None, max_length=100)
    owner: str | None = Field(default=None, max_length=200)
    seats: Int | None = Field(default=None, ge=0, le=10_000_000)
    arr: Money | None = None
    currency: Currency | None = None
    contract_start: Date | None = None
    renewal_date: Date | None = None

    @model_validator(mode="before")
    @classmethod
    def _no_stage(cls, data: Any) -> Any:
        if isinstance(data, dict) and "stage" in data:
            raise ValueError("stage cannot be patched; use POST /v1/accounts/{id}/transitions")
        return data

    @model_validator(mode="after")
    def _check(self) -> AccountUpdate:
        if "name" in self.model_fields_set and self.name is None:
            raise ValueError("name cannot be cleared")
        return self


class OnboardingOut(BaseModel):
    """Where onboarding stands, from the plan's tasks and their due dates."""

    progress: int = Field(ge=0, le=100, examples=[40], description="% of plan tasks done (cancelled ones excluded).")
    status: OnboardingStatus = Field(examples=["on_track"], description=(
        "completed; stuck (a plan task overdue by `onboarding_stuck_after_days` or go-live missed); "
        "behind (a plan task overdue); else on_track."))
    planned_go_live: dt.date | None = Field(examples=["2026-04-01"])
    completed_at: dt.datetime | None = Field(examples=[None])
    tasks_total: int = Field(examples=[7])
    tasks_done: int = Field(examples=[3])
    tasks_overdue: int = Field(examples=[0])


class HealthOut(BaseModel):
    """The latest health score from the metrics service."""

    score: float = Field(examples=[72.5])
    band: HealthBand = Field(examples=["green"])
    as_of: dt.datetime = Field(examples=["2026-03-02T06:00:00Z"])


class RiskOut(BaseModel):
    """The latest churn risk from the metrics service (its drivers: `GET /v1/accounts/{id}/risk` there)."""

    band: Literal["low", "medium", "high"] = Field(examples=["medium"])
    probability: float = Field(ge=0, le=1, examples=[0.31])
    as_of: dt.datetime = Field(examples=["2026-03-02T06:00:00Z"])


class AccountOut(BaseModel):
    """A customer account."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        **_ACCOUNT_EXAMPLE, "stage": "onboarding", "handoff_id": "5b0e…", "crm_opportunity_id": "OPP-1001",
        "onboarding": {"progress": 40, "status": "on_track", "planned_go_live": "2026-04-01",
                       "completed_at": None, "tasks_total": 7, "tasks_done": 3, "tasks_overdue": 0},
        "health": {"score": 72.5, "band": "green", "as_of": "2026-03-02T06:00:00Z"},
        "stage_changed_at": "2026-01-02T10:00:00Z", "created_at": "2026-01-02T10:00:00Z",
        "updated_at": "2026-01-02T10:00:00Z"}]})

    id: str
    name: str
    segment: str | None
    plan: str | None
    stage: Stage
    owner: str | None
    seats: int | None
    arr: MoneyOut | None
    currency: str | None
    contract_start: dt.date | None
    renewal_date: dt.date | None
    handoff_id: str | None
    crm_opportunity_id: str | None
    onboarding: OnboardingOut | None = Field(description="Null when the account has no onboarding plan.")
    health: HealthOut | None
    risk: RiskOut | None = None
    stage_changed_at: dt.datetime
    created_at: dt.datetime
    updated_at: dt.datetime


class TransitionIn(BaseModel):
    """Move the account to another stage."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"to": "adoption", "reason": "Go-live done, users onboarded"}]})

    to: Stage
    reason: str | None = Field(default=None, max_length=2000)
    actor: str | None = Field(default=None, max_length=200, description="Who decided; defaults to the API key id.")
    at: DateTime | None = Field(default=None, description="When it happened (importing history); defaults to now. "
                                "At most MAX_FUTURE_SKEW ahead (1 day) and MAX_EVENT_AGE back (3 years).")


class StageChangeOut(BaseModel):
    """One entry of the account's stage history."""

    model_config = ConfigDict(populate_by_name=True, json_schema_extra={"examples": [{
        "id": "3f0c…", "account_id": "acme-corp", "from": "onboarding", "to": "adoption",
        "reason": "Go-live done", "actor": "csm.jane@vendor.example", "at": "2026-04-01T09:00:00Z"}]})

    id: str
    account_id: str
    from_stage: Stage | None = Field(alias="from")
    to_stage: Stage = Field(alias="to")
    reason: str | None
    actor: str | None
    at: dt.datetime
