"""Request and response models of tasks."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.types import Date, DateTime

TaskStatus = Literal["open", "in_progress", "done", "cancelled"]
TaskKind = Literal["milestone", "commitment", "task", "playbook"]


class TaskCreate(BaseModel):
    """An ad-hoc task on the account."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"title": "Set up SSO with the customer's IdP", "owner": "tam.li@vendor.example", "due_date": "2026-02-15",
         "description": "SAML, Okta"}]})

    title: str = Field(min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=10_000)
    owner: str | None = Field(default=None, max_length=200)
    due_date: Date | None = None
    status: Literal["open", "in_progress"] = "open"


class TaskUpdate(BaseModel):
    """Fields to change; absent fields stay. Done is final."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "done"}]})

    status: TaskStatus | None = None
    title: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=10_000)
    owner: str | None = Field(default=None, max_length=200)
    due_date: Date | None = None
    at: DateTime | None = Field(default=None, description="When it happened (e.g. when it was done, importing "
                                "history); defaults to now. At most MAX_FUTURE_SKEW ahead (1 day) and "
                                "MAX_EVENT_AGE back (3 years).")

    @model_validator(mode="before")
    @classmethod
    def _not_null(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name in ("status", "title"):
                if name in data and data[name] is None:
                    raise ValueError(f"{name} cannot be null")
        return data


class PlaybookRef(BaseModel):
    """The playbook whose run created a task."""

    id: str
    name: str


class TaskOut(BaseModel):
    """A task: a plan milestone, a promised commitment, a task of a playbook run, or an ad-hoc task."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "8c1d…", "account_id": "acme-corp", "kind": "commitment", "milestone": None,
        "title": "Salesforce integration", "description": "Bi-directional sync of accounts", "status": "open",
        "owner": "tam.li@vendor.example", "due_date": "2026-03-01", "commitment_id": "c-42",
        "handoff_id": "5b0e…", "playbook_run_id": None, "playbook": None, "overdue": False, "completed_at": None,
        "created_at": "2026-01-02T10:00:00Z", "updated_at": "2026-01-02T10:00:00Z"}]})

    id: str
    account_id: str
    kind: TaskKind
    milestone: str | None = Field(description="The template milestone key (kickoff, …, go_live).")
    title: str
    description: str | None
    status: TaskStatus
    owner: str | None
    due_date: dt.date | None
    commitment_id: str | None = Field(description="The handoff commitment this task delivers.")
    handoff_id: str | None
    playbook_run_id: str | None = Field(description="The playbook run that created this task (null if none).")
    playbook: PlaybookRef | None = Field(description="The playbook of that run.")
    overdue: bool
    completed_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
