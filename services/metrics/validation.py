"""Checks beyond the registry schemas that feedback events must pass (HTTP and topic alike); usage events
are decoded and checked by `usage.envelope`."""

from __future__ import annotations

from typing import Any

from services.metrics.models import ID
from shared.events.envelope import CloudEvent, InvalidEvent
from shared.events.registry import FEEDBACK_TOPIC, validate_event

SCORE_RANGES = {"nps": (0, 10), "csat": (1, 5)}


def _text(data: dict[str, Any], name: str, *, required: bool) -> None:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidEvent(f"data.{name}: field required")
        return
    if not isinstance(value, str) or not value or len(value) > ID:
        raise InvalidEvent(f"data.{name}: must be a non-empty string of at most {ID} characters")


def survey_kind(event_type: str) -> str:
    return event_type.rsplit(".", 1)[-1]


def check_feedback(event: CloudEvent) -> None:
    if event.type.startswith("postsales.survey."):
        low, high = SCORE_RANGES[survey_kind(event.type)]
        score = event.data.get("score")
        if isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high:
            raise InvalidEvent(f"data.score: must be an integer from {low} to {high}")
    else:
        _text(event.data, "ticket_id", required=True)


def check_ingestible(event: CloudEvent) -> str:
    """Validate a posted event other than a usage event (those are decoded by ``usage.envelope``);
    returns its topic or raises ``InvalidEvent``."""
    et = validate_event(event)
    if et.topic != FEEDBACK_TOPIC:
        raise InvalidEvent(f"event type '{event.type}' is not ingested here: only usage.*, "
                           "postsales.survey.* and postsales.ticket.* events are")
    check_feedback(event)
    return et.topic
