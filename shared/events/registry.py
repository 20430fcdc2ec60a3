"""The registry of topics and event types, with the payload schema of each ``data``.

This module is the single source for what travels on the bus: producers validate what they
publish against it, consumers validate what they read, and the AsyncAPI document is built from it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.events.envelope import CloudEvent, InvalidEvent, describe_validation_error

HANDOFF_TOPIC = "postsales.handoff.v1"
LIFECYCLE_TOPIC = "postsales.lifecycle.v1"
USAGE_TOPIC = "postsales.usage.v1"
FEEDBACK_TOPIC = "postsales.feedback.v1"
METRICS_TOPIC = "postsales.metrics.v1"
ALERTS_TOPIC = "postsales.alerts.v1"
TOPICS = (HANDOFF_TOPIC, LIFECYCLE_TOPIC, USAGE_TOPIC, FEEDBACK_TOPIC, METRICS_TOPIC, ALERTS_TOPIC)


def dlq_topic(topic: str) -> str:
    return f"{topic}.dlq"


class Payload(BaseModel):
    """Base of event payloads: unknown fields are kept, so producers can add without breaking readers."""

    model_config = ConfigDict(extra="allow")


# --- handoff -------------------------------------------------------------------------------------

class AccountInfo(Payload):
    external_id: str
    name: str
    segment: str | None = None
    plan: str | None = None
    seats: int | None = None
    arr: Decimal | None = None
    currency: str | None = None
    contract_start: dt.date | None = None
    renewal_date: dt.date | None = None


class CommitmentInfo(Payload):
    id: str
    title: str
    kind: str
    status: str = "open"
    due_date: dt.date | None = None
    owner: str | None = None
    description: str | None = None


class HandoffPayload(Payload):
    handoff_id: str
    account: AccountInfo
    crm_opportunity_id: str
    status: str
    presales_owner: str | None = None
    postsales_owner: str | None = None
    commitments: list[CommitmentInfo] = Field(default_factory=list)
    goals: list[str] = Field(default_factory=list)
    by: str | None = None
    reason: str | None = None


class CommitmentUpdated(Payload):
    handoff_id: str
    commitment_id: str
    title: str
    status: Literal["open", "in_progress", "delivered", "waived", "at_risk"]
    previous_status: str | None = None
    due_date: dt.date | None = None
    owner: str | None = None
    delivered_at: dt.datetime | None = None
    overdue: bool = False


# --- lifecycle -----------------------------------------------------------------------------------

class AccountPayload(Payload):
    account_id: str
    name: str | None = None
    stage: str | None = None
    owner: str | None = None
    segment: str | None = None
    seats: int | None = None
    arr: Decimal | None = None
    currency: str | None = None
    contract_start: dt.date | None = None
    renewal_date: dt.date | None = None


class StageChanged(Payload):
    account_id: str
    from_stage: str | None = Field(default=None, alias="from")
    to_stage: str = Field(alias="to")
    reason: str | None = None
    actor: str | None = None


class TaskPayload(Payload):
    account_id: str
    task_id: str
    title: str
    commitment_id: str | None = None
    due_date: dt.date | None = None
    owner: str | None = None


class OnboardingCompleted(Payload):
    account_id: str
    completed_at: dt.datetime
    planned_go_live: dt.date | None = None
    contract_start: dt.date | None = None


class TouchpointLogged(Payload):
    account_id: str
    kind: str
    at: dt.datetime


class RenewalWindowEntered(Payload):
    account_id: str
    renewal_date: dt.date
    window_days: int
    arr: Decimal | None = None


class RenewalRecorded(Payload):
    account_id: str
    outcome: Literal["renewed", "churned"]
    arr_before: Decimal
    arr_after: Decimal
    renewal_date: dt.date | None = None


class OpportunityUpdated(Payload):
    account_id: str
    opportunity_id: str
    kind: Literal["upsell", "cross_sell"]
    amount: Decimal
    status: Literal["open", "won", "lost"]


# --- usage and feedback --------------------------------------------------------------------------

class UsagePayload(Payload):
    user_id: str = Field(min_length=1)
    feature: str | None = None
    quantity: float = Field(default=1, ge=0)


class SurveyPayload(Payload):
    score: int
    respondent: str | None = None
    comment: str | None = None


class TicketPayload(Payload):
    ticket_id: str = Field(min_length=1)


# --- metrics and alerts --------------------------------------------------------------------------

class HealthChanged(Payload):
    account_id: str
    old_score: float | None = None
    new_score: float
    old_band: str | None = None
    new_band: Literal["green", "yellow", "red"]
    factors: list[dict[str, Any]] = Field(default_factory=list)


class RiskDriver(Payload):
    name: str
    value: float | None = None
    contribution: float


class RiskChanged(Payload):
    account_id: str
    old_band: Literal["low", "medium", "high"] | None = None
    new_band: Literal["low", "medium", "high"]
    old_probability: float | None = None
    new_probability: float = Field(ge=0, le=1)
    drivers: list[RiskDriver] = Field(default_factory=list)
    model_version: int | None = None
    horizon_days: int | None = None
    initial: bool = Field(default=False, description="The account's first score (old_band is null): rules that "
                          "should act only on a change match data.old_band exists.")


class PlaybookRunPayload(Payload):
    account_id: str
    playbook_id: str
    run_id: str
    playbook: str | None = None
    status: Literal["active", "completed", "cancelled"]
    task_ids: list[str] = Field(default_factory=list)
    trigger_event_id: str | None = None


class AlertPayload(Payload):
    alert_id: str
    rule: str
    severity: str
    fingerprint: str
    status: str
    labels: dict[str, Any] = Field(default_factory=dict)
    summary: str | None = None


@dataclass(frozen=True)
class EventType:
    name: str
    topic: str
    schema: type[Payload]
    description: str


_TYPES = [
    EventType("postsales.handoff.submitted", HANDOFF_TOPIC, HandoffPayload, "A handoff was submitted for acceptance."),
    EventType("postsales.handoff.accepted", HANDOFF_TOPIC, HandoffPayload, "The post-sales owner accepted a handoff."),
    EventType("postsales.handoff.returned", HANDOFF_TOPIC, HandoffPayload, "A handoff was returned to presales."),
    EventType("postsales.commitment.updated", HANDOFF_TOPIC, CommitmentUpdated, "A commitment changed status."),
    EventType("postsales.account.created", LIFECYCLE_TOPIC, AccountPayload, "An account was created."),
    EventType("postsales.account.updated", LIFECYCLE_TOPIC, AccountPayload, "An account's facts changed."),
    EventType("postsales.account.stage_changed", LIFECYCLE_TOPIC, StageChanged, "An account moved stage."),
    EventType("postsales.task.completed", LIFECYCLE_TOPIC, TaskPayload, "A task was completed."),
    EventType("postsales.task.overdue", LIFECYCLE_TOPIC, TaskPayload, "A task passed its due date."),
    EventType("postsales.onboarding.completed", LIFECYCLE_TOPIC, OnboardingCompleted, "Go-live was reached."),
    EventType("postsales.touchpoint.logged", LIFECYCLE_TOPIC, TouchpointLogged, "A customer touchpoint."),
    EventType("postsales.renewal.window_entered", LIFECYCLE_TOPIC, RenewalWindowEntered, "A renewal window opened."),
    EventType("postsales.renewal.recorded", LIFECYCLE_TOPIC, RenewalRecorded, "A renewal outcome was recorded."),
    EventType("postsales.opportunity.updated", LIFECYCLE_TOPIC, OpportunityUpdated, "An opportunity changed."),
    EventType("postsales.playbook.started", LIFECYCLE_TOPIC, PlaybookRunPayload,
              "A playbook run started on an account: its tasks were created."),
    EventType("postsales.playbook.completed", LIFECYCLE_TOPIC, PlaybookRunPayload,
              "Every task of a playbook run is done or cancelled."),
    EventType("postsales.survey.nps", FEEDBACK_TOPIC, SurveyPayload, "An NPS response (0-10)."),
    EventType("postsales.survey.csat", FEEDBACK_TOPIC, SurveyPayload, "A CSAT response (1-5)."),
    EventType("postsales.ticket.opened", FEEDBACK_TOPIC, TicketPayload, "A support ticket was opened."),
    EventType("postsales.ticket.responded", FEEDBACK_TOPIC, TicketPayload, "First response on a ticket."),
    EventType("postsales.ticket.resolved", FEEDBACK_TOPIC, TicketPayload, "A support ticket was resolved."),
    EventType("postsales.health.changed", METRICS_TOPIC, HealthChanged,
              "An account's health band changed, or its score moved by at least the minimum delta."),
    EventType("postsales.risk.changed", METRICS_TOPIC, RiskChanged, "An account's churn-risk band changed."),
    EventType("postsales.alert.fired", ALERTS_TOPIC, AlertPayload, "An alert fired."),
    EventType("postsales.alert.resolved", ALERTS_TOPIC, AlertPayload, "An alert was resolved."),
]
EVENT_TYPES: dict[str, EventType] = {t.name: t for t in _TYPES}
USAGE_PREFIX = "usage."


USAGE_EVENT_TYPE = EventType("usage.*", USAGE_TOPIC, UsagePayload, "A product usage event (any `usage.<name>`).")


def lookup(event_type: str) -> EventType | None:
    """The registered type, or the generic usage type for any ``usage.*``."""
    if event_type in EVENT_TYPES:
        return EVENT_TYPES[event_type]
    if event_type.startswith(USAGE_PREFIX) and len(event_type) > len(USAGE_PREFIX):
        return USAGE_EVENT_TYPE
    return None


def known_event_types() -> list[str]:
    """Every registered type, plus the producers' ``usage.*`` family."""
    return [*EVENT_TYPES, USAGE_EVENT_TYPE.name]


def check_event_type_pattern(pattern: str) -> None:
    """Raise ``ValueError`` naming the known types unless ``pattern`` names a registered type or a
    prefix of one (``postsales.ticket.*``, ``*``); any ``usage.<name>`` is a registered type.

    The one validator for every place that subscribes by type: notifier rules and lifecycle playbooks.
    """
    if pattern.endswith("*"):
        prefix = pattern[:-1]
        if any(name.startswith(prefix) for name in EVENT_TYPES) or USAGE_PREFIX.startswith(prefix) \
                or prefix.startswith(USAGE_PREFIX):
            return
    elif lookup(pattern) is not None:
        return
    raise ValueError(f"'{pattern}' names no registered event type; known types: {', '.join(known_event_types())}")


def validate_event(event: CloudEvent, *, topic: str | None = None) -> EventType:
    """Check the event's type is known (and belongs on ``topic``) and its ``data`` fits the schema."""
    et = lookup(event.type)
    if et is None:
        raise InvalidEvent(f"unknown event type '{event.type}'")
    if topic is not None and et.topic != topic:
        raise InvalidEvent(f"event type '{event.type}' does not belong on topic '{topic}'")
    try:
        et.schema.model_validate(event.data)
    except ValidationError as exc:
        raise InvalidEvent("data: " + describe_validation_error(exc)) from None
    return et


P = TypeVar("P", bound=Payload)


def parse_data(event: CloudEvent, schema: type[P]) -> P:
    try:
        return schema.model_validate(event.data)
    except ValidationError as exc:
        raise InvalidEvent("data: " + describe_validation_error(exc)) from None
