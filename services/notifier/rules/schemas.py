"""Request and response models of rules."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.types import Bool, DateTime

Severity = Literal["info", "warning", "critical"]


class Escalation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after: str = Field(examples=["2h"], description="Escalate when not acknowledged within this duration.")
    channel: str = Field(description="Id of the channel to escalate to.")


class ResolveWhen(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event_type: str = Field(examples=["postsales.health.changed"])
    conditions: dict[str, Any] = Field(default_factory=dict, examples=[{"data.new_band": {"eq": "green"}}])
    scope: Literal["alert", "account"] = Field(
        default="alert", description="`alert`: resolves the alert with the same `group_by` labels; "
                                     "`account`: every active alert of this rule on the event's account.")


class Inhibits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: list[str] = Field(min_length=1, description="Ids of rules whose alerts this rule's alerts mute.")
    equal: list[str] = Field(default_factory=lambda: ["subject"],
                             description="Labels that must be equal on both alerts (default: the account).")


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "name": "nps-detractor-enterprise", "event_type": "postsales.survey.nps",
        "conditions": {"data.score": {"lte": 6}}, "severity": "warning", "channels": [],
        "group_by": ["subject"], "group_wait": "30s", "repeat_interval": "24h",
        "escalation": None, "summary": {"en": "NPS {{ data.score }} from {{ account.name or subject }}"},
    }]})
    name: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    event_type: str = Field(min_length=1, max_length=200, description="A type, or a prefix ending in `*`.")
    conditions: dict[str, Any] = Field(
        default_factory=dict, description="path -> {op: value}; ops eq, ne, lt, lte, gt, gte, in, exists.")
    severity: Severity = "warning"
    channels: list[str] = Field(default_factory=list, max_length=20,
                                description="Channel ids; empty = the channels flagged `default`.")
    group_by: list[str] = Field(default_factory=lambda: ["subject"], max_length=10)
    group_wait: str = Field(default="30s", description="Wait before the first notification.")
    repeat_interval: str = Field(default="4h", description="Minimum time between notifications of one alert.")
    escalation: Escalation | None = None
    resolve_when: ResolveWhen | list[ResolveWhen] | None = Field(
        default=None, description="An event that resolves the alert, or a list of them (any one resolves).")
    inhibits: Inhibits | None = None
    lang: Literal["en", "ja"] | None = None
    summary: dict[Literal["en", "ja"], str] | None = Field(
        default=None, description="One-line Jinja2 summary per language (sandboxed).")
    enabled: Bool = True


class RuleReplace(RuleIn):
    """What ``PUT`` takes: a rule as ``GET`` returns it; the read-only fields are ignored."""

    id: str | None = Field(default=None, description="Read-only; ignored.")
    builtin: Bool | None = Field(default=None, description="Read-only; ignored.")
    deliverable: Bool | None = Field(default=None, description="Read-only; ignored.")
    warnings: list[str] | None = Field(default=None, description="Read-only; ignored.")
    created_at: DateTime | None = Field(default=None, description="Read-only; ignored.")
    updated_at: DateTime | None = Field(default=None, description="Read-only; ignored.")


class RuleOut(RuleIn):
    id: str
    builtin: bool = Field(description="Created by the service as a default rule.")
    deliverable: bool = Field(
        default=True, description="Whether an alert of this rule notifies anyone now (read-only).")
    warnings: list[str] = Field(
        default_factory=list, description="What keeps this rule from working as one would expect (read-only).")
    created_at: dt.datetime
    updated_at: dt.datetime
