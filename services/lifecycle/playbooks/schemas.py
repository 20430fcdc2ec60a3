"""Request and response models of playbooks, their runs and their stats."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.types import Bool, DateTime, Int

RunStatus = Literal["active", "completed", "cancelled"]
ACCOUNT_OWNER = "account_owner"

_EXAMPLE: dict[str, Any] = {
    "name": "NPS detractor follow-up",
    "description": "An NPS response of 6 or less: call the respondent within 2 days.",
    "trigger": {"event_type": "postsales.survey.nps", "conditions": {"data.score": {"lte": 6}}},
    "tasks": [{"title": "Follow-up call with the NPS detractor", "due_in_days": 2, "owner": "account_owner"}],
    "cooldown": "14d",
    "enabled": True,
}


class Trigger(BaseModel):
    """Which events start a run: a CloudEvents type (or a prefix ending in `*`) and conditions on it."""

    model_config = ConfigDict(extra="forbid")

    event_type: str = Field(min_length=1, max_length=200, examples=["postsales.survey.nps"],
                            description="An event type, or a prefix ending in `*` (e.g. `postsales.ticket.*`).")
    conditions: dict[str, Any] = Field(
        default_factory=dict, examples=[{"data.score": {"lte": 6}}],
        description="path -> {op: value} (ops eq, ne, lt, lte, gt, gte, in, exists), all must hold. Paths: "
                    "`data.*`, `subject`, `type`, `source`, `time`, and the account as lifecycle knows it: "
                    "`account.stage`, `account.owner`, `account.name`, `account.health_band`, "
                    "`account.health_score`.")


class PlaybookTask(BaseModel):
    """A task each run creates on the account."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=300, examples=["Follow-up call with the NPS detractor"])
    description: str | None = Field(default=None, max_length=10_000)
    due_in_days: Int | None = Field(default=None, ge=0, le=3650, examples=[2],
                                    description="Due this many days after the run starts; null = no due date.")
    owner: str = Field(default=ACCOUNT_OWNER, min_length=1, max_length=200, examples=[ACCOUNT_OWNER],
                       description="A person, or `account_owner`: the account's owner when the run starts.")


class PlaybookIn(BaseModel):
    """A playbook: when a matching event arrives for an account, its tasks are created there."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    trigger: Trigger
    tasks: list[PlaybookTask] = Field(min_length=1, max_length=50)
    cooldown: str = Field(default="7d", max_length=20, examples=["7d"],
                          description="No new run on an account within this long after its last run ended "
                                      "(`30s`, `4h`, `7d`; `0s` = none).")
    enabled: Bool = True


class PlaybookReplace(PlaybookIn):
    """What `GET` returns, `PUT` accepts: the read-only fields may be sent back and are ignored
    (`id`, when sent, must be the playbook's own)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    id: str | None = Field(default=None, description="Read-only; ignored (must be the playbook's own if sent).")
    builtin: Bool | None = Field(default=None, description="Read-only; ignored.")
    created_at: DateTime | None = Field(default=None, description="Read-only; ignored.")
    updated_at: DateTime | None = Field(default=None, description="Read-only; ignored.")


class PlaybookOut(PlaybookIn):
    id: str
    builtin: bool = Field(description="Shipped with the service (still editable and deletable).")
    created_at: dt.datetime
    updated_at: dt.datetime


class RunStart(BaseModel):
    """Start the play on an account by hand (its trigger and cooldown do not apply)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"account_id": "acme-corp"}]})

    account_id: str = Field(min_length=1, max_length=200)


class PlaybookRunOut(BaseModel):
    """One run of a playbook on an account, with the account's health and risk band when it started
    and when it ended (null while unknown, or while the run is active)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "3f7c…", "playbook_id": "00000000-0000-4000-9000-000000000002",
        "playbook_name": "NPS detractor follow-up", "account_id": "acme-corp", "status": "completed",
        "task_ids": ["8c1d…"], "trigger": {"event_id": "e-1", "event_type": "postsales.survey.nps",
                                           "source": "/services/metrics", "time": "2026-12-01T09:00:00Z"},
        "started_at": "2026-12-01T09:00:00Z", "ended_at": "2026-12-02T15:00:00Z",
        "health_band_start": "yellow", "health_band_end": "green", "risk_band_start": None,
        "risk_band_end": None}]})

    id: str
    playbook_id: str
    playbook_name: str
    account_id: str
    status: RunStatus
    task_ids: list[str]
    trigger: dict[str, Any] = Field(description="The event that started the run: event_id, event_type, source, "
                                                "time.")
    started_at: dt.datetime
    ended_at: dt.datetime | None
    health_band_start: str | None
    health_band_end: str | None
    risk_band_start: str | None
    risk_band_end: str | None


class BandShift(BaseModel):
    """How a band moved between the start and the end of ended runs."""

    improved: int
    unchanged: int
    worsened: int
    unknown: int = Field(description="Runs with no band at start or end.")


class PlaybookStats(BaseModel):
    """Whether the play works: how many runs, how fast they complete, how the account's bands moved."""

    playbook_id: str
    runs: int
    active: int
    completed: int
    cancelled: int
    median_days_to_complete: float | None = Field(description="Over completed runs; null when there are none.")
    health: BandShift = Field(description="Health band at start vs end, over ended runs.")
    risk: BandShift = Field(description="Churn-risk band at start vs end, over ended runs.")
