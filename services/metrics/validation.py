"""Checks beyond the registry schemas that feedback events must pass (HTTP and topic alike), and the
bounds every counted number and every recorded time must respect; usage events are decoded and checked
by `usage.envelope`."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from services.metrics.models import ID
from services.metrics.settings import Settings
from shared.events.envelope import CloudEvent, InvalidEvent
from shared.events.registry import FEEDBACK_TOPIC, validate_event
from shared.settings import TimeBounds

SCORE_RANGES = {"nps": (0, 10), "csat": (1, 5)}


@dataclass(frozen=True, slots=True)
class Bounds:
    """What a fact may say: a finite quantity up to ``max_quantity`` (so no sum can overflow), and a
    time neither further than ``max_future_skew`` ahead nor older than ``max_age``."""

    max_quantity: float = 1e9
    max_future_skew: dt.timedelta = dt.timedelta(days=1)
    max_age: dt.timedelta = dt.timedelta(days=3 * 365 + 1)

    @classmethod
    def of(cls, settings: Settings) -> Bounds:
        return cls(settings.max_quantity, settings.max_future_skew, settings.max_event_age)

    def check_time(self, at: dt.datetime, now: dt.datetime, where: str = "time") -> None:
        if problem := TimeBounds(self.max_future_skew, self.max_age, prefix="METRICS_").problem(at, now):
            raise InvalidEvent(f"{where}: {problem}")

    def check_quantity(self, quantity: float) -> None:
        if quantity > self.max_quantity:
            raise InvalidEvent(f"data.quantity: {quantity:g} is more than the maximum of {self.max_quantity:g} "
                               "(METRICS_MAX_QUANTITY)")


DEFAULT_BOUNDS = Bounds()


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


def check_feedback(event: CloudEvent, bounds: Bounds = DEFAULT_BOUNDS, now: dt.datetime | None = None) -> None:
    """A survey's score in range or a ticket event's id, and the event time within bounds."""
    if event.type.startswith("postsales.survey."):
        low, high = SCORE_RANGES[survey_kind(event.type)]
        score = event.data.get("score")
        if isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high:
            raise InvalidEvent(f"data.score: must be an integer from {low} to {high}")
    else:
        _text(event.data, "ticket_id", required=True)
    bounds.check_time(event.time, now or dt.datetime.now(dt.UTC))


def check_ingestible(event: CloudEvent, bounds: Bounds = DEFAULT_BOUNDS, now: dt.datetime | None = None) -> str:
    """Validate a posted event other than a usage event (those are decoded by ``usage.envelope``);
    returns its topic or raises ``InvalidEvent``."""
    et = validate_event(event)
    if et.topic != FEEDBACK_TOPIC:
        raise InvalidEvent(f"event type '{event.type}' is not ingested here: only usage.*, "
                           "postsales.survey.* and postsales.ticket.* events are")
    check_feedback(event, bounds, now)
    return et.topic
