"""Request and response models of handoffs."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.handoff.commitments.schemas import CommitmentDraftIn, CommitmentIn, CommitmentOut
from shared.types import Bool, Currency, Date, Int, Money, MoneyOut

HandoffStatus = Literal["draft", "submitted", "accepted", "returned"]
HANDOFF_STATUSES: tuple[str, ...] = ("draft", "submitted", "accepted", "returned")



def _text() -> Any:
    return Field(default=None, max_length=20_000)


def _short_list() -> Any:
    return Field(default_factory=list, max_length=200)


_ACCOUNT_EXAMPLE: dict[str, Any] = {
    "external_id": "acme-corp", "name": "Acme Corp", "segment": "enterprise", "plan": "Business",
    "seats": 250, "arr": "120000.00", "currency": "USD", "contract_start": "2026-12-01",
    "renewal_date": "2027-12-01",
}
_STAKEHOLDER_EXAMPLE: dict[str, Any] = {
    "name": "Hanako Yamada", "role": "VP Operations (champion)", "email": "hanako@acme.example", "champion": True,
}
_CREATE_EXAMPLE: dict[str, Any] = {
    "account": _ACCOUNT_EXAMPLE,
    "crm_opportunity_id": "OPP-2026-0042",
    "challenges": ["Manual onboarding of 40 sites takes weeks"],
    "goals": ["Onboard all sites within 60 days"],
    "proposal": "Business plan, 250 seats, SSO and a Salesforce integration.",
    "demo_notes": "Loved the bulk import; asked twice about audit logs.",
    "commitments": [{"title": "SSO with Okta before go-live", "kind": "integration", "due_date": "2026-12-15"}],
    "stakeholders": [_STAKEHOLDER_EXAMPLE],
    "risks": ["IT team is understaffed until January"],
    "presales_owner": "ae.sato@example.com",
    "postsales_owner": "csm.kato@example.com",
}


class AccountIn(BaseModel):
    """The customer account as sold. Only `external_id` and `name` are needed for a draft."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_ACCOUNT_EXAMPLE]})

    external_id: str = Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$",
                             description="The account id the rest of the suite uses.")
    name: str = Field(min_length=1, max_length=300)
    segment: str | None = Field(default=None, max_length=100)
    plan: str | None = Field(default=None, max_length=100)
    seats: Int | None = Field(default=None, ge=0, le=10_000_000)
    arr: Money | None = Field(default=None, description="Annual recurring revenue, a decimal string.")
    currency: Currency | None = None
    contract_start: Date | None = None
    renewal_date: Date | None = None

    @model_validator(mode="after")
    def _dates(self) -> Self:
        if self.contract_start and self.renewal_date and self.renewal_date <= self.contract_start:
            raise ValueError("renewal_date must be after contract_start")
        return self


class AccountPatch(BaseModel):
    """Account fields to change; a field set to null is cleared (except `external_id` and `name`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"renewal_date": "2027-12-01", "arr": "120000.00", "currency": "USD"}]})

    external_id: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")
    name: str | None = Field(default=None, min_length=1, max_length=300)
    segment: str | None = Field(default=None, max_length=100)
    plan: str | None = Field(default=None, max_length=100)
    seats: Int | None = Field(default=None, ge=0, le=10_000_000)
    arr: Money | None = None
    currency: Currency | None = None
    contract_start: Date | None = None
    renewal_date: Date | None = None

    @model_validator(mode="after")
    def _required_not_null(self) -> Self:
        for name in ("external_id", "name"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"account.{name} cannot be null")
        return self


class AccountOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_ACCOUNT_EXAMPLE]})

    external_id: str
    name: str
    segment: str | None
    plan: str | None
    seats: int | None
    arr: MoneyOut | None
    currency: str | None
    contract_start: dt.date | None
    renewal_date: dt.date | None


class Stakeholder(BaseModel):
    """A person on the customer side; mark the champion with `champion: true` (or a champion role)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_STAKEHOLDER_EXAMPLE]})

    name: str = Field(min_length=1, max_length=200)
    role: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    champion: Bool = False


class HandoffCreate(BaseModel):
    """A new handoff (a draft). Only `account.external_id`, `account.name` and `crm_opportunity_id`
    are needed now; the rest is checked at submit."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_CREATE_EXAMPLE]})

    account: AccountIn
    crm_opportunity_id: str = Field(min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")
    challenges: list[str] = _short_list()
    goals: list[str] = _short_list()
    proposal: str | None = _text()
    demo_notes: str | None = _text()
    commitments: list[CommitmentIn] = Field(default_factory=list, max_length=200)
    no_commitments: Bool = Field(default=False, description="State explicitly that nothing was promised.")
    stakeholders: list[Stakeholder] = _short_list()
    risks: list[str] = _short_list()
    presales_owner: str | None = Field(default=None, max_length=200)
    postsales_owner: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.no_commitments and self.commitments:
            raise ValueError("no_commitments is true but commitments were given")
        return self


class HandoffPatch(BaseModel):
    """Fields to change on a draft or returned handoff. `commitments`, when given, is the full new
    list: items with an `id` edit that commitment, items without add one, and omitted ones are removed."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"account": {"renewal_date": "2027-12-01", "arr": "120000.00"}, "goals": ["Go live by March"],
         "postsales_owner": "csm.kato@example.com"}]})

    account: AccountPatch | None = None
    crm_opportunity_id: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^\S(.*\S)?$")
    challenges: list[str] | None = Field(default=None, max_length=200)
    goals: list[str] | None = Field(default=None, max_length=200)
    proposal: str | None = _text()
    demo_notes: str | None = _text()
    commitments: list[CommitmentDraftIn] | None = Field(default=None, max_length=200)
    no_commitments: Bool | None = None
    stakeholders: list[Stakeholder] | None = Field(default=None, max_length=200)
    risks: list[str] | None = Field(default=None, max_length=200)
    presales_owner: str | None = Field(default=None, max_length=200)
    postsales_owner: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _no_null_for_required(self) -> Self:
        not_nullable = ("account", "crm_opportunity_id", "challenges", "goals", "commitments", "no_commitments",
                        "stakeholders", "risks")
        for name in not_nullable:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class TransitionOut(BaseModel):
    """One workflow step: who moved the handoff, when and why."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "from_status": "submitted", "to_status": "returned", "by": "csm.kato@example.com",
        "reason": "renewal date contradicts the order form", "at": "2026-11-24T10:00:00Z"}]})

    from_status: str | None
    to_status: str
    by: str | None
    reason: str | None
    at: dt.datetime


class HandoffOut(BaseModel):
    """A handoff with its completeness, commitments and workflow history."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CREATE_EXAMPLE | {
        "id": "7d5c1b8e-3f4a-4a55-8f7e-2b1c9d0e6f12", "status": "draft", "completeness": 1.0, "missing": [],
        "no_commitments": False,
        "commitments": [{
            "id": "0b3e6a53-5d1f-4c47-9b8e-6d9f0c2b7a10", "handoff_id": "7d5c1b8e-3f4a-4a55-8f7e-2b1c9d0e6f12",
            "account_id": "acme-corp", "title": "SSO with Okta before go-live", "kind": "integration",
            "status": "open", "owner": None, "due_date": "2026-12-15", "description": None, "evidence": None,
            "delivered_at": None, "overdue": False, "created_at": "2026-11-23T09:30:00Z",
            "updated_at": "2026-11-23T09:30:00Z"}],
        "history": [{"from_status": None, "to_status": "draft", "by": "ae.sato@example.com", "reason": None,
                     "at": "2026-11-23T09:30:00Z"}],
        "created_at": "2026-11-23T09:30:00Z", "updated_at": "2026-11-23T09:30:00Z", "submitted_at": None,
        "accepted_at": None, "accepted_by": None, "returned_at": None, "return_reason": None,
    }]})

    id: str
    status: HandoffStatus
    completeness: float = Field(ge=0, le=1, description="Share of the submit checklist that is filled.")
    missing: list[str] = Field(description="Field paths still missing for submit, e.g. account.renewal_date.")
    crm_opportunity_id: str
    account: AccountOut
    challenges: list[str]
    goals: list[str]
    proposal: str | None
    demo_notes: str | None
    commitments: list[CommitmentOut]
    no_commitments: bool
    stakeholders: list[Stakeholder]
    risks: list[str]
    presales_owner: str | None
    postsales_owner: str | None
    history: list[TransitionOut]
    created_at: dt.datetime
    updated_at: dt.datetime
    submitted_at: dt.datetime | None
    accepted_at: dt.datetime | None
    accepted_by: str | None
    returned_at: dt.datetime | None
    return_reason: str | None


class SubmitIn(BaseModel):
    """Submit a complete handoff to post-sales."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"by": "ae.sato@example.com", "reason": "updated the renewal date as asked"}]})

    by: str | None = Field(default=None, max_length=200, description="Defaults to the presales owner.")
    reason: str | None = Field(default=None, max_length=5_000, description="Why (kept in the history).")


class AcceptIn(BaseModel):
    """Accept a submitted handoff (post-sales side)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"by": "csm.kato@example.com", "reason": "kickoff booked for Dec 3"}]})

    by: str | None = Field(default=None, max_length=200, description="Defaults to the post-sales owner.")
    reason: str | None = Field(default=None, max_length=5_000, description="Why (kept in the history).")


class ReturnIn(BaseModel):
    """Return a submitted handoff to presales, saying why."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"reason": "renewal date contradicts the order form", "by": "csm.kato@example.com"}]})

    reason: str = Field(min_length=1, max_length=5_000, pattern=r"\S")
    by: str | None = Field(default=None, max_length=200, description="Defaults to the post-sales owner.")
