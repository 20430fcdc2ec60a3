"""Checks beyond the registry schemas that every ingested event must pass (HTTP and topic alike)."""

from __future__ import annotations

import math
from typing import Any

from services.metrics.models import ID
from shared.events.envelope import CloudEvent, InvalidEvent
from shared.events.registry import FEEDBACK_TOPIC, USAGE_TOPIC, validate_event

SCORE_RANGES = {"nps": (0, 10), "csat": (1, 5)}
INGEST_TOPICS = (USAGE_TOPIC, FEEDBACK_TOPIC)


def _text(data: dict[str, Any], name: str, *, required: bool) -> None:
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidEvent(f"data.{name}: field required")
        return
    if not isinstance(value, str) or not value or len(value) > ID:
        raise InvalidEvent(f"data.{name}: must be a non-empty string of at most {ID} characters")


def check_usage_data(data: dict[str, Any]) -> None:
    _text(data, "user_id", required=True)
    _text(data, "feature", required=False)
    quantity = data.get("quantity", 1)
    if isinstance(quantity, bool) or not isinstance(quantity, int | float) or not math.isfinite(quantity) \
            or quantity < 0:
        raise InvalidEvent("data.quantity: must be a finite number >= 0")


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
    """Validate an event for ingestion; returns its topic or raises ``InvalidEvent``."""
    et = validate_event(event)
    if et.topic == USAGE_TOPIC:
        check_usage_data(event.data)
    elif et.topic == FEEDBACK_TOPIC:
        check_feedback(event)
    else:
        raise InvalidEvent(f"event type '{event.type}' is not ingested here: only usage.*, "
                           "postsales.survey.* and postsales.ticket.* events are")
    return et.topic
