"""Request and response models of opportunities (upsell / cross-sell)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.types import Currency, Date, Money, MoneyOut

OpportunityKind = Literal["upsell", "cross_sell"]
OpportunityStatus = Literal["open", "won", "lost"]


class OpportunityCreate(BaseModel):
    """An expansion opportunity on the account."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"kind": "upsell", "title": "+100 seats", "amount": "24000.00", "currency": "EUR",
         "expected_close_date": "2026-09-30"}]})

    kind: OpportunityKind
    amount: Money = Field(description="Added ARR, a decimal string.")
    currency: Currency | None = Field(default=None, description="Defaults to the account's currency.")
    title: str | None = Field(default=None, max_length=300)
    owner: str | None = Field(default=None, max_length=200)
    notes: str | None = Field(default=None, max_length=20_000)
    expected_close_date: Date | None = None
    status: OpportunityStatus = "open"


class OpportunityUpdate(BaseModel):
    """Fields to change. Won and lost are final: a closed opportunity keeps its status and amount."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "won"}]})

    status: OpportunityStatus | None = None
    amount: Money | None = None
    currency: Currency | None = None
    title: str | None = Field(default=None, max_length=300)
    owner: str | None = Field(default=None, max_length=200)
    notes: str | None = Field(default=None, max_length=20_000)
    expected_close_date: Date | None = None

    @model_validator(mode="before")
    @classmethod
    def _not_null(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in ("status", "amount", "currency"):
                if name in data and data[name] is None:
                    raise ValueError(f"{name} cannot be null")
        return data


class OpportunityOut(BaseModel):
    """An upsell or cross-sell opportunity."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "a71e…", "account_id": "acme-corp", "kind": "upsell", "title": "+100 seats", "amount": "24000.00",
        "currency": "EUR", "status": "open", "owner": "csm.jane@vendor.example", "notes": None,
        "expected_close_date": "2026-09-30", "closed_at": None, "created_at": "2026-05-01T09:00:00Z",
        "updated_at": "2026-05-01T09:00:00Z"}]})

    id: str
    account_id: str
    kind: OpportunityKind
    title: str | None
    amount: MoneyOut
    currency: str
    status: OpportunityStatus
    owner: str | None
    notes: str | None
    expected_close_date: dt.date | None
    closed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
