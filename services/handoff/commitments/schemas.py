"""Request and response models of the commitments ledger."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.types import Date

CommitmentKind = Literal["customization", "feature", "integration", "sla", "training", "other"]
CommitmentStatus = Literal["open", "in_progress", "delivered", "waived", "at_risk"]
COMMITMENT_STATUSES: tuple[str, ...] = ("open", "in_progress", "delivered", "waived", "at_risk")
# Statuses in which a commitment still has to be delivered (so can be overdue).
PENDING_STATUSES: tuple[str, ...] = ("open", "in_progress", "at_risk")

_COMMITMENT_EXAMPLE: dict[str, Any] = {
    "id": "0b3e6a53-5d1f-4c47-9b8e-6d9f0c2b7a10",
    "handoff_id": "7d5c1b8e-3f4a-4a55-8f7e-2b1c9d0e6f12",
    "account_id": "acme-corp",
    "title": "SSO with Okta before go-live",
    "kind": "integration",
    "status": "in_progress",
    "owner": "tam.suzuki@example.com",
    "due_date": "2026-12-15",
    "description": "SAML SSO for all 250 seats, promised in the final demo.",
    "evidence": None,
    "delivered_at": None,
    "overdue": False,
    "created_at": "2026-11-23T09:30:00Z",
    "updated_at": "2026-11-24T10:00:00Z",
}


_CHANGE_EXAMPLE: dict[str, Any] = {
    "id": "5a0f3c1e-8b7d-4e2a-9c6b-1d2e3f4a5b6c", "from_status": "in_progress", "to_status": "delivered",
    "changes": {"status": ["in_progress", "delivered"]}, "note": "task completed in onboarding",
    "actor": "lifecycle", "cause": "task.completed", "cause_ref": "task-42",
    "at": "2026-12-10T08:00:00Z",
}


class CommitmentIn(BaseModel):
    """A promise made before the contract."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "title": "SSO with Okta before go-live", "kind": "integration", "due_date": "2026-12-15",
        "description": "SAML SSO for all 250 seats, promised in the final demo.", "owner": "tam.suzuki@example.com",
    }]})

    title: str = Field(min_length=1, max_length=300)
    kind: CommitmentKind = "other"
    due_date: Date | None = None
    description: str | None = Field(default=None, max_length=10_000)
    owner: str | None = Field(default=None, max_length=200)


class CommitmentDraftIn(CommitmentIn):
    """A commitment in a handoff PATCH: with `id` it edits that commitment, without it adds one."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "id": "0b3e6a53-5d1f-4c47-9b8e-6d9f0c2b7a10", "title": "SSO with Okta before go-live",
        "kind": "integration", "due_date": "2026-12-20",
    }]})

    id: str | None = Field(default=None, max_length=36)


class CommitmentPatch(BaseModel):
    """A change to a commitment's ledger entry. `note` is kept in its history."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"status": "delivered", "note": "SSO live in production", "evidence": "https://tickets.example.com/OPS-42"},
        {"status": "waived", "note": "Customer moved to Azure AD; Okta no longer needed"},
        {"owner": "impl.tanaka@example.com", "due_date": "2027-01-15", "note": "re-planned with the customer"},
    ]})

    status: CommitmentStatus | None = None
    note: str | None = Field(default=None, max_length=10_000)
    evidence: str | None = Field(default=None, max_length=10_000)
    owner: str | None = Field(default=None, max_length=200)
    due_date: Date | None = None
    by: str | None = Field(default=None, max_length=200, description="Who made the change (kept in history).")


class CommitmentOut(BaseModel):
    """A ledger entry: the promise, its owner, due date, status and evidence."""

    model_config = ConfigDict(json_schema_extra={"examples": [_COMMITMENT_EXAMPLE]})

    id: str
    handoff_id: str
    account_id: str
    title: str
    kind: str
    status: CommitmentStatus
    owner: str | None
    due_date: dt.date | None
    description: str | None
    evidence: str | None
    delivered_at: dt.datetime | None
    overdue: bool = Field(description="Past its due date and not delivered or waived.")
    created_at: dt.datetime
    updated_at: dt.datetime


class CommitmentChangeOut(BaseModel):
    """One change in a commitment's history."""

    model_config = ConfigDict(json_schema_extra={"examples": [_CHANGE_EXAMPLE]})

    id: str
    from_status: str | None
    to_status: str
    changes: dict[str, Any]
    note: str | None
    actor: str | None
    cause: str = Field(description="api, overdue_scan, task.completed or task.overdue")
    cause_ref: str | None
    at: dt.datetime


class CommitmentDetail(CommitmentOut):
    """A ledger entry with its full history of changes."""

    model_config = ConfigDict(json_schema_extra={"examples": [_COMMITMENT_EXAMPLE | {"history": [_CHANGE_EXAMPLE]}]})

    history: list[CommitmentChangeOut]
